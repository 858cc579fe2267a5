#!/usr/bin/env bash
# Every test: Rust (unit, integration, header drift, the fuzz corpus replayed), C and C++ through
# CTest (plain, then AddressSanitizer + UndefinedBehaviorSanitizer, then valgrind), consumers of
# an installed knsock (pkg-config, CMake, C++, Go; tests/consumers/run.sh), interop with the real
# kn-sock 0.3.0, the Python package, Go (race detector, cgocheck2) against an install in a
# temporary prefix, then each fuzz target for a few seconds and a short stress run
# (scripts/stress.sh 3 1) that catches flaky tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
suites=0
step() { echo; echo "=== $*"; }
cleanup=()
on_exit() { for c in "${cleanup[@]}"; do eval "$c" || true; done; }
trap on_exit EXIT

step "S3 engine for the S3 tests of every suite (SeaweedFS, built once into the cache)"
source scripts/s3-env.sh

step "build (release: library, CLI)"
cargo build --release --locked

step "Rust tests"
cargo test --locked
suites=$((suites + 1))

step "Crates: API docs without warnings, cargo publish --dry-run (scripts/crates.sh)"
scripts/crates.sh
suites=$((suites + 1))

step "Fuzz corpus replayed through every target (fuzz/, no libFuzzer)"
# fuzz/ is its own workspace; its lock follows the root's (not --locked: a dependency the root
# gains is resolved here too).
(cd fuzz && CARGO_TARGET_DIR=../target cargo test)
suites=$((suites + 1))

step "C and C++ tests (CTest)"
cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build/test
ctest --test-dir build/test --output-on-failure --timeout 600
suites=$((suites + 1))

step "C and C++ tests under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKNSOCK_SANITIZE=ON >/dev/null
cmake --build build/asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/asan --output-on-failure --timeout 600
suites=$((suites + 1))

step "Consumers of an installed knsock: pkg-config, CMake (C, C++), Go module copied alone"
tests/consumers/run.sh
suites=$((suites + 1))

step "C and C++ tests under valgrind (memcheck; errors and definite/possible leaks fail)"
# The test programs only: the example round trip and packaging are shell scripts.
cmake -S . -B build/valgrind -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKNSOCK_VALGRIND=ON >/dev/null
cmake --build build/valgrind
# The TLS tests are left out: memcheck does not follow ring's assembly AES-GCM and reports its
# output as uninitialised (false positives in every TLS record); ASan+UBSan above covers them.
ctest --test-dir build/valgrind --output-on-failure --timeout 900 -E 'packaging|example_roundtrip|tls|Tls'
suites=$((suites + 1))

step "Interop with kn-sock 0.3.0 (Python, from PyPI)"
scripts/interop.sh
suites=$((suites + 1))

step "Python package (pip install ./bindings/python in a fresh venv, pytest)"
scripts/test-python.sh
suites=$((suites + 1))

if [ -f bindings/go/go.mod ]; then
  # The binding finds knsock through pkg-config, as its users' builds do: install it first.
  prefix=$(mktemp -d)
  cleanup+=("rm -rf '$prefix'")
  LIBDIR=lib scripts/install.sh "$prefix" >/dev/null
  export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
  # Go's build cache does not hash libknsock.a (a linker input pkg-config names): key the cgo
  # build on the library's content so a rebuilt library is always linked.
  # The key holds the prefix too: the link names the library by its path, and a cached link to
  # an earlier, deleted prefix would fail.
  CGO_CFLAGS="-O2 -g -DKNSOCK_LIB_ID=$( (sha256sum "$prefix/lib/libknsock.a"; echo "$prefix") | sha256sum | cut -c1-16)"
  export CGO_CFLAGS
  step "Go tests (race detector)"
  (cd bindings/go && go test -race -count=1 ./...)
  step "Go tests (GOEXPERIMENT=cgocheck2)"
  (cd bindings/go && GOEXPERIMENT=cgocheck2 go test -count=1 ./...)
  suites=$((suites + 2))
fi

step "Fuzzing: every target, 100,000 inputs from seed 1 (libFuzzer on stable, scripts/fuzz.sh)"
scripts/fuzz.sh ci 100000
suites=$((suites + 1))

step "Stress, short: the C/C++ suite 3 times, Rust and Go once more (scripts/stress.sh 3 1)"
scripts/stress.sh 3 1
suites=$((suites + 1))

echo
echo "test suites: $suites passed, 0 failed"
