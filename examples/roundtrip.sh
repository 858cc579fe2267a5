#!/usr/bin/env bash
# Runs the two C examples against each other: file_server (stopping itself after one file) and
# send_file, then checks the bytes. Usage: roundtrip.sh SEND_FILE FILE_SERVER WORKDIR
#
# The server's stdout goes to a FIFO that this script holds open for reading and writing, so a
# read waits for the server's next line (with a deadline) and never sees the descriptor vanish
# or end early when the server exits; bash's coproc closed it as soon as the process ended.
set -euo pipefail
send=$1 serve=$2 work=$3
rm -rf "$work" && mkdir -p "$work/in" "$work/out"
head -c 3000000 /dev/urandom > "$work/in/data.bin"
mkfifo "$work/server.out"
exec {server_out}<>"$work/server.out"
pid=
trap '[[ -z $pid ]] || kill "$pid" 2>/dev/null || true' EXIT

# Starts file_server (stopping after one file) and sets pid and port.
start_server() {
  "$serve" 0 "$work/out" 1 >"$work/server.out" &
  pid=$!
  local line
  read -r -t 10 line <&"$server_out" || { echo "no 'listening on' line within 10 s"; exit 1; }
  port=${line##* }
  [[ $line == "listening on "* && -n $port ]] || { echo "unexpected first line: $line"; exit 1; }
}

start_server
"$send" 127.0.0.1 "$port" "$work/in/data.bin"
# The server prints after it told the sender: wait for the line, then for the server to exit.
read -r -t 10 received <&"$server_out" || { echo "server printed nothing within 10 s"; exit 1; }
echo "server: $received"
[[ $received == "received data.bin (3000000 bytes) from "* ]] || { echo "unexpected: $received"; exit 1; }
wait "$pid" || { echo "file_server exited with $?"; exit 1; }
pid=
cmp "$work/in/data.bin" "$work/out/data.bin"

# The validator refuses executables with a reason the sender sees.
cp "$work/in/data.bin" "$work/in/tool.exe"
start_server
if out=$("$send" 127.0.0.1 "$port" "$work/in/tool.exe" 2>&1); then echo "tool.exe was accepted"; exit 1; fi
grep -q "executables are not accepted: tool.exe" <<<"$out" || { echo "no reason: $out"; exit 1; }
[[ ! -e $work/out/tool.exe ]] || { echo "refused file was stored"; exit 1; }
kill "$pid"; wait "$pid" 2>/dev/null || true
pid=
echo "c_example_roundtrip: ok"
