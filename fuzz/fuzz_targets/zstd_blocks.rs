#![no_main]
//! libFuzzer entry for `knsock_fuzz::zstd_blocks`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| knsock_fuzz::zstd_blocks(data));
