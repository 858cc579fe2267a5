#![no_main]
//! libFuzzer entry for `knsock_fuzz::frame`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| knsock_fuzz::frame(data));
