#!/usr/bin/env bash
# Uses knsock as its users do, from outside this tree: installs what `cargo build --release` made
# with scripts/install.sh under a DESTDIR staging directory (prefix /usr, so the Debian libdir),
# then builds and runs, each in a scratch copy, a C program through pkg-config (shared and
# static, and static beside the system's static libzstd), a C-only CMake project, a C++ CMake
# project on knsock::cpp (no GoogleTest), and a Go module that gets bindings/go copied alone.
# Every program makes a real transfer over 127.0.0.1 and checks the bytes.
#   tests/consumers/run.sh [BUILD]   (BUILD: cargo's output, default target/release)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/target/release}
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
step() { echo "--- consumers: $*"; }
# The shared libraries a program needs (captured first: `readelf | grep -q` can die of SIGPIPE).
needed() { local d; d=$(readelf -d "$1"); grep 'NEEDED' <<<"$d" || true; }

stage=$work/stage
DESTDIR=$stage "$root/scripts/install.sh" /usr "$build"
pcdir=$(dirname "$(find "$stage/usr" -name knsock.pc)")
export PKG_CONFIG_PATH=$pcdir
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
[ "$(pkg-config --modversion knsock)" = "$version" ]
[ "$(pkg-config --modversion knsock-static)" = "$version" ]
libdir=$(pkg-config --variable=libdir knsock)

step "the installed libknsock.a defines only knsock_* as global symbols"
globals=$(readelf -sW "$libdir/libknsock.a" |
  awk '($5 == "GLOBAL" || $5 == "WEAK") && $7 != "UND" && $8 != "" { print $8 }')
others=$(grep -v '^knsock_' <<<"$globals" || true)
if [ -n "$others" ]; then
  echo "non-knsock global symbols in libknsock.a:" $others >&2
  exit 1
fi
[ "$(grep -c '^knsock_' <<<"$globals")" -gt 50 ]
[ "$(pkg-config --static --libs knsock | tr -s ' ' | sed 's/ $//')" = \
  "-L$libdir -lknsock $(pkg-config --libs knsock-static | sed "s|^$libdir/libknsock.a ||; s/ *$//")" ]

cc_flags=(-std=c99 -Wall -Wextra -Wpedantic -Werror)
step "C through pkg-config, shared"
cc "${cc_flags[@]}" -o "$work/c_shared" "$here/c/main.c" $(pkg-config --cflags --libs knsock) \
  -Wl,-rpath,"$libdir"
needed "$work/c_shared" | grep -q '\[libknsock\.so\.0\.1\]'
"$work/c_shared"

step "C through pkg-config, static (knsock-static)"
cc "${cc_flags[@]}" -o "$work/c_static" "$here/c/main.c" $(pkg-config --cflags --libs knsock-static)
if needed "$work/c_static" | grep -q libknsock; then
  echo "c_static links libknsock.so" >&2
  exit 1
fi
"$work/c_static"

step "C through pkg-config, static, beside the system's static libzstd"
cc "${cc_flags[@]}" -DKNSOCK_CONSUMER_ZSTD -o "$work/c_zstd" "$here/c/main.c" \
  $(pkg-config --cflags --libs knsock-static) "$(cc -print-file-name=libzstd.a)"
"$work/c_zstd"

step "C through CMake, project(x C)"
cp -r "$here/c" "$here/c-cmake" "$work/"
cmake -S "$work/c-cmake" -B "$work/c-cmake/build" -G Ninja -DCMAKE_PREFIX_PATH="$stage/usr" >/dev/null
cmake --build "$work/c-cmake/build" >/dev/null
"$work/c-cmake/build/consumer_shared"
"$work/c-cmake/build/consumer_static"

step "C++ through CMake and knsock::cpp (over knsock::knsock, then knsock::static)"
cp -r "$here/cpp-cmake" "$work/"
cmake -S "$work/cpp-cmake" -B "$work/cpp-cmake/build" -G Ninja -DCMAKE_PREFIX_PATH="$stage/usr" >/dev/null
cmake --build "$work/cpp-cmake/build" >/dev/null
needed "$work/cpp-cmake/build/consumer" | grep -q libknsock
"$work/cpp-cmake/build/consumer"
cmake -S "$work/cpp-cmake" -B "$work/cpp-cmake/build-static" -G Ninja -DCMAKE_PREFIX_PATH="$stage/usr" \
  -DKNSOCK_CPP_STATIC=ON >/dev/null
cmake --build "$work/cpp-cmake/build-static" >/dev/null
"$work/cpp-cmake/build-static/consumer"

step "Go: bindings/go copied alone, an outside module, static (default) and knsock_shared"
cp -r "$root/bindings/go" "$work/knsock-go"
cp -r "$here/go" "$work/go-consumer"
export GOFLAGS=-mod=mod GOWORK=off GOPROXY=off
# Go's cache does not hash the libraries pkg-config names: key it on their content.
CGO_CFLAGS="-O2 -g -DKNSOCK_LIB_ID=$( (cat "$libdir/libknsock.a" "$libdir/libknsock.so"; echo "$libdir") | sha256sum | cut -c1-16)"
export CGO_CFLAGS
(
  cd "$work/go-consumer"
  go mod edit -replace "github.com/knsock/knsock/bindings/go=$work/knsock-go"
  go vet ./...
  go build -o consumer-static .
  # A distinct CGO_CFLAGS too: with only the tag changed, go 1.26 reused the static link flags.
  CGO_CFLAGS="$CGO_CFLAGS -DKNSOCK_SHARED" go build -tags knsock_shared -o consumer-shared .
)
if needed "$work/go-consumer/consumer-static" | grep -q libknsock; then
  echo "the default Go build links libknsock.so" >&2
  exit 1
fi
"$work/go-consumer/consumer-static"
needed "$work/go-consumer/consumer-shared" | grep -q 'libknsock\.so'
LD_LIBRARY_PATH=$libdir "$work/go-consumer/consumer-shared"

echo "consumers: pkg-config (shared, static, with libzstd), CMake C, CMake C++, Go (static, shared) build and transfer"
