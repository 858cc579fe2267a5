#!/usr/bin/env bash
# Installs the library, header, CLI, pkg-config file and CMake package under PREFIX, laid out
# as a distribution would: libknsock.so.X.Y.Z with its SONAME and dev symlinks.
#   scripts/install.sh PREFIX [LIBDIR]   (LIBDIR: where cargo put the build, default target/release)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${1:?usage: install.sh PREFIX [LIBDIR]}
from=${2:-$root/target/release}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
major=${version%%.*}; rest=${version#*.}; minor=${rest%%.*}
soname_ver=$([ "$major" = 0 ] && echo "0.$minor" || echo "$major")
mkdir -p "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/knsock" "$prefix/bin"
install -m 0644 "$root/include/knsock.h" "$prefix/include/knsock.h"
[ -d "$root/bindings/cpp/include" ] && install -m 0644 "$root"/bindings/cpp/include/*.hpp "$prefix/include/"
install -m 0644 "$from/libknsock.a" "$prefix/lib/libknsock.a"
install -m 0755 "$from/libknsock.so" "$prefix/lib/libknsock.so.$version"
ln -sf "libknsock.so.$version" "$prefix/lib/libknsock.so.$soname_ver"
ln -sf "libknsock.so.$soname_ver" "$prefix/lib/libknsock.so"
[ -x "$from/kn-sock" ] && install -m 0755 "$from/kn-sock" "$prefix/bin/kn-sock"

cat > "$prefix/lib/pkgconfig/knsock.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: knsock
Description: Reliable file transfer over TCP, wire-compatible with kn-sock
Version: $version
Libs: -L\${libdir} -lknsock
Libs.private: -lpthread -ldl -lm -lrt -lutil -lgcc_s
Cflags: -I\${includedir}
PC

cat > "$prefix/lib/cmake/knsock/knsockConfig.cmake" <<'CM'
# find_package(knsock) gives knsock::knsock (shared) and knsock::static.
get_filename_component(_knsock_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
include(CMakeFindDependencyMacro)
find_dependency(Threads)
if(NOT TARGET knsock::knsock)
  add_library(knsock::knsock SHARED IMPORTED)
  set_target_properties(knsock::knsock PROPERTIES
    IMPORTED_LOCATION "${_knsock_prefix}/lib/libknsock.so"
    INTERFACE_INCLUDE_DIRECTORIES "${_knsock_prefix}/include")
  add_library(knsock::static STATIC IMPORTED)
  set_target_properties(knsock::static PROPERTIES
    IMPORTED_LOCATION "${_knsock_prefix}/lib/libknsock.a"
    INTERFACE_INCLUDE_DIRECTORIES "${_knsock_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m;rt;util")
endif()
unset(_knsock_prefix)
CM
cat > "$prefix/lib/cmake/knsock/knsockConfigVersion.cmake" <<CM
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
echo "installed knsock $version under $prefix"
