#!/usr/bin/env bash
# A real S3-compatible server (SeaweedFS `weed mini`) on 127.0.0.1 for tests and benchmarks,
# built from source through the Go module proxy (the only place a fresh machine can get it from).
#
# Usage:
#   scripts/seaweedfs.sh build            build weed once into the cache; prints its path last
#   scripts/seaweedfs.sh start DATA_DIR   start weed mini on free ports, wait until a signed PUT
#                                         succeeds, print endpoint=, access_key=, secret_key=,
#                                         region=, pid=, log= lines. DATA_DIR keeps: endpoint,
#                                         pid, ports, env (AWS_* exports to source), s3.json,
#                                         weed.log, glog's weed.* logs, and weed/ (the data)
#   scripts/seaweedfs.sh stop DATA_DIR    stop it (SIGTERM, then SIGKILL after a deadline)
#
# Environment:
#   KNSOCK_WEED_CACHE    where builds are kept, one directory per SeaweedFS version holding the
#                        binary ($KNSOCK_WEED_CACHE/<version>/weed) and, while building, its Go
#                        caches; default ${XDG_CACHE_HOME:-$HOME/.cache}/knsock/seaweedfs
#   KNSOCK_WEED_TIMEOUT  seconds start waits for the first successful signed PUT (default 120)
#   KNSOCK_WEED_STOP_TIMEOUT  seconds stop waits after SIGTERM before SIGKILL (default 20)
#
# Fixed test credentials (SigV4, any region; path-style URLs http://127.0.0.1:PORT/bucket/key):
#   access key knsock-test, secret key knsock-test-secret. Unsigned requests get 403.
#   A read-only identity for "access denied" tests: knsock-readonly, knsock-readonly-secret.
#   KNSOCK_WEED_WATCH_PID=PID with start: stop weed (and remove DATA_DIR) once PID has exited.
# Signing with curl 7.88's --aws-sigv4 (boto3 needs none of this): send x-amz-content-sha256
# yourself (curl omits it, and a PUT with -d/--data-binary then gets SignatureDoesNotMatch);
# write a bare sub-resource as `?uploads=` (`?uploads` gets SignatureDoesNotMatch); send copy
# requests without -d; curl cannot sign x-amz-copy-source-range (it sorts that header before
# x-amz-copy-source), so UploadPartCopy with a range needs an SDK.
set -euo pipefail

# A pseudo-version of the SeaweedFS module; changing it builds into a new cache directory.
WEED_MODULE=github.com/seaweedfs/seaweedfs
WEED_VERSION=v0.0.0-20261109003541-7506e5f91cd6
ACCESS_KEY=knsock-test
SECRET_KEY=knsock-test-secret
# A second identity that may read and list but not write: the tests' "access denied".
READONLY_KEY=knsock-readonly
READONLY_SECRET=knsock-readonly-secret
REGION=us-east-1
PROBE_BUCKET=knsock-probe

cache_dir=${KNSOCK_WEED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/knsock/seaweedfs}/$WEED_VERSION
weed_bin=$cache_dir/weed

die() { echo "seaweedfs.sh: $*" >&2; exit 1; }

# The go command: PATH first, then where the official tarball installs it.
find_go() {
  if command -v go >/dev/null; then command -v go
  elif [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go
  else die "go not found: run scripts/install-deps.sh"
  fi
}

# Builds weed into $weed_bin unless it is already there. The Go module and build caches live
# under the cache directory (not the user's GOPATH, which may be absent, unwritable or shared)
# and are removed after a successful build: the binary is all that is needed later, and they
# take a few GiB. An interrupted build leaves them, so the next one resumes its downloads.
build() {
  if [ -x "$weed_bin" ]; then echo "$weed_bin"; return; fi
  local go work dir tmp
  go=$(find_go)
  mkdir -p "$cache_dir"
  # One build at a time (two test runs may start together on a fresh machine); whoever waited
  # finds the binary the other built.
  exec 9> "$cache_dir/build.lock"
  flock 9
  if [ -x "$weed_bin" ]; then exec 9>&-; echo "$weed_bin"; return; fi
  work=$cache_dir/build
  export GOPATH=$work/gopath GOMODCACHE=$work/gopath/pkg/mod GOCACHE=$work/gocache
  # No .git in a module download, and a user's -mod=vendor or similar must not leak in. Go must
  # be at least the module's go line (1.26.6 for this version): with an older one, set
  # GOTOOLCHAIN to a newer released toolchain (go1.21+ fetches it through the module proxy).
  export GOFLAGS=-buildvcs=false CGO_ENABLED=0
  echo "building SeaweedFS $WEED_VERSION with $("$go" version) (a few minutes)" >&2
  dir=$("$go" mod download -json "$WEED_MODULE@$WEED_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || die "go mod download gave no directory"
  # The module cache is read-only, and `go install module@version` refuses a go.mod with a
  # replace directive: build in a writable copy of the module instead.
  rm -rf "$work/src"
  cp -r "$dir" "$work/src"
  chmod -R u+w "$work/src"
  # Build to a temporary name and rename, so an interrupted build never leaves a broken binary.
  tmp=$cache_dir/weed.tmp.$$
  trap "rm -f $(printf %q "$tmp")" EXIT
  (cd "$work/src" && "$go" build -trimpath -ldflags="-s -w" -o "$tmp" ./weed)
  mv -f "$tmp" "$weed_bin"
  trap - EXIT
  # The module cache is written read-only; make it removable first.
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
  exec 9>&-
  echo "$weed_bin"
}

# Prints N distinct TCP ports that are free on 127.0.0.1 now. They are drawn below Linux's
# ephemeral range (32768+), so weed's own outgoing connections cannot take one between this
# choice and weed binding it; each is held open until all are chosen, so none repeats.
free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
want, held = int(sys.argv[1]), []
while len(held) < want:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randrange(20000, 32000)))
        held.append(s)
    except OSError:
        s.close()
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
}

# True while pid runs (a zombie, which nobody may reap in a container, counts as gone).
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# One signed S3 request with the test credentials and an optional small body; prints the HTTP
# status (000 if none). curl 7.88's --aws-sigv4 signs the body's hash but does not send it in
# x-amz-content-sha256, and SeaweedFS then checks the signature against the empty body's hash
# (SignatureDoesNotMatch): so send the header ourselves.
s3() {
  local method=$1 url=$2 body=${3:-} hash
  hash=$(printf '%s' "$body" | sha256sum | cut -d' ' -f1)
  curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -X "$method" \
    --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    -H "x-amz-content-sha256: $hash" --data-binary "$body" "$url" 2>/dev/null || true
}

# The S3 identities file: one admin identity with the fixed test keys. With it weed enforces
# SigV4 (unsigned requests are refused), so tests see a real authenticated S3 API.
write_s3_config() {
  cat > "$1" <<JSON
{
  "identities": [
    {
      "name": "knsock-test",
      "credentials": [{ "accessKey": "$ACCESS_KEY", "secretKey": "$SECRET_KEY" }],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    },
    {
      "name": "knsock-readonly",
      "credentials": [{ "accessKey": "$READONLY_KEY", "secretKey": "$READONLY_SECRET" }],
      "actions": ["Read", "List"]
    }
  ]
}
JSON
}

# Starts one weed mini attempt on fresh ports; sets $pid and $endpoint. Fails (1) if weed dies
# (most likely a port taken between choice and bind) or the deadline passes.
start_once() {
  local data=$1 deadline=$2 ports master master_grpc volume volume_grpc filer filer_grpc
  local s3port s3_grpc admin admin_grpc code
  ports=$(free_ports 10)
  read -r master master_grpc volume volume_grpc filer filer_grpc s3port s3_grpc admin admin_grpc \
    <<< "$ports"
  endpoint=http://127.0.0.1:$s3port
  # Every bucket is a collection that takes several volumes of its own as it grows; with the
  # default limits (sized from free disk) a few buckets exhaust them and writes fail with
  # "No writable volumes". Small volumes, many allowed: they take disk only as written.
  # Every port explicit (weed mini would otherwise move a busy default port silently, and we
  # must know the S3 one); all listeners on 127.0.0.1 only (-ip is also the address the
  # components dial each other on). WebDAV, Iceberg, Lance, the admin UI and its legacy port are
  # off: not needed, and each is one more fixed port that two instances would fight over.
  # Telemetry off: no traffic to the outside. AWS_* are cleared so a caller's credentials never
  # become a second admin identity (weed reads them as a fallback).
  # -logdir: glog's files (weed.INFO, weed.*.log.*) go with the data, not into $TMPDIR.
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
    "$weed_bin" -logdir="$data" mini \
    -dir="$data/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$master" -master.port.grpc="$master_grpc" -master.telemetry=false \
    -volume.port="$volume" -volume.port.grpc="$volume_grpc" \
    -filer.port="$filer" -filer.port.grpc="$filer_grpc" \
    -s3.port="$s3port" -s3.port.grpc="$s3_grpc" -s3.config="$data/s3.json" \
    -s3.port.iceberg=0 -s3.port.lance=0 -webdav=false \
    -admin.port="$admin" -admin.port.grpc="$admin_grpc" -admin.port.legacy=0 -admin.ui=false \
    -master.volumeSizeLimitMB=64 -volume.max=400 \
    < /dev/null >> "$data/weed.log" 2>&1 &
  pid=$!
  echo "$pid" > "$data/pid"
  echo "$endpoint" > "$data/endpoint"
  echo "master=$master master_grpc=$master_grpc volume=$volume volume_grpc=$volume_grpc" \
    "filer=$filer filer_grpc=$filer_grpc s3=$s3port s3_grpc=$s3_grpc admin=$admin" \
    "admin_grpc=$admin_grpc" > "$data/ports"
  # Ready means a signed PUT of an object has succeeded: the S3 port answering is not enough,
  # the filer and a writable volume must be up too (about 5 s after start).
  while [ "$(date +%s)" -lt "$deadline" ]; do
    alive "$pid" || return 1
    code=$(s3 PUT "$endpoint/$PROBE_BUCKET")
    if [ "$code" = 200 ] || [ "$code" = 409 ]; then
      code=$(s3 PUT "$endpoint/$PROBE_BUCKET/ready" ready)
      if [ "$code" = 200 ]; then
        # Leave the server empty for the tests: no probe object, no probe bucket.
        s3 DELETE "$endpoint/$PROBE_BUCKET/ready" > /dev/null
        s3 DELETE "$endpoint/$PROBE_BUCKET" > /dev/null
        return 0
      fi
    fi
    sleep 0.25
  done
  return 1
}

# Starts weed mini for DATA_DIR and waits until it takes writes.
start() {
  local data=${1:-} timeout=${KNSOCK_WEED_TIMEOUT:-120} deadline attempt logsize pid endpoint
  [ -n "$data" ] || die "usage: $0 start DATA_DIR"
  mkdir -p "$data"
  data=$(cd "$data" && pwd)
  if [ -f "$data/pid" ] && alive "$(cat "$data/pid")"; then
    die "already running in $data (pid $(cat "$data/pid")); stop it first"
  fi
  command -v curl >/dev/null || die "curl not found"
  build > /dev/null
  write_s3_config "$data/s3.json"
  : > "$data/weed.log"
  deadline=$(( $(date +%s) + timeout ))
  # A port chosen free can still be taken before weed binds it: then weed exits at once saying
  # so, and another set of ports is tried. Any other failure is final.
  for attempt in 1 2 3; do
    logsize=$(stat -c %s "$data/weed.log")
    if start_once "$data" "$deadline"; then
      watch_parent "$data"
      echo "endpoint=$endpoint"
      echo "access_key=$ACCESS_KEY"
      echo "secret_key=$SECRET_KEY"
      echo "region=$REGION"
      echo "pid=$pid"
      echo "log=$data/weed.log"
      # For `. DATA_DIR/env`: what boto3 and the AWS CLI read.
      printf 'export AWS_ENDPOINT_URL=%s\nexport AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\nexport AWS_DEFAULT_REGION=%s\n' \
        "$endpoint" "$ACCESS_KEY" "$SECRET_KEY" "$REGION" > "$data/env"
      return 0
    fi
    if alive "$pid"; then
      echo "seaweedfs.sh: weed mini took no signed PUT within ${timeout}s" >&2
      break
    fi
    echo "seaweedfs.sh: weed exited during start (attempt $attempt)" >&2
    if [ "$attempt" = 3 ] ||
       ! tail -c +$((logsize + 1)) "$data/weed.log" | grep -qiE 'address already in use|not available'
    then
      break
    fi
    echo "seaweedfs.sh: a port was taken meanwhile; retrying on other ports" >&2
  done
  echo "seaweedfs.sh: last lines of $data/weed.log:" >&2
  tail -n 40 "$data/weed.log" >&2 || true
  stop "$data" >&2 || true
  exit 1
}

# With KNSOCK_WEED_WATCH_PID set (a test process that started weed for itself), stops weed once
# that process is gone, so no engine outlives the tests that needed it. The watcher checks
# every second; it has nothing else to wait on.
watch_parent() {
  local parent=${KNSOCK_WEED_WATCH_PID:-}
  [ -n "$parent" ] || return 0
  (
    trap '' HUP
    while kill -0 "$parent" 2>/dev/null; do sleep 1; done
    stop "$1" >/dev/null 2>&1
    rm -rf "$1"
  ) </dev/null >/dev/null 2>&1 &
  disown
}

# Stops the weed started for DATA_DIR: SIGTERM (weed shuts down cleanly), then SIGKILL if it is
# still there after a deadline. The pid is checked to be that weed, in case it was reused.
stop() {
  local data=${1:-} pid i port
  [ -n "$data" ] || die "usage: $0 stop DATA_DIR"
  [ -f "$data/pid" ] || { echo "seaweedfs.sh: not running (no $data/pid)" >&2; return 0; }
  pid=$(cat "$data/pid")
  if alive "$pid" && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q ' mini '; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 "$(( ${KNSOCK_WEED_STOP_TIMEOUT:-20} * 10 ))"); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      echo "seaweedfs.sh: weed (pid $pid) ignored SIGTERM, killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      for i in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
    fi
  fi
  rm -f "$data/pid"
  # weed keeps Unix sockets in /tmp named after its ports; it removes them on SIGTERM but not
  # when killed, so remove this instance's (a later weed on the same port would replace them).
  if [ -f "$data/ports" ] && ! alive "$pid"; then
    for port in $(grep -o '[0-9][0-9]*' "$data/ports"); do
      rm -f /tmp/seaweedfs-*-"$port".sock
    done
  fi
}

main() {
  local cmd=${1:-}
  case "$cmd" in
    build) build ;;
    start) start "${2:-}" ;;
    stop) stop "${2:-}" ;;
    *) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2; exit 2 ;;
  esac
}

# `exit` on the same line: bash reads a script as it runs, so an edit made meanwhile to this
# file cannot run as a stray command after main.
main "$@"; exit
