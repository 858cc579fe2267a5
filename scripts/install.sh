#!/usr/bin/env bash
# Installs what `cargo build --release` made under PREFIX, laid out as a distribution would:
# the header and the C++ header, libknsock.so.X.Y.Z with its SONAME and dev symlink, the
# libknsock.a that exports only knsock_* (scripts/static-lib.sh), the kn-sock CLI, the
# pkg-config files knsock.pc (shared) and knsock-static.pc, and the CMake package (knsock::knsock,
# knsock::static, knsock::cpp). The .pc files and the CMake package find the prefix from their
# own location, so a tree staged under DESTDIR (or moved) works as it is.
#   [DESTDIR=STAGE] [LIBDIR=lib] scripts/install.sh PREFIX [BUILD]
# PREFIX: absolute, as the files will finally live. BUILD: where cargo put its output (default
# target/release). LIBDIR (relative to PREFIX): by default what CMake's GNUInstallDirs picks,
# lib/<multiarch> for /usr on Debian, lib64 for a 64-bit RPM-style system, otherwise lib.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
usage="usage: [DESTDIR=STAGE] [LIBDIR=lib] install.sh PREFIX [BUILD]"
prefix=${1:?$usage}
build=${2:-$root/target/release}
case $prefix in
  /*) ;;
  *) echo "install.sh: PREFIX must be absolute ($prefix)" >&2; exit 2 ;;
esac
prefix=${prefix%/}
if [ -z "${LIBDIR:-}" ]; then
  LIBDIR=lib
  if [ -f /etc/debian_version ]; then
    multiarch=$("${CC:-cc}" -print-multiarch 2>/dev/null || true)
    if [ "$prefix" = /usr ] && [ -n "$multiarch" ]; then LIBDIR=lib/$multiarch; fi
  elif [ ! -f /etc/arch-release ] && [ -d /usr/lib64 ] && [ "$(getconf LONG_BIT)" = 64 ]; then
    LIBDIR=lib64
  fi
fi
libdir=${LIBDIR%/}
case $libdir in
  /* | *..* | '') echo "install.sh: LIBDIR must be a path inside PREFIX ($libdir)" >&2; exit 2 ;;
esac
dest=${DESTDIR:-}$prefix

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
major=${version%%.*}; rest=${version#*.}; minor=${rest%%.*}
soname_ver=$([ "$major" = 0 ] && echo "0.$minor" || echo "$major")

# What a static link needs besides libknsock.a, exactly as rustc reports it. The answer depends
# on the dependencies and the toolchain, not on the profile. Quick: an empty static library over
# the build's own libknsock.rlib has the same dependency graph, so rustc lists the same libraries
# without compiling anything. Otherwise (no rlib, or one from another rustc) cargo builds the
# library as a staticlib once more in a target directory of its own, and replays it when fresh.
native_probe() {
  local tmp rc=0
  [ -f "$build/libknsock.rlib" ] || return 0
  tmp=$(mktemp -d)
  echo 'extern crate knsock;' > "$tmp/probe.rs"
  rustc --edition 2021 --crate-type staticlib --crate-name knsock_native_probe \
    -L "dependency=$build/deps" --extern "knsock=$build/libknsock.rlib" \
    --print native-static-libs -o "$tmp/libprobe.a" "$tmp/probe.rs" 2>&1 || rc=$?
  rm -rf "$tmp"
  return "$rc"
}
native=$(native_probe 2>/dev/null | sed -n 's/^note: native-static-libs: //p' | tail -1) || native=
if [ -z "$native" ]; then
  native=$(cd "$root" && cargo rustc --quiet --locked --release --lib --crate-type staticlib \
    --target-dir "$root/target/native-static-libs" -- --print native-static-libs 2>&1 |
    sed -n 's/^note: native-static-libs: //p' | tail -1)
fi
if [ -z "$native" ]; then
  echo "install.sh: rustc did not report the native static libraries" >&2
  exit 1
fi

# From a file in DIR up to PREFIX: one ".." per component of DIR.
up() { local d=$1 p=""; while [ -n "$d" ] && [ "$d" != . ]; do p="$p/.."; d=$(dirname "$d"); done; echo "${p#/}"; }

mkdir -p "$dest/include" "$dest/$libdir/pkgconfig" "$dest/$libdir/cmake/knsock" "$dest/bin"
install -m 0644 "$root/include/knsock.h" "$dest/include/knsock.h"
install -m 0644 "$root/bindings/cpp/include/knsock.hpp" "$dest/include/knsock.hpp"
"$root/scripts/static-lib.sh" "$build/libknsock.a" "$dest/$libdir/libknsock.a"
install -m 0755 "$build/libknsock.so" "$dest/$libdir/libknsock.so.$version"
ln -sfn "libknsock.so.$version" "$dest/$libdir/libknsock.so.$soname_ver"
ln -sfn "libknsock.so.$soname_ver" "$dest/$libdir/libknsock.so"
if [ -x "$build/kn-sock" ]; then install -m 0755 "$build/kn-sock" "$dest/bin/kn-sock"; fi

pc_head="prefix=\${pcfiledir}/$(up "$libdir/pkgconfig")
exec_prefix=\${prefix}
libdir=\${prefix}/$libdir
includedir=\${prefix}/include
"
cat > "$dest/$libdir/pkgconfig/knsock.pc" <<PC
$pc_head
Name: knsock
Description: Reliable file transfer over TCP, wire-compatible with kn-sock (shared library)
Version: $version
Libs: -L\${libdir} -lknsock
Libs.private: $native
Cflags: -I\${includedir}
PC
# `pkg-config --static knsock` still names -lknsock, which a linker resolves to the .so; this
# one names the archive itself, so it links statically with any linker.
cat > "$dest/$libdir/pkgconfig/knsock-static.pc" <<PC
$pc_head
Name: knsock-static
Description: Reliable file transfer over TCP, wire-compatible with kn-sock (static library)
Version: $version
Libs: \${libdir}/libknsock.a $native
Cflags: -I\${includedir}
PC

cat > "$dest/$libdir/cmake/knsock/knsockConfig.cmake" <<CM
# find_package(knsock) gives knsock::knsock (the shared library), knsock::static (libknsock.a
# and the system libraries it needs) and knsock::cpp (the header-only C++17 binding, over
# knsock::knsock; set KNSOCK_CPP_STATIC to ON before find_package to put it over knsock::static).
# It needs no compiler and no other package, so it works from project(x C).
get_filename_component(_knsock_prefix "\${CMAKE_CURRENT_LIST_DIR}/$(up "$libdir/cmake/knsock")" ABSOLUTE)
if(NOT TARGET knsock::knsock)
  add_library(knsock::knsock SHARED IMPORTED)
  set_target_properties(knsock::knsock PROPERTIES
    IMPORTED_LOCATION "\${_knsock_prefix}/$libdir/libknsock.so.$soname_ver"
    IMPORTED_SONAME "libknsock.so.$soname_ver"
    INTERFACE_INCLUDE_DIRECTORIES "\${_knsock_prefix}/include")
  add_library(knsock::static STATIC IMPORTED)
  set_target_properties(knsock::static PROPERTIES
    IMPORTED_LOCATION "\${_knsock_prefix}/$libdir/libknsock.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "\${_knsock_prefix}/include"
    INTERFACE_LINK_LIBRARIES "$(echo $native | sed 's/ /;/g')")
  add_library(knsock::cpp INTERFACE IMPORTED)
  if(KNSOCK_CPP_STATIC)
    set(_knsock_base knsock::static)
  else()
    set(_knsock_base knsock::knsock)
  endif()
  set_target_properties(knsock::cpp PROPERTIES
    INTERFACE_LINK_LIBRARIES "\${_knsock_base}"
    INTERFACE_COMPILE_FEATURES cxx_std_17)
  unset(_knsock_base)
endif()
unset(_knsock_prefix)
CM
cat > "$dest/$libdir/cmake/knsock/knsockConfigVersion.cmake" <<CM
# Before 1.0 a minor version may break the ABI (the SONAME is libknsock.so.$soname_ver).
set(PACKAGE_VERSION "$version")
if(PACKAGE_FIND_VERSION_MAJOR STREQUAL "$major" AND
   ("$major" STRGREATER "0" OR PACKAGE_FIND_VERSION_MINOR STREQUAL "$minor") AND
   NOT PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
else()
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
endif()
CM
echo "installed knsock $version under ${DESTDIR:+$DESTDIR}$prefix (libdir $libdir)"
