#!/usr/bin/env bash
# Installs what the build and the tests need and a fresh machine may lack: a C/C++ toolchain,
# binutils (ld, objcopy, readelf, ar), CMake, Ninja, pkg-config, GoogleTest, the static libzstd
# (tests/consumers links it beside libknsock.a), valgrind, Go (scripts/seaweedfs.sh builds the S3
# test server with it), openssl, curl and python3 with venv (Debian packages); and checks for
# Rust. (The S3 benchmark's boto3 is bench/s3.sh's business.)
set -euo pipefail
missing=()
command -v cc >/dev/null || missing+=(gcc)
command -v c++ >/dev/null || missing+=(g++)
command -v objcopy >/dev/null && command -v readelf >/dev/null || missing+=(binutils)
command -v cmake >/dev/null || missing+=(cmake)
command -v ninja >/dev/null || missing+=(ninja-build)
command -v pkg-config >/dev/null || missing+=(pkg-config)
[ -f /usr/include/gtest/gtest.h ] || missing+=(libgtest-dev)
[ -f /usr/include/zstd.h ] || missing+=(libzstd-dev)
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || missing+=(golang-go)
command -v python3 >/dev/null || missing+=(python3)
# Virtual environments (here, bench/python.sh, scripts/test-python.sh) need ensurepip.
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
# scripts/seaweedfs.sh signs its S3 readiness probe with curl --aws-sigv4 (curl 7.75+).
command -v curl >/dev/null || missing+=(curl)
# tests/tls.rs checks that a standard TLS client (openssl s_client) completes a handshake.
command -v openssl >/dev/null || missing+=(openssl)
command -v valgrind >/dev/null || missing+=(valgrind)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi
# Rust: at least Cargo.toml's rust-version.
rust_version=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$(dirname "$0")/../Cargo.toml")
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust $rust_version or newer (https://rustup.rs) and run again" >&2
  exit 1
fi
have=$(rustc --version | cut -d' ' -f2)
if ! printf '%s\n%s\n' "$rust_version" "${have%%-*}" | sort -V -C; then
  echo "rustc $have is older than Cargo.toml's rust-version $rust_version: rustup update" >&2
  exit 1
fi
