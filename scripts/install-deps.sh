#!/usr/bin/env bash
# Installs what the build and the tests need and a fresh machine may lack: a C/C++ toolchain,
# CMake, Ninja, pkg-config, GoogleTest, valgrind and Go (Debian packages), and checks for Rust.
set -euo pipefail
missing=()
command -v cc >/dev/null || missing+=(gcc)
command -v c++ >/dev/null || missing+=(g++)
command -v cmake >/dev/null || missing+=(cmake)
command -v ninja >/dev/null || missing+=(ninja-build)
command -v pkg-config >/dev/null || missing+=(pkg-config)
[ -f /usr/include/gtest/gtest.h ] || missing+=(libgtest-dev)
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || missing+=(golang-go)
command -v python3 >/dev/null || missing+=(python3)
command -v valgrind >/dev/null || missing+=(valgrind)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust 1.85 or newer (https://rustup.rs) and run again" >&2
  exit 1
fi
