"""kn-sock's documented file-transfer usage, written against `kn_sock` and run with only the
import changed to `knsock` (what a user moving over does)."""
import signal
import subprocess
import sys
import textwrap

from conftest import DEADLINE, Lines, free_port, make_file, python

SERVER = """
import os
from kn_sock import start_file_server

def on_received(filename, filepath, addr):
    print(f"received {filename} from {addr[0]} into {filepath}", flush=True)

def on_error(error, addr):
    print(f"error from {addr[0]}: {error}", flush=True)

def check(filename, filepath):
    if os.path.getsize(filepath) > 1024 * 1024:
        raise ValueError("File too large")
    if not any(filename.endswith(ext) for ext in [".txt", ".pdf"]):
        raise ValueError("File type not allowed")

start_file_server(PORT, SAVE_DIR, host="127.0.0.1", handler=on_received,
                  error_handler=on_error, validator=check)
"""

CLIENT = """
from kn_sock import send_file
from kn_sock.errors import FileTransferError, ConnectionTimeoutError

def on_progress(bytes_sent, total_bytes, filename):
    print(f"Sending {filename}: {bytes_sent / total_bytes * 100:.1f}% complete")

try:
    send_file("127.0.0.1", PORT, PATH, progress_callback=on_progress)
    print("done")
except FileTransferError as e:
    print(f"File transfer failed: {e}")
except ConnectionTimeoutError:
    print("Connection timed out during file transfer")
"""

ASYNC_CLIENT = """
import asyncio
from kn_sock import send_file_async

async def main():
    await send_file_async("127.0.0.1", PORT, PATH, show_progress=False)

asyncio.run(main())
print("async done")
"""


def moved(code, **values):
    """The example with `kn_sock` replaced by `knsock`, and its placeholders filled in."""
    code = textwrap.dedent(code).replace("kn_sock", "knsock")
    for k, v in values.items():
        code = code.replace(k, repr(v) if isinstance(v, str) else str(v))
    return code


def run_client(code):
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=DEADLINE)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_documented_examples_run_with_the_import_changed(dirs):
    src, out = dirs
    port = free_port()
    server = python(moved(SERVER, PORT=port, SAVE_DIR=str(out)), stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)
    try:
        lines = Lines(server.stdout)
        assert "listening on 127.0.0.1:%d" % port in lines.next()
        report = make_file(src / "report.txt", 600_000)
        make_file(src / "tool.exe", 10)
        make_file(src / "huge.pdf", 2_000_000)

        out_lines = run_client(moved(CLIENT, PORT=port, PATH=str(src / "report.txt")))
        assert out_lines[0] == "Sending report.txt: 0.0% complete"
        assert out_lines[-2:] == ["Sending report.txt: 100.0% complete", "done"]
        assert lines.next().startswith("received report.txt from 127.0.0.1 into ")
        assert (out / "report.txt").read_bytes() == report

        assert run_client(moved(CLIENT, PORT=port, PATH=str(src / "tool.exe")))[-1] == (
            "File transfer failed: rejected by receiver: File type not allowed")
        assert run_client(moved(CLIENT, PORT=port, PATH=str(src / "huge.pdf")))[-1] == (
            "File transfer failed: rejected by receiver: File too large")

        make_file(src / "a.txt", 10)
        assert run_client(moved(ASYNC_CLIENT, PORT=port, PATH=str(src / "a.txt"))) == [
            "async done"]
        # The refusals reached the error handler too; the lines come from worker threads.
        rest = sorted(lines.next() for _ in range(3))
        assert rest[0] == "error from 127.0.0.1: refused 'huge.pdf': File too large"
        assert rest[1] == "error from 127.0.0.1: refused 'tool.exe': File type not allowed"
        assert rest[2].startswith("received a.txt from 127.0.0.1 into ")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(DEADLINE)
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "report.txt"]
