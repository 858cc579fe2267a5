#![no_main]
//! libFuzzer entry for `knsock_fuzz::name`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| knsock_fuzz::name(data));
