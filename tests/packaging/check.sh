#!/usr/bin/env bash
# Installs knsock into a scratch prefix and links a consumer the two ways the README shows:
# pkg-config (shared, then static) and CMake's find_package(knsock).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
libdir=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
"$root/scripts/install.sh" "$work/prefix" "$libdir" >/dev/null
export PKG_CONFIG_PATH=$work/prefix/lib/pkgconfig
[ "$(pkg-config --modversion knsock)" = "$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)" ]
cc -Wall -Werror -o "$work/pc_shared" "$root/tests/c/header_c99.c" $(pkg-config --cflags --libs knsock) \
   -Wl,-rpath,"$work/prefix/lib"
"$work/pc_shared"
readelf -d "$work/pc_shared" | grep -q 'NEEDED.*libknsock.so.0.1'
cc -Wall -Werror -o "$work/pc_static" "$root/tests/c/header_c99.c" $(pkg-config --cflags knsock) \
   "$work/prefix/lib/libknsock.a" $(pkg-config --libs-only-l --static knsock | sed 's/-lknsock//')
"$work/pc_static"
mkdir -p "$work/consumer"
cp "$root/tests/c/header_c99.c" "$work/consumer/main.c"
cat > "$work/consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(consumer C)
find_package(knsock 0.1 REQUIRED)
add_executable(consumer main.c)
target_link_libraries(consumer PRIVATE knsock::knsock)
add_executable(consumer_static main.c)
target_link_libraries(consumer_static PRIVATE knsock::static)
CM
cmake -S "$work/consumer" -B "$work/consumer/build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer/build" >/dev/null
"$work/consumer/build/consumer"
"$work/consumer/build/consumer_static"
echo "packaging: pkg-config and find_package consumers link and run"
