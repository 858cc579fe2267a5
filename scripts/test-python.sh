#!/usr/bin/env bash
# The Python package: a fresh virtual environment, `pip install ./bindings/python` (which builds
# the Rust library with cargo, reusing this repository's target/), pytest and the real kn-sock
# 0.3.0 from PyPI for interop, then the pytest suite in bindings/python/tests.
# Usage: scripts/test-python.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${KNSOCK_PYTHON_VENV:-build/pyvenv}
rm -rf "$venv"
python3 -m venv "$venv"
py=$venv/bin/python
# kn-sock 0.3.0 without its unused heavy dependencies (pyaudio, opencv), as scripts/interop.sh.
"$py" -m pip install -q --no-deps kn-sock==0.3.0
"$py" -m pip install -q tqdm requests pytest
"$py" -m pip install -q ./bindings/python
# pytest's temporary directories in one of ours, removed after (not $TMPDIR/pytest-of-$USER).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The installed package, not the source tree: run from a directory where `knsock` is not local.
"$py" -m pytest -p no:cacheprovider --basetemp "$tmp/pytest" \
  --rootdir bindings/python bindings/python/tests "$@"
