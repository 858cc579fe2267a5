#![no_main]
//! libFuzzer entry for `knsock_fuzz::legacy`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| knsock_fuzz::legacy(data));
