#!/usr/bin/env bash
# Runs the two C examples against each other: file_server (stopping itself after one file) and
# send_file, then checks the bytes. Usage: roundtrip.sh SEND_FILE FILE_SERVER WORKDIR
set -euo pipefail
send=$1 serve=$2 work=$3
rm -rf "$work" && mkdir -p "$work/in" "$work/out"
head -c 3000000 /dev/urandom > "$work/in/data.bin"
coproc SERVER { exec "$serve" 0 "$work/out" 1; }
# Bash unsets SERVER_PID once the coprocess has exited (this one stops after one file), so keep it.
server_pid=$SERVER_PID
read -r -t 10 line <&"${SERVER[0]}"
port=${line##* }
[[ $line == "listening on "* && -n $port ]] || { echo "unexpected first line: $line"; exit 1; }
"$send" 127.0.0.1 "$port" "$work/in/data.bin"
read -r -t 10 received <&"${SERVER[0]}" || true
echo "server: $received"
wait "$server_pid"
cmp "$work/in/data.bin" "$work/out/data.bin"
# The validator refuses executables with a reason the sender sees.
cp "$work/in/data.bin" "$work/in/tool.exe"
coproc SERVER { exec "$serve" 0 "$work/out" 1; }
server_pid=$SERVER_PID
read -r -t 10 line <&"${SERVER[0]}"
port=${line##* }
if out=$("$send" 127.0.0.1 "$port" "$work/in/tool.exe" 2>&1); then echo "tool.exe was accepted"; exit 1; fi
grep -q "executables are not accepted: tool.exe" <<<"$out" || { echo "no reason: $out"; exit 1; }
[[ ! -e $work/out/tool.exe ]] || { echo "refused file was stored"; exit 1; }
kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true
echo "c_example_roundtrip: ok"
