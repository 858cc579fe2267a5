#![no_main]
//! libFuzzer entry for `knsock_fuzz::hello`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| knsock_fuzz::hello(data));
