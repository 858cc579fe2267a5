#!/usr/bin/env bash
# Makes the libknsock.a that ships from the one cargo builds. Cargo's archive holds knsock, Rust's
# standard library, the bundled zstd (ZSTD_*, HUF_*, FSE_*) and compiler builtins, all global, so
# it clashes with an application that links its own zstd or another Rust static library. Here it
# is partially linked into one object in which only the knsock_* symbols stay global.
#   scripts/static-lib.sh IN.a OUT.a
set -euo pipefail
in=${1:?usage: static-lib.sh IN.a OUT.a} out=${2:?usage: static-lib.sh IN.a OUT.a}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${LD:-ld}" -r --whole-archive "$in" -o "$tmp/knsock.o"
"${OBJCOPY:-objcopy}" --wildcard --keep-global-symbol='knsock_*' "$tmp/knsock.o"
bad=$(readelf -sW "$tmp/knsock.o" |
  awk '($5 == "GLOBAL" || $5 == "WEAK") && $7 != "UND" && $8 !~ /^knsock_/ { print $8 }')
if [ -n "$bad" ]; then
  echo "static-lib.sh: symbols other than knsock_* stayed global:" $bad >&2
  exit 1
fi
# GNU ar loads every plugin in /usr/lib/bfd-plugins to index an object; Debian's LLVMgold from
# LLVM 14 aborts on objects made by a newer rustc. GCC's own LTO plugin, when there, is enough.
ar_plugin=()
plugin=$("${CC:-cc}" -print-file-name=liblto_plugin.so 2>/dev/null || true)
[ -f "$plugin" ] && ar_plugin=(--plugin "$plugin")
"${AR:-ar}" "${ar_plugin[@]}" rcs "$tmp/libknsock.a" "$tmp/knsock.o"
mkdir -p "$(dirname "$out")"
install -m 0644 "$tmp/libknsock.a" "$out"
