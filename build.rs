//! Sets the shared library's SONAME so C programs link against the ABI major version.
fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    // Before 1.0 every minor version may break the ABI, as Cargo's own rules say.
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libknsock.so.{abi}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
