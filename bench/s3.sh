#!/usr/bin/env bash
# The object-store benchmark (bench/s3.py): knsock into a local SeaweedFS and into a directory,
# against boto3 uploading the same data, in one run. Arguments go to bench/s3.py. Installs boto3
# into ${KNSOCK_S3_VENV:-~/.cache/knsock/s3-venv} the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh s3 python
# The S3 client to compare with, boto3, in a virtual environment of its own under the user's
# cache (scripts/test-python.sh recreates build/pyvenv from nothing, so it cannot live there).
venv=${KNSOCK_S3_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/knsock/s3-venv}
if ! "$venv/bin/python" -c 'import boto3' 2>/dev/null; then
  echo "installing boto3 into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q boto3==1.44.5
fi
cargo build --release --locked
exec "$venv/bin/python" bench/s3.py "$@"
