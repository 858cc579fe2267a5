#!/usr/bin/env bash
# Two receivers in the same run, interleaved round by round: this tree's `kn-sock` against
# another build of it (an older commit), with the same sender (this tree's bench). Measures 1 GiB
# in plaintext and over TLS (MiB/s, and CPU seconds per GiB on each side, the figure that stays
# stable on a noisy machine) and 2,000 files of 4 KiB in one batch (files/s); prints medians and
# new/old ratios. Loopback only.
# Usage: bench/compare.sh OLD_KN_SOCK [ROUNDS] [OUTDIR]   (OUTDIR default /dev/shm)
#   e.g. git worktree add /tmp/old <commit> && (cd /tmp/old && cargo build --release)
#        bench/compare.sh /tmp/old/target/release/kn-sock 7
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: bench/compare.sh OLD_KN_SOCK [ROUNDS] [OUTDIR]}
rounds=${2:-5}
out=${3:-/dev/shm}
work=$(mktemp -d -p "$out" knsock-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT

. bench/lib.sh
benchexe=$(bench_transfer_exe)
cp target/release/kn-sock "$work/new"
cp "$old" "$work/old"
cp "$benchexe" "$work/bench"
big=$work/big.bin
small=$work/small
make_test_files "$work"
results=$work/results.txt
: > "$results"
run() { # which, then the bench's arguments
  local which=$1
  shift
  KNSOCK_BIN=$work/$which "$work/bench" "$@" | sed "s/^/$which /"
}
# Warm-up, discarded: the first 1 GiB written to a fresh tmpfs pays for its pages.
run new big "$big" "$work" >/dev/null
for r in $(seq 1 "$rounds"); do
  echo "== round $r/$rounds" >&2
  for which in old new; do
    run "$which" big "$big" "$work" | tee -a "$results"
    KNSOCK_BENCH_TLS=1 run "$which" big "$big" "$work" | tee -a "$results"
    run "$which" batch "$small" "$work" | tee -a "$results"
  done
done
python3 - "$results" <<'PY'
import sys
sys.path.insert(0, "bench")
from medians import report
med, _ = report(sys.argv[1], 44)
print("new / old:")
for k in sorted(med):
    if k.startswith("new ") and "old " + k[4:] in med and med["old " + k[4:]]:
        print("  %-44s %.3fx" % (k[4:], med[k] / med["old " + k[4:]]))
PY
