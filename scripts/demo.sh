#!/usr/bin/env bash
# Builds everything and runs a real transfer end to end: a kn-sock server on loopback, a 256 MiB
# file sent with the progress bar, the bytes compared, then the C example sender, then a clean
# stop with SIGTERM; then the C++ and Go examples (each runs its own server) on the same file.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked
cmake -S . -B build/demo -G Ninja >/dev/null && cmake --build build/demo --target send_file file_server cpp_example
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/in" "$work/out"
head -c $((256 << 20)) /dev/urandom > "$work/in/demo.bin"

coproc SERVER { exec target/release/kn-sock run-file-server 0 "$work/out" --host 127.0.0.1; }
server=$SERVER_PID
read -r -t 10 line <&"${SERVER[0]}"
echo "server: $line"
port=${line##*:}

target/release/kn-sock send-file 127.0.0.1 "$port" "$work/in/demo.bin" --show-progress
read -r -t 10 line <&"${SERVER[0]}" && echo "server: $line"
cmp "$work/in/demo.bin" "$work/out/demo.bin" && echo "demo.bin: 256 MiB identical on both sides"

cp "$work/in/demo.bin" "$work/in/from-c.bin"
build/demo/examples/send_file 127.0.0.1 "$port" "$work/in/from-c.bin"
read -r -t 10 line <&"${SERVER[0]}" && echo "server: $line"
cmp "$work/in/from-c.bin" "$work/out/from-c.bin" && echo "from-c.bin: identical (C example sender)"

kill -TERM "$server"
wait "$server" && echo "server stopped cleanly"

echo "C++ example:"
build/demo/bindings/cpp/tests/cpp_example "$work/in/demo.bin"
if [ -f examples/go/go.mod ]; then
  command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
  # The Go binding finds knsock through pkg-config, as its users' builds do: install it first,
  # and key Go's build cache on the library it links (see scripts/test.sh).
  LIBDIR=lib scripts/install.sh "$work/prefix" >/dev/null
  export PKG_CONFIG_PATH=$work/prefix/lib/pkgconfig
  # The key holds the prefix too: the link names the library by its path.
  CGO_CFLAGS="-O2 -g -DKNSOCK_LIB_ID=$( (sha256sum "$work/prefix/lib/libknsock.a"; echo "$work") | sha256sum | cut -c1-16)"
  export CGO_CFLAGS
  echo "Go example:"
  (cd examples/go && go run . "$work/in/demo.bin")
fi
