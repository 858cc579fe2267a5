#!/usr/bin/env bash
# A 1 GiB stream through the CLI (`cat big.bin | kn-sock send-file … - --remote-name …`, a real
# pipe, size unknown) against the same file sent from disk (`kn-sock send-file … big.bin`), to
# one `kn-sock run-file-server` in the same run, interleaved round by round; and, to tell the
# stream's own cost from the pipe's, standard input redirected from the file (`- < big.bin`: the
# same unknown-size path, no `cat`). Prints each run's MiB/s (wall time of the sending command,
# until the receiver's OK), the medians and the ratios to the file from disk. Loopback only; the
# file and the receiver's directory live in OUTDIR.
# Usage: bench/stream.sh [ROUNDS] [OUTDIR]   (defaults 5, /dev/shm)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
out=${2:-/dev/shm}
work=$(mktemp -d -p "$out" knsock-stream.XXXXXX)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet
bin=$work/kn-sock
cp target/release/kn-sock "$bin"
head -c $((1 << 30)) /dev/urandom > "$work/big.bin"
mkdir "$work/recv"
"$bin" run-file-server 0 "$work/recv" --host 127.0.0.1 > "$work/server.log" 2>&1 &
server=$!
port=
for _ in $(seq 1 500); do
  port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/server.log" | head -1)
  [ -n "$port" ] && break
  sleep 0.01
done
[ -n "$port" ] || { echo "the server did not start" >&2; exit 1; }

mib_s() { # seconds → MiB/s for 1 GiB
  python3 -c "import sys; print('%.1f' % (1024 / float(sys.argv[1])))" "$1"
}
timed() { # command... → seconds
  local t0 t1
  t0=$(date +%s.%N)
  "$@" > /dev/null
  t1=$(date +%s.%N)
  python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$t1"
}
send_file() { "$bin" send-file 127.0.0.1 "$port" "$work/big.bin" --remote-name file.bin --no-progress; }
send_pipe() {
  cat "$work/big.bin" | "$bin" send-file 127.0.0.1 "$port" - --remote-name pipe.bin --no-progress
}
send_stdin() {
  "$bin" send-file 127.0.0.1 "$port" - --remote-name stdin.bin --no-progress < "$work/big.bin"
}

results=$work/results.txt
: > "$results"
send_file > /dev/null # warm-up, discarded: the first GiB written to a fresh tmpfs pays for its pages
for r in $(seq 1 "$rounds"); do
  for what in file pipe stdin; do
    rm -f "$work/recv/$what.bin"
    s=$(timed "send_$what")
    cmp -s "$work/big.bin" "$work/recv/$what.bin" || { echo "$what.bin differs" >&2; exit 1; }
    echo "round $r $what $(mib_s "$s") MiB/s" | tee -a "$results"
  done
done
python3 - "$results" <<'PY'
import statistics, sys
runs = {"file": [], "pipe": [], "stdin": []}
for line in open(sys.argv[1]):
    _, _, what, mibs, _ = line.split()
    runs[what].append(float(mibs))
m = {k: statistics.median(v) for k, v in runs.items()}
print("median MiB/s: file from disk %.1f, stream through a pipe (cat |) %.1f, stream from "
      "redirected stdin %.1f" % (m["file"], m["pipe"], m["stdin"]))
print("pipe / file %.3f, stdin / file %.3f" % (m["pipe"] / m["file"], m["stdin"] / m["file"]))
PY
