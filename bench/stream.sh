#!/usr/bin/env bash
# A 1 GiB stream through the CLI (`cat big.bin | kn-sock send-file … - --remote-name …`, a real
# pipe, size unknown) against the same file sent from disk, with the CPU each side spent; the
# cases and the report are described in bench/stream.py, which this runs.
# Usage: bench/stream.sh [ROUNDS] [OUTDIR]   (defaults 5, /dev/shm)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/stream.py --rounds "${1:-5}" --out "${2:-/dev/shm}"
