#!/usr/bin/env bash
# Every test, or the suites named:
#
#   scripts/test.sh              every suite, in the order of --list (what CI runs, .ci/run)
#   scripts/test.sh SUITE...     just those, e.g. scripts/test.sh go python
#   scripts/test.sh --list       the suites and what each runs
#
# Each run builds and starts only what its suites need: the release build (library, CLI) and
# one S3 engine (SeaweedFS, scripts/s3-env.sh, built once into the cache) shared by every suite
# that stores into a bucket. KNSOCK_REQUIRE_S3=1 is exported, so a binding's S3 tests fail
# rather than skip when the engine is missing. Each suite runs with a TMPDIR of its own, removed
# after it (anything a suite left there is named first). It stops at the first failed suite;
# the last lines give each suite's wall time and `test suites: N passed, 0 failed`.
set -euo pipefail
cd "$(dirname "$0")/.."

suites=(rust crates fuzz-corpus ctest asan consumers valgrind interop python go fuzz stress)
declare -A about=(
  [rust]="Rust: unit, integration and CLI tests, header drift (cargo test)"
  [crates]="the crates as published: API docs without warnings, cargo publish --dry-run (scripts/crates.sh)"
  [fuzz-corpus]="the committed fuzz corpus replayed through every target (fuzz/, no libFuzzer)"
  [ctest]="C and C++ tests and examples through CTest"
  [asan]="the CTest suite under AddressSanitizer + UndefinedBehaviorSanitizer"
  [consumers]="an installed knsock used through pkg-config, CMake (C, C++) and a Go module"
  [valgrind]="the C and C++ test programs under valgrind (memcheck; errors and leaks fail)"
  [interop]="interop with the real kn-sock 0.3.0 from PyPI and the previous release (scripts/interop.sh)"
  [python]="the Python package in a fresh venv, pytest (scripts/test-python.sh)"
  [go]="the Go binding: go test -race, then GOEXPERIMENT=cgocheck2"
  [fuzz]="every fuzz target, 100,000 inputs from seed 1 (libFuzzer, scripts/fuzz.sh ci)"
  [stress]="short stress: CTest 3 times, Rust and Go once more (scripts/stress.sh 3 1)"
)
# What a suite needs before it starts: the release build, the S3 engine, and the packages of
# scripts/install-deps.sh (c, valgrind, go, zstd, python; s3 too).
declare -A needs=(
  [rust]="s3" [ctest]="release s3 c" [asan]="release s3 c" [consumers]="release c go zstd"
  [valgrind]="release s3 c valgrind" [interop]="release python" [python]="release s3 python"
  [go]="release s3 go" [stress]="release s3 c go"
)

list() { for s in "${suites[@]}"; do printf '  %-12s %s\n' "$s" "${about[$s]}"; done; }

case ${1:-} in
  --list) list; exit 0 ;;
  -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; echo; list; exit 0 ;;
esac
chosen=()
for arg in "${@:-${suites[@]}}"; do
  if [[ -z ${about[$arg]+x} ]]; then
    echo "test.sh: unknown suite '$arg'; the suites are:" >&2
    list >&2
    exit 2
  fi
  [[ " ${chosen[*]} " == *" $arg "* ]] || chosen+=("$arg")
done
wants() { local s; for s in "${chosen[@]}"; do [[ " ${needs[$s]:-} " == *" $1 "* ]] && return 0; done; return 1; }

step() { echo; echo "=== $*"; }
# Undone last first: the S3 engine stops before the directory that holds its data goes.
cleanup=()
on_exit() { local i; for ((i = ${#cleanup[@]} - 1; i >= 0; i--)); do eval "${cleanup[i]}" || true; done; }
trap on_exit EXIT
# Everything this run makes outside the tree lives here, the S3 engine's data included.
run_tmp=$(mktemp -d "${TMPDIR:-/tmp}/knsock-test.XXXXXX")
cleanup+=("rm -rf '$run_tmp'")
timings=()
# Runs one setup step (the arguments after the first) and notes its wall time under name $1.
timed() { local name=$1 t0=$SECONDS; shift; "$@"; timings+=("$(printf '%-24s %5d s' "$name" $((SECONDS - t0)))"); }

packages=()
for w in s3 c valgrind go zstd python; do wants "$w" && packages+=("$w"); done
timed "install-deps" scripts/install-deps.sh base "${packages[@]}"
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
export KNSOCK_REQUIRE_S3=1

if wants release; then
  step "build (release: library, CLI), shared by the suites that need it"
  timed "setup: release build" cargo build --release --locked
fi
if wants s3; then
  step "S3 engine for the suites that store into a bucket (SeaweedFS)"
  s3_env() { TMPDIR=$run_tmp source scripts/s3-env.sh; }
  timed "setup: S3 engine" s3_env
fi

suite_rust() { cargo test --workspace --locked; }

suite_crates() { scripts/crates.sh; }

suite_fuzz_corpus() {
  # fuzz/ is its own workspace; its lock follows the root's (not --locked: a dependency the root
  # gains is resolved here too). It builds knsock with other features than the Rust tests do,
  # and a library with a C crate type has no hash in its file name (target/debug/deps/
  # libknsock.rlib): sharing target/debug, each build would overwrite the other's library and a
  # later `cargo test` could link the wrong one. So it has a target directory of its own.
  (cd fuzz && CARGO_TARGET_DIR=../target/fuzz-corpus cargo test)
}

# Configures and builds the CTest tree DIR (CMake options after the first three arguments), then
# runs its tests, those matching EXCLUDE left out, each within TIMEOUT seconds.
ctest_suite() {
  local dir=$1 timeout=$2 exclude=$3
  shift 3
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug "$@" >/dev/null
  cmake --build "$dir"
  ctest --test-dir "$dir" --output-on-failure --timeout "$timeout" ${exclude:+-E "$exclude"}
}
suite_ctest() { ctest_suite build/test 600 ""; }

suite_asan() {
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
  ctest_suite build/asan 600 "" -DKNSOCK_SANITIZE=ON
}

suite_consumers() { tests/consumers/run.sh; }

suite_valgrind() {
  # The test programs only: the example round trip and packaging are shell scripts. The TLS
  # tests are left out: memcheck does not follow ring's assembly AES-GCM and reports its output
  # as uninitialised (false positives in every TLS record); ASan+UBSan covers them.
  ctest_suite build/valgrind 900 'packaging|example_roundtrip|tls|Tls' -DKNSOCK_VALGRIND=ON
}

suite_interop() { scripts/interop.sh; }

suite_python() { scripts/test-python.sh; }

suite_go() {
  source scripts/go-env.sh
  echo "--- go test -race"
  (cd bindings/go && go test -race -count=1 ./...)
  echo "--- go test, GOEXPERIMENT=cgocheck2"
  (cd bindings/go && GOEXPERIMENT=cgocheck2 go test -count=1 ./...)
}

suite_fuzz() { scripts/fuzz.sh ci 100000; }

suite_stress() { scripts/stress.sh 3 1; }

summary() {
  echo
  echo "wall time:"
  printf '  %s\n' "${timings[@]}"
  echo "test suites: $passed passed, $1"
}
passed=0
for s in "${chosen[@]}"; do
  step "$s: ${about[$s]}"
  mkdir "$run_tmp/$s"
  t0=$SECONDS
  set +e
  (set -e; export TMPDIR=$run_tmp/$s; "suite_${s//-/_}")
  rc=$?
  set -e
  timings+=("$(printf '%-24s %5d s' "$s" $((SECONDS - t0)))")
  left=$(cd "$run_tmp/$s" && ls -A)
  [[ -z $left ]] || echo "note: $s left in its TMPDIR (now removed): ${left//$'\n'/ }"
  rm -rf "${run_tmp:?}/$s"
  if [[ $rc != 0 ]]; then
    summary "1 failed ($s)"
    exit 1
  fi
  passed=$((passed + 1))
done
summary "0 failed"
