# shellcheck shell=bash
# Sourced by the benchmark scripts: what they share.

# Builds the release binaries and prints the path of the `transfer` benchmark executable.
bench_transfer_exe() {
  cargo build --release --quiet
  cargo bench --no-run --bench transfer --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "transfer": print(m["executable"])'
}

# The test data in $1: big.bin (1 GiB of random bytes) and small/ (2,000 files of 4 KiB).
make_test_files() {
  head -c $((1 << 30)) /dev/urandom > "$1/big.bin"
  mkdir -p "$1/small"
  for i in $(seq -w 1 2000); do head -c 4096 /dev/urandom > "$1/small/f$i.dat"; done
}
