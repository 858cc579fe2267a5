#!/usr/bin/env bash
# Interop with the real kn-sock 0.3.0 from PyPI: a virtual environment with kn-sock (without its
# unused heavy dependencies: pyaudio, opencv) and pytest, then tests/interop against the release
# kn-sock binary. Also with the previous release's protocol: the kn-sock CLI of git commit
# 60eb350, built once by scripts/prev-knsock.sh (about 2 minutes, cached in build/prev-knsock/;
# KNSOCK_PREV_BIN set beforehand uses that binary instead), for tests/interop/test_prev_knsock.py.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${KNSOCK_PY_VENV:-build/py-venv}
if ! "$venv/bin/python" -c 'import kn_sock.file_transfer, pytest' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --no-deps kn-sock==0.3.0
  "$venv/bin/pip" install -q tqdm requests pytest
fi
if [[ -z ${KNSOCK_PREV_BIN:-} ]]; then
  KNSOCK_PREV_BIN=$(scripts/prev-knsock.sh)
fi
export KNSOCK_PREV_BIN
# No .pytest_cache left in the tree, no pytest-of-$USER in $TMPDIR (as scripts/test-python.sh).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
KNSOCK_BIN=$PWD/target/release/kn-sock "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  --basetemp "$tmp/pytest" tests/interop "$@"
