#!/usr/bin/env bash
# Builds the `kn-sock` CLI of the previous release's protocol (git commit 60eb350, main before
# the optimistic first flight of issue 22) and prints the binary's path on stdout; everything
# else goes to stderr. The interop tests (tests/interop/test_prev_knsock.py, through
# scripts/interop.sh) run it as the old peer on either side.
#
#   scripts/prev-knsock.sh            build once, then reuse build/prev-knsock/60eb350/kn-sock
#
# The source comes from this repository's history (git archive | tar -x into
# build/prev-knsock/src), built with its own Cargo.lock (--locked) and its own target directory
# (build/prev-knsock/target), so it never touches target/. The crates come from ~/.cargo or the
# registry; no other network is needed. About 2 minutes the first time, nothing after.
# A shallow clone lacks the commit: the script says so and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
commit=60eb350
full=60eb350f085a04bbfc4aedb98f1bed0a646fbe82  # the same commit: a short id may become ambiguous as history grows
base=build/prev-knsock
bin=$base/$commit/kn-sock
if [[ -x $bin ]]; then
  echo "$PWD/$bin"
  exit 0
fi
if ! git cat-file -e "$full^{commit}" 2>/dev/null; then
  echo "prev-knsock.sh: commit $commit (the previous release's protocol) is not in this clone." >&2
  if [[ $(git rev-parse --is-shallow-repository 2>/dev/null) == true ]]; then
    echo "  This is a shallow clone: run 'git fetch --unshallow' (or clone without --depth)." >&2
  else
    echo "  Fetch it first: git fetch origin $commit" >&2
  fi
  exit 1
fi
rm -rf "$base/src"
mkdir -p "$base/src" "$base/$commit"
git archive "$full" | tar -x -C "$base/src"
echo "prev-knsock.sh: building kn-sock of $commit (the previous release's protocol)" >&2
# Not the caller's CARGO_TARGET_DIR: the old build must never mix with the current one.
(cd "$base/src" && CARGO_TARGET_DIR=$PWD/../target cargo build --release --locked -p kn-sock 1>&2)
# Copied under a temporary name first: a concurrent run never sees half a binary.
cp "$base/target/release/kn-sock" "$bin.tmp.$$"
mv -f "$bin.tmp.$$" "$bin"
echo "$PWD/$bin"
