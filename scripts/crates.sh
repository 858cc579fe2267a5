#!/usr/bin/env bash
# The crates as their users get them: the API documentation builds without a warning (the
# library warns on a public item without a doc comment, so that fails too), the library packages
# and builds from its .crate as `cargo publish` would, and the CLI's package (cli/) lists its
# files (it can be verified only once its knsock dependency is on crates.io). The library also
# builds without a warning as a Rust user gets it, with its default features and with none (the
# workspace's own builds turn on the test-only `internals` feature, which hides dead code).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo clippy --locked -p knsock --lib -- -D warnings
cargo clippy --locked -p knsock --lib --no-default-features -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --workspace
cargo publish --locked --dry-run -p knsock
cargo package --locked --list -p kn-sock
