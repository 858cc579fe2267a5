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
