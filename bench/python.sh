#!/usr/bin/env bash
# The Python package against the kn-sock CLI and kn-sock 0.3.0 (PyPI), interleaved in one run:
# send_file of a 1 GiB file, and 2,000 files of 4 KiB (knsock: one send_files call, and a
# send_file loop; kn-sock 0.3: its per-file send_file loop), then medians and ratios.
# knsock's senders (package and CLI) send to `kn-sock run-file-server`, so the two differ only
# in the sending side. Usage: bench/python.sh [ROUNDS] [OUTDIR]   (OUTDIR default /dev/shm)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
rounds=${1:-3}
out=${2:-/dev/shm}
shared=${KNSOCK_SHARED:-../shared}/bench
venv=${KNSOCK_PYTHON_VENV:-build/pyvenv}
work=$(mktemp -d -p "$out" knsock-pybench.XXXXXX)
srv=""
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$work"' EXIT

cargo build --release --quiet
if ! "$venv/bin/python" -c 'import knsock, kn_sock.file_transfer' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --no-deps kn-sock==0.3.0
  "$venv/bin/pip" install -q tqdm requests
  "$venv/bin/pip" install -q ./bindings/python
fi
py=$venv/bin/python
cp target/release/kn-sock "$work/kn-sock"
big=$work/big.bin
small=$work/small
make_test_files "$work"
results=$work/results.txt
: > "$results"

# A fresh kn-sock server per measurement, into an empty directory; sets $port and $srv.
serve() {
  rx=$(mktemp -d -p "$work" rx.XXXXXX)
  "$work/kn-sock" run-file-server 0 "$rx" --host 127.0.0.1 --resume-ttl 0 > "$work/srv.out" 2>&1 &
  srv=$!
  for _ in $(seq 1 200); do
    port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$work/srv.out")
    [ -n "$port" ] && return
    sleep 0.05
  done
  echo "kn-sock server did not start" >&2; exit 1
}
unserve() { kill "$srv"; wait "$srv" 2>/dev/null || true; srv=""; rm -rf "$rx"; }

py_big() {
  serve
  "$py" - "$port" "$big" <<'PY'
import os, sys, time, knsock
port, f = int(sys.argv[1]), sys.argv[2]
t = time.perf_counter()
knsock.send_file("127.0.0.1", port, f, show_progress=False)   # returns once verified and in place
print("knsock-py send_file MiB/s %.1f" % (os.path.getsize(f) / 2**20 / (time.perf_counter() - t)))
PY
  unserve
}
cli_big() {
  serve
  local t0 t1
  t0=$(date +%s.%N)
  "$work/kn-sock" send-file 127.0.0.1 "$port" "$big" --no-progress >/dev/null
  t1=$(date +%s.%N)
  python3 -c "import sys; print('kn-sock-cli send-file MiB/s %.1f' % (1024 / (float(sys.argv[2]) - float(sys.argv[1]))))" "$t0" "$t1"
  unserve
}
py_small() {
  serve
  "$py" - "$port" "$small" batch <<'PY'
import os, sys, time, knsock
port, d = int(sys.argv[1]), sys.argv[2]
files = sorted(os.path.join(d, n) for n in os.listdir(d))
t = time.perf_counter()
results = knsock.send_files("127.0.0.1", port, files, show_progress=False)
dt = time.perf_counter() - t
assert len(results) == len(files) and all(r.ok for r in results)
print("knsock-py send_files files/s %.1f" % (len(files) / dt))
PY
  unserve
  serve
  "$py" - "$port" "$small" <<'PY'
import os, sys, time, knsock
port, d = int(sys.argv[1]), sys.argv[2]
files = sorted(os.path.join(d, n) for n in os.listdir(d))
t = time.perf_counter()
for f in files:
    knsock.send_file("127.0.0.1", port, f, show_progress=False)
print("knsock-py send_file-loop files/s %.1f" % (len(files) / (time.perf_counter() - t)))
PY
  unserve
}

# Warm-up, discarded: the first 1 GiB written to a fresh tmpfs pays for its pages.
cli_big >/dev/null
for r in $(seq 1 "$rounds"); do
  echo "== round $r/$rounds" >&2
  py_big | tee -a "$results"
  cli_big | tee -a "$results"
  py_small | tee -a "$results"
  KNSOCK_PY_VENV=$venv bash "$shared/knsock-py-baseline.sh" "$big" "$small" "$work" | tee -a "$results"
done
python3 - "$results" <<'PY'
import sys
sys.path.insert(0, "bench")
from medians import report
med, _ = report(sys.argv[1])
def ratio(a, b, what):
    if a in med and b in med and med[b]:
        print("  %-52s %.2fx" % (what, med[a] / med[b]))
print("ratios:")
ratio("knsock-py send_file MiB/s", "kn-sock-cli send-file MiB/s", "package / kn-sock CLI (1 GiB; target >= 0.95)")
ratio("knsock-py send_file MiB/s", "kn-sock-py MiB/s", "package / kn-sock 0.3 (1 GiB)")
ratio("knsock-py send_files files/s", "kn-sock-py files/s", "package send_files / kn-sock 0.3 (2000 x 4 KiB; target > 100)")
ratio("knsock-py send_file-loop files/s", "kn-sock-py files/s", "package send_file loop / kn-sock 0.3 (2000 x 4 KiB)")
PY
