#![no_main]
//! libFuzzer entry for `knsock_fuzz::session`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| knsock_fuzz::session(data));
