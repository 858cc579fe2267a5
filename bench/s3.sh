#!/usr/bin/env bash
# The object-store benchmark (bench/s3.py): knsock into a local SeaweedFS and into a directory,
# against boto3 uploading the same data, in one run. Arguments go to bench/s3.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked
venv=${KNSOCK_S3_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/knsock/s3-venv}
exec "$venv/bin/python" bench/s3.py "$@"
