#!/usr/bin/env bash
# Runs the test suites again and again to flush out flaky tests, and stops at the first failure
# with its log.
#
#   scripts/stress.sh [N [M]]
#
# N (default 50): the C and C++ suite through `ctest --repeat until-fail:N`, two tests at a time
# (more contention than scripts/test.sh, which runs them one by one), c_packaging left out (it
# installs, it races nothing). M (default 10, a Rust or Go round takes much longer than a CTest
# one): `cargo test` and `go test -race` M times each. CI runs `scripts/stress.sh 3 1`.
# Expects the release library (cargo build --release) that scripts/test.sh builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50} m=${2:-10}
logs=target/stress
mkdir -p "$logs"
started=$SECONDS

cleanup=()
on_exit() { for c in "${cleanup[@]}"; do eval "$c" || true; done; }
trap on_exit EXIT
# The C, C++ and Go S3 tests need an engine: the caller's (scripts/test.sh), else one of ours.
source scripts/s3-env.sh

# Runs "$@" with its output in $logs/$name.log; on failure prints the log's tail and stops.
run_logged() {
  local name=$1
  shift
  if ! "$@" >"$logs/$name.log" 2>&1; then
    tail -n 80 "$logs/$name.log"
    echo "stress: $name FAILED (whole log: $logs/$name.log)"
    exit 1
  fi
}

[[ -f target/release/libknsock.a ]] || cargo build --release --locked
echo "=== stress: C and C++ (ctest --repeat until-fail:$n, -j2)"
cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build/test >/dev/null
run_logged ctest ctest --test-dir build/test --output-on-failure --timeout 600 -E packaging \
  --parallel 2 --repeat "until-fail:$n"
tail -n 3 "$logs/ctest.log"

echo "=== stress: Rust (cargo test, $m rounds)"
cargo test --locked --no-run >/dev/null 2>&1 || cargo test --locked --no-run
for i in $(seq "$m"); do
  run_logged "cargo-test-$i" cargo test --locked
  echo "round $i: $(grep -c '^test .* ok$' "$logs/cargo-test-$i.log") tests ok"
done

if [[ -f bindings/go/go.mod ]]; then
  source scripts/go-env.sh
  echo "=== stress: Go (go test -race, $m rounds)"
  for i in $(seq "$m"); do
    run_logged "go-test-$i" bash -c 'cd bindings/go && go test -race -count=1 ./...'
    echo "round $i: $(tail -n 1 "$logs/go-test-$i.log")"
  done
fi
echo "stress: every round passed ($n C/C++, $m Rust, $m Go) in $((SECONDS - started)) s"
