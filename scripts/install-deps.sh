#!/usr/bin/env bash
# Installs what the build and the tests need and a fresh machine may lack (Debian packages), and
# checks for Rust. (The S3 benchmark's boto3 is bench/s3.sh's business.)
#
#   scripts/install-deps.sh [WHAT...]     no argument: everything
#
# Always a C compiler (Rust's C dependencies: ring, zstd) and openssl (tests/tls.rs checks that
# `openssl s_client` completes a handshake; the C TLS tests make certificates with it). WHAT:
#   base      only those
#   c         g++, binutils (ld, objcopy, readelf, ar), CMake, Ninja, GoogleTest: the CTest suites
#   valgrind  valgrind
#   go        Go, pkg-config and binutils (the binding finds an install through pkg-config)
#   zstd      the static libzstd (tests/consumers links it beside libknsock.a)
#   python    python3 with venv
#   s3        Go, python3 and curl: scripts/seaweedfs.sh builds the S3 engine with Go, picks its
#             ports with python3 and signs its readiness probe with curl --aws-sigv4 (7.75+)
# scripts/test.sh passes what its suites need.
set -euo pipefail
want=" ${*:-c valgrind go zstd python s3} "
for w in $want; do
  [[ " base c valgrind go zstd python s3 " == *" $w "* ]] ||
    { echo "install-deps.sh: unknown '$w' (base c valgrind go zstd python s3)" >&2; exit 2; }
done
wants() { local w; for w in "$@"; do [[ $want == *" $w "* ]] && return 0; done; return 1; }
missing=()
command -v cc >/dev/null || missing+=(gcc)
command -v openssl >/dev/null || missing+=(openssl)
if wants c; then
  command -v c++ >/dev/null || missing+=(g++)
  command -v cmake >/dev/null || missing+=(cmake)
  command -v ninja >/dev/null || missing+=(ninja-build)
  [ -f /usr/include/gtest/gtest.h ] || missing+=(libgtest-dev)
fi
if wants c go; then
  command -v objcopy >/dev/null && command -v readelf >/dev/null || missing+=(binutils)
fi
if wants go; then command -v pkg-config >/dev/null || missing+=(pkg-config); fi
if wants go s3; then
  command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || missing+=(golang-go)
fi
if wants zstd; then [ -f /usr/include/zstd.h ] || missing+=(libzstd-dev); fi
if wants python s3; then command -v python3 >/dev/null || missing+=(python3); fi
# Virtual environments (scripts/interop.sh, scripts/test-python.sh, bench/) need ensurepip.
if wants python; then python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv); fi
if wants s3; then command -v curl >/dev/null || missing+=(curl); fi
if wants valgrind; then command -v valgrind >/dev/null || missing+=(valgrind); fi
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
