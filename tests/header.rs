//! The committed include/knsock.h must be exactly what cbindgen generates from src/ffi, and its
//! version macros must match Cargo.toml. The C ABI exists only with the `capi` feature.
#![cfg(feature = "capi")]

use std::path::Path;

#[test]
fn committed_header_matches_a_fresh_generation() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).unwrap();
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        // Only the ABI layer: core constants are not part of the C API. The one core type in
        // it is the statistics struct, `repr(C)` so that it is written once.
        .with_src(root.join("src/ffi/mod.rs"))
        .with_src(root.join("src/server/stats.rs"))
        .generate()
        .expect("cbindgen failed")
        .write(&mut fresh);
    let fresh = String::from_utf8(fresh).unwrap();
    let path = root.join("include/knsock.h");
    if std::env::var_os("KNSOCK_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/knsock.h is stale: run `KNSOCK_BLESS=1 cargo test --test header` and commit it"
    );
}

#[test]
fn version_macros_match_cargo_toml() {
    let header = include_str!("../include/knsock.h");
    let version = env!("CARGO_PKG_VERSION");
    assert!(header.contains(&format!("#define KNSOCK_VERSION_STRING \"{version}\"")));
    for (name, value) in [
        ("MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        assert!(
            header.contains(&format!("#define KNSOCK_VERSION_{name} {value}")),
            "KNSOCK_VERSION_{name} is not {value}"
        );
    }
    let lib = unsafe { std::ffi::CStr::from_ptr(knsock::ffi::knsock_version()) };
    assert_eq!(lib.to_str().unwrap(), version);
    let num = |s: &str| s.parse::<u32>().unwrap();
    let want = (num(env!("CARGO_PKG_VERSION_MAJOR")) << 16)
        | (num(env!("CARGO_PKG_VERSION_MINOR")) << 8)
        | num(env!("CARGO_PKG_VERSION_PATCH"));
    assert_eq!(knsock::ffi::knsock_version_num(), want);
    assert_eq!(knsock::ffi::KNSOCK_VERSION_NUM, want);
}
