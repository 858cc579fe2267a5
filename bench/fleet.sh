#!/usr/bin/env bash
# The fleet benchmark of issue 17: SENDERS slow senders at once (default 10,000), each trickling a
# 16 KiB file over about 30 s, against one `kn-sock run-file-server` with default settings (or
# with the options in KNSOCK_FLEET_SERVER_ARGS), while 20 sends of a 4 KiB file by the CLI are
# timed. Prints how many files arrived whole, the probes' median and worst time, and the
# receiver's peak RSS and threads. Loopback only.
# Usage: bench/fleet.sh [SENDERS] [OUTDIR]   (OUTDIR default /dev/shm)
set -euo pipefail
cd "$(dirname "$0")/.."
senders=${1:-10000}
out=${2:-/dev/shm}
work=$(mktemp -d -p "$out" knsock-fleet.XXXXXX)
srv=""
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$work"' EXIT

cargo build --release --quiet
(cd bench/fleet && cargo build --release --quiet)
cp target/release/kn-sock "$work/kn-sock"
mkdir "$work/in"
# Every connection is a descriptor on each side: both run under the hard limit.
ulimit -n "$(ulimit -Hn)"
# shellcheck disable=SC2086 # the options are words on purpose
"$work/kn-sock" run-file-server 0 "$work/in" --host 127.0.0.1 ${KNSOCK_FLEET_SERVER_ARGS:-} \
  >"$work/server.out" 2>"$work/server.err" &
srv=$!
for _ in $(seq 100); do grep -qs '^listening on' "$work/server.out" && break; sleep 0.1; done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/server.out")
[ -n "$port" ] || { cat "$work/server.err" >&2; exit 1; }
echo "receiver: kn-sock run-file-server ${KNSOCK_FLEET_SERVER_ARGS:-(defaults)}, descriptors $(ulimit -n)"
bench/fleet/target/release/fleet "127.0.0.1:$port" --senders "$senders" --dir "$work/in" \
  --probe-bin "$work/kn-sock" --probes 20 --server-pid "$srv"
echo "receiver's stderr: $(wc -l <"$work/server.err") lines; the most frequent:"
sed 's/[0-9]\+/N/g' "$work/server.err" | sort | uniq -c | sort -rn | head -5
