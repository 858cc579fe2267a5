#!/usr/bin/env bash
# Fuzzes knsock with libFuzzer on the stable toolchain: cargo-fuzz needs nightly only for the
# flags it passes, so this passes the same coverage flags itself (no AddressSanitizer: the code
# under test is safe Rust, and the fuzz crate's allocator enforces the allocation bound).
#
#   scripts/fuzz.sh build                   build the six fuzzers (fuzz/, target/fuzz/)
#   scripts/fuzz.sh run TARGET SECS [ARGS]  fuzz one target for SECS seconds (0: until stopped),
#                                           extra libFuzzer ARGS passed on
#   scripts/fuzz.sh ci [RUNS]               every target for RUNS inputs each (default 100,000)
#                                           from seed 1 and the committed corpus: deterministic;
#                                           fails on the first crash, timeout or bound exceeded
#   scripts/fuzz.sh repro TARGET FILE       run one input (a crash's) once
#   scripts/fuzz.sh min TARGET FILE         minimize a crashing input to FILE.min
#   scripts/fuzz.sh list                    the targets
#
# New inputs go to target/fuzz/corpus/TARGET (not committed); the committed corpus in
# fuzz/corpus/TARGET are read, never written. A crash leaves its input in target/fuzz/artifacts/
# TARGET/: minimize it (min TARGET FILE), commit it under fuzz/corpus/TARGET/, and `cargo test`
# in fuzz/ replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(frame hello zstd_blocks name legacy session)
# Bounds: 256 MiB resident for the whole process (libFuzzer's -rss_limit_mb; zstd's C heap
# included), 16 MiB per Rust allocation and 256 MiB live Rust heap (fuzz/src/bounded.rs),
# 10 s per input.
limits=(-rss_limit_mb=256 -malloc_limit_mb=256 -timeout=10 -max_len=262144)
export CARGO_TARGET_DIR=$PWD/target/fuzz
host=$(rustc -vV | sed -n 's/^host: //p')
bin=$CARGO_TARGET_DIR/$host/release

build() {
  RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions \
-Coverflow-checks" \
    cargo build --manifest-path fuzz/Cargo.toml --release --features libfuzzer \
      --target "$host" --bins
}

run() {
  local t=$1 secs=$2
  shift 2
  [[ " ${targets[*]} " == *" $t "* ]] || { echo "unknown target $t (${targets[*]})" >&2; exit 2; }
  mkdir -p "$CARGO_TARGET_DIR/corpus/$t" "$CARGO_TARGET_DIR/artifacts/$t"
  # The session targets write files: into a private directory on tmpfs when there is one.
  local tmp
  tmp=$(mktemp -d "$( [[ -d /dev/shm && -w /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/knsock-fuzz.XXXXXX")
  local rc=0
  TMPDIR=$tmp "$bin/$t" "${limits[@]}" -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix="$CARGO_TARGET_DIR/artifacts/$t/" "$@" \
    "$CARGO_TARGET_DIR/corpus/$t" "fuzz/corpus/$t" || rc=$?
  rm -rf "$tmp"
  return "$rc"
}

# One deterministic CI pass over target $1: $2 inputs, seed 1, new inputs kept in $3.
ci_run() {
  local t=$1 runs=$2 scratch=$3
  mkdir -p "$CARGO_TARGET_DIR/artifacts/$t"
  local tmp
  tmp=$(mktemp -d "$( [[ -d /dev/shm && -w /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/knsock-fuzz.XXXXXX")
  local rc=0
  TMPDIR=$tmp "$bin/$t" "${limits[@]}" -seed=1 -runs="$runs" -print_final_stats=1 \
    -artifact_prefix="$CARGO_TARGET_DIR/artifacts/$t/" "$scratch" "fuzz/corpus/$t" || rc=$?
  rm -rf "$tmp"
  return "$rc"
}

case ${1:-} in
  build) build ;;
  list) printf '%s\n' "${targets[@]}" ;;
  repro | min)
    [[ $# -eq 3 ]] || { echo "usage: $0 $1 TARGET FILE" >&2; exit 2; }
    [[ -x $bin/$2 ]] || build
    if [[ $1 == repro ]]; then
      "$bin/$2" "${limits[@]}" "$3"
    else
      "$bin/$2" "${limits[@]}" -minimize_crash=1 -runs=100000 -exact_artifact_path="$3.min" "$3"
    fi
    ;;
  run)
    [[ $# -ge 3 ]] || { echo "usage: $0 run TARGET SECS [libFuzzer args]" >&2; exit 2; }
    [[ -x $bin/$2 ]] || build
    run "${@:2}"
    ;;
  ci)
    # Deterministic, so a run that passes here passes in CI: a fixed seed and a fixed number of
    # inputs per target, from the committed corpus only (not the one a long run accumulated).
    build
    log=$CARGO_TARGET_DIR/fuzz-ci.log
    runs=${2:-100000}
    for t in "${targets[@]}"; do
      echo "--- fuzz $t ($runs inputs, seed 1)"
      scratch=$(mktemp -d)
      if TMPDIR=${TMPDIR:-/tmp} ci_run "$t" "$runs" "$scratch" >"$log" 2>&1; then
        rm -rf "$scratch"
        grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|peak_rss_mb)' "$log"
      else
        tail -n 60 "$log"
        echo "fuzz $t: FAILED; the input is in target/fuzz/artifacts/$t/"
        exit 1
      fi
    done
    echo "fuzz: ${#targets[@]} targets, no crash, no timeout, no bound exceeded"
    ;;
  *) sed -n '5,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
