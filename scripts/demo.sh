#!/usr/bin/env bash
# The demo: builds the library, the CLI and the C and C++ examples (release), then runs a real
# transfer end to end: a kn-sock server on loopback, a 256 MiB file sent with the progress bar
# (drawn when stderr is a terminal), the bytes compared, then the C example sender, then a clean
# stop with SIGTERM; then the C++ and Go examples (each runs its own server) on the same file.
# It installs only what it needs and lacks (the C/C++ toolchain and Go, from Debian's packages:
# nothing at all on a machine that has them), never the tests' extras.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
scripts/install-deps.sh c go
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || export PATH=$PATH:/usr/local/go/bin

echo "building (cargo build --release, then the C and C++ examples)"
cargo build --release --locked
# Release: the C++ example reads both 256 MiB copies byte by byte to compare them (32 s unoptimized).
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/demo --target send_file cpp_example >/dev/null
echo "built in $((SECONDS - started)) s"

work=$(mktemp -d)
server=
trap '[ -z "$server" ] || kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/in" "$work/out"
head -c $((256 << 20)) /dev/urandom > "$work/in/demo.bin"

coproc SERVER { exec target/release/kn-sock run-file-server 0 "$work/out" --host 127.0.0.1; }
server=$SERVER_PID
read -r -t 10 line <&"${SERVER[0]}"
echo "server: $line"
port=${line##*:}

if [ -t 2 ]; then
  progress=--show-progress
else
  progress=--no-progress
  echo "(no progress bar: stderr is not a terminal; run scripts/demo.sh on one to see it)"
fi
target/release/kn-sock send-file 127.0.0.1 "$port" "$work/in/demo.bin" "$progress"
read -r -t 10 line <&"${SERVER[0]}" && echo "server: $line"
cmp "$work/in/demo.bin" "$work/out/demo.bin" && echo "demo.bin: 256 MiB identical on both sides"

cp "$work/in/demo.bin" "$work/in/from-c.bin"
build/demo/examples/send_file 127.0.0.1 "$port" "$work/in/from-c.bin"
read -r -t 10 line <&"${SERVER[0]}" && echo "server: $line"
cmp "$work/in/from-c.bin" "$work/out/from-c.bin" && echo "from-c.bin: identical (C example sender)"

kill -TERM "$server"
wait "$server" && echo "server stopped cleanly"
server=

echo "C++ example:"
build/demo/bindings/cpp/tests/cpp_example "$work/in/demo.bin"
if command -v go >/dev/null; then
  # The Go binding finds knsock through pkg-config, as its users' builds do.
  source scripts/go-env.sh
  echo "Go example:"
  (cd examples/go && go run . "$work/in/demo.bin")
else
  echo "Go example skipped: go not found (scripts/install-deps.sh installs it)"
fi
echo "demo: done in $((SECONDS - started)) s"
