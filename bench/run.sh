#!/usr/bin/env bash
# One command for the benchmark: a 1 GiB file (also fanned out to three receivers at once) and
# 2,000 files of 4 KiB over loopback, knsock
# interleaved with the raw TCP ceiling, knsock over TLS 1.3 (with each side's CPU s/GiB) and
# kn-sock 0.3 (Python) in the same run, medians and
# ratios at the end. Usage: bench/run.sh [ROUNDS] [OUTDIR]   (OUTDIR default /dev/shm: network
# path; give a disk directory to include storage.)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
out=${2:-/dev/shm}
shared=${KNSOCK_SHARED:-../shared}/bench
work=$(mktemp -d -p "$out" knsock-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Build once and run copies, so editing the tree during a run changes nothing.
. bench/lib.sh
benchexe=$(bench_transfer_exe)
cp target/release/kn-sock "$work/kn-sock"
cp "$benchexe" "$work/bench-transfer"
export KNSOCK_BIN=$work/kn-sock
bench() { "$work/bench-transfer" "$@"; }
big=$work/big.bin
small=$work/small
head -c $((1 << 30)) /dev/urandom > "$big"
mkdir -p "$small"
logs=$work/app.log
python3 - "$logs" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    i, size = 0, 0
    while size < 256 << 20:
        line = "2026-11-24T12:%02d:%02dZ INFO api request id=%d path=/v1/items/%d status=200 ms=%d\n" % (
            (i // 60) % 60, i % 60, i * 7919, i % 1000, i % 97)
        f.write(line); size += len(line); i += 1
PY
head -c $((256 << 20)) "$big" > "$work/random.bin"
for i in $(seq -w 1 2000); do head -c 4096 /dev/urandom > "$small/f$i.dat"; done
results=$work/results.txt
: > "$results"
# Warm-up, discarded: the first 1 GiB written to a fresh tmpfs pays for its pages.
bash "$shared/raw-baseline.sh" "$big" "$work" >/dev/null
bench big "$big" "$work" >/dev/null
for r in $(seq 1 "$rounds"); do
  echo "== round $r/$rounds" >&2
  raw=$(bash "$shared/raw-baseline.sh" "$big" "$work"); echo "$raw" | tee -a "$results"
  own=$(bench big "$big" "$work"); echo "$own" | tee -a "$results"
  python3 -c "import sys; print('ratio knsock/raw %.3f' % (float(sys.argv[2]) / float(sys.argv[1])))" \
    "${raw##* }" "$(echo "$own" | sed -n 's/^knsock MiB\/s //p')" | tee -a "$results"
  KNSOCK_BENCH_TLS=1 bench big "$big" "$work" | tee -a "$results"
  bench small "$small" "$work" | tee -a "$results"
  bench batch "$small" "$work" | tee -a "$results"
  KNSOCK_BENCH_TLS=1 bench batch "$small" "$work" | tee -a "$results"
  bench fanout "$big" "$work" | tee -a "$results"
  bench zstd logs "$logs" "$work" | tee -a "$results"
  bench zstd random "$work/random.bin" "$work" | tee -a "$results"
  if [ "${SKIP_PY:-0}" != 1 ]; then
    bash "$shared/knsock-py-baseline.sh" "$big" "$small" "$work" | tee -a "$results"
  fi
done
python3 - "$results" <<'PY'
import sys
sys.path.insert(0, "bench")
from medians import report
med, vals = report(sys.argv[1], 28)
print("(over %d rounds)" % len(vals.get("raw_tcp MiB/s", [])))
def ratio(a, b, what):
    if a in med and b in med and med[b]:
        print("  %-40s %.2fx" % (what, med[a] / med[b]))
print("ratios:")
print("  %-40s %.2fx (median of per-round ratios)" % ("knsock / raw TCP (1 GiB)", med["ratio knsock/raw"]))
ratio("knsock MiB/s", "kn-sock-py MiB/s", "knsock / kn-sock 0.3 (1 GiB)")
ratio("knsock files/s", "kn-sock-py files/s", "knsock / kn-sock 0.3 (2000 x 4 KiB)")
ratio("knsock batch files/s", "kn-sock-py files/s", "knsock batch / kn-sock 0.3 (2000 x 4 KiB)")
ratio("knsock tls MiB/s", "knsock MiB/s", "knsock TLS / plaintext (1 GiB; target >= 0.70)")
ratio("knsock tls batch files/s", "knsock batch files/s", "knsock TLS / plaintext batch (2000 x 4 KiB)")
for side in ("sender", "receiver"):
    ratio("knsock tls %s_cpu_s_per_gib" % side, "knsock %s_cpu_s_per_gib" % side,
          "TLS / plaintext %s CPU s/GiB (target <= 1.30)" % side)
if "ratio fanout x3/single wall" in med:
    print("  %-40s %.2fx (median of per-round ratios; target <= 1.30)" % (
        "fan-out to 3 / one send, wall (1 GiB)", med["ratio fanout x3/single wall"]))
PY
