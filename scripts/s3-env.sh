# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/stress.sh: unless KNSOCK_S3_ENDPOINT is set already,
# starts one S3 engine (SeaweedFS, scripts/seaweedfs.sh, built once into the cache) for every
# suite of the run, makes the bucket the C, C++ and Go tests use, exports KNSOCK_S3_ENDPOINT and
# KNSOCK_S3_BUCKET, and stops the engine when the sourcing script exits. (The Rust tests make
# their own bucket, and start their own engine when run alone.)
# Needs the caller's `cleanup` array, run by its EXIT trap.
if [[ -z ${KNSOCK_S3_ENDPOINT:-} ]]; then
  s3_engine_dir=$(mktemp -d)
  cleanup+=("scripts/seaweedfs.sh stop '$s3_engine_dir' >/dev/null; rm -rf '$s3_engine_dir'")
  scripts/seaweedfs.sh start "$s3_engine_dir" >/dev/null
  KNSOCK_S3_ENDPOINT=$(cat "$s3_engine_dir/endpoint")
fi
KNSOCK_S3_BUCKET=${KNSOCK_S3_BUCKET:-knsock-bindings}
# 409: it is there already.
curl -sS -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" \
  --user knsock-test:knsock-test-secret "$KNSOCK_S3_ENDPOINT/$KNSOCK_S3_BUCKET" |
  grep -qE '^(200|409)$' || { echo "cannot make bucket $KNSOCK_S3_BUCKET at $KNSOCK_S3_ENDPOINT" >&2; exit 1; }
export KNSOCK_S3_ENDPOINT KNSOCK_S3_BUCKET
