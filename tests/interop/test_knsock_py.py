"""knsock against the real kn-sock 0.3.0 from PyPI, both directions, byte for byte.

Run by scripts/interop.sh, which makes the virtual environment; KNSOCK_BIN names the kn-sock
binary under test.
"""
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from kn_sock.file_transfer import send_file

KNSOCK = os.environ.get("KNSOCK_BIN", os.path.join(os.path.dirname(__file__), "../../target/release/kn-sock"))
TIMEOUT = 30  # upper bound for events that must happen


class Lines:
    """Reads a stream line by line on a thread so tests can wait for a line with a bound."""

    def __init__(self, stream):
        self.q = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for line in iter(stream.readline, ""):
            self.q.put(line.rstrip("\n"))
        self.q.put(None)  # the stream ended

    def next(self):
        """The next line, or None once the stream has ended."""
        try:
            return self.q.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail("no line within %ds" % TIMEOUT)


@pytest.fixture
def knsock_server(tmp_path):
    out = tmp_path / "received"
    out.mkdir()
    assert os.access(KNSOCK, os.X_OK), "%s is missing: run cargo build --release" % KNSOCK
    proc = subprocess.Popen(
        [KNSOCK, "run-file-server", "0", str(out), "--host", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    stdout, stderr = Lines(proc.stdout), Lines(proc.stderr)
    first = stdout.next()
    assert first.startswith("listening on 127.0.0.1:"), first
    port = int(first.rsplit(":", 1)[1])
    yield port, out, stdout, stderr
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=TIMEOUT) == 0


def make_file(path, size, seed):
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    data = bytes((b + seed) % 256 for b in data) if size < 100_000 else os.urandom(size)
    path.write_bytes(data)
    return data


def test_python_sender_to_knsock_server(knsock_server, tmp_path):
    port, out, stdout, _ = knsock_server
    src = tmp_path / "src"
    src.mkdir()
    for i, (name, size) in enumerate([("empty.bin", 0), ("one.bin", 1), ("big.bin", 3_000_000),
                                      ("spaced ünïcode name.txt", 5000)]):
        data = make_file(src / name, size, i)
        send_file("127.0.0.1", port, str(src / name), show_progress=False)
        line = stdout.next()
        assert line.startswith("received %s (%d bytes)" % (name, size)), line
        assert (out / name).read_bytes() == data
    assert sorted(os.listdir(out)) == sorted(os.listdir(src))


def test_forty_concurrent_python_senders(knsock_server, tmp_path):
    port, out, stdout, _ = knsock_server
    src = tmp_path / "src"
    src.mkdir()
    files = {"c%02d.bin" % i: make_file(src / ("c%02d.bin" % i), 100_000 + i, i) for i in range(40)}
    with ThreadPoolExecutor(40) as pool:
        list(pool.map(lambda n: send_file("127.0.0.1", port, str(src / n), show_progress=False), files))
    got = {stdout.next().split()[1] for _ in files}
    assert got == set(files)
    for name, data in files.items():
        assert (out / name).read_bytes() == data


def raw_upload(port, payload):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        while s.recv(4096):
            pass


def test_hostile_legacy_uploads(knsock_server, tmp_path):
    port, out, stdout, stderr = knsock_server
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, out / "link")
    cases = [
        (b"../escape.txt\n4\nevil", "'..' path component"),
        (b"/tmp/knsock-interop-abs.txt\n4\nevil", "absolute path"),
        (b"a/../../escape.txt\n4\nevil", "'..' path component"),
        (b"link/escape.txt\n4\nevil", "symlink or not a directory"),
        (b"never.bin\n1000\nonly ten b", "after 10 of 1000 bytes"),
        (b"nan.bin\nabc\nxxxx", 'size "abc" is not a number'),
    ]
    for payload, expect in cases:
        raw_upload(port, payload)
        line = stderr.next()
        assert expect in line, line
    assert os.listdir(outside) == []
    assert os.listdir(out) == ["link"]  # no partial file, no temporary file
    assert not os.path.exists("/tmp/knsock-interop-abs.txt")
    data = make_file(tmp_path / "after.txt", 10, 1)
    send_file("127.0.0.1", port, str(tmp_path / "after.txt"), show_progress=False)
    assert stdout.next().startswith("received after.txt")
    assert (out / "after.txt").read_bytes() == data


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_python_server(out):
    """Starts kn-sock 0.3's file server. It cannot listen on port 0 and say which port it got,
    so a free port is picked first; if another process takes it before the server binds, the
    server exits without its "listening" line and another port is tried."""
    for _ in range(5):
        port = free_port()
        code = ("from kn_sock.file_transfer import start_file_server as s; "
                "s(%d, %r, host='127.0.0.1', show_progress=False)" % (port, str(out)))
        server = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        first = Lines(server.stdout).next()
        if first is not None and "listening" in first:
            return server, port
        server.kill()
        server.wait()
    pytest.fail("kn-sock's server never started listening")


def test_knsock_legacy_sender_to_python_server(tmp_path):
    out = tmp_path / "py-received"
    out.mkdir()
    server, port = start_python_server(out)
    try:
        for name, size in [("legacy.bin", 5_000_000), ("small.txt", 7)]:
            data = make_file(tmp_path / name, size, 3)
            r = subprocess.run([KNSOCK, "send-file", "127.0.0.1", str(port), str(tmp_path / name),
                                "--legacy", "--no-progress"], capture_output=True, text=True,
                               timeout=TIMEOUT)
            assert r.returncode == 0, r.stderr
            assert "sent" in r.stdout
            # The kn-sock server closed only after writing the file: it is complete now.
            assert (out / name).read_bytes() == data
    finally:
        server.kill()
        server.wait()


def test_native_sender_to_python_server_fails_cleanly(tmp_path):
    """Without --legacy, knsock's hello reaches a kn-sock 0.3 server: the sender must fail with a
    clear protocol error, not report success."""
    out = tmp_path / "py-received"
    out.mkdir()
    server, port = start_python_server(out)
    try:
        (tmp_path / "f.txt").write_bytes(b"data")
        r = subprocess.run([KNSOCK, "send-file", "127.0.0.1", str(port), str(tmp_path / "f.txt"),
                            "--timeout", "5"], capture_output=True, text=True, timeout=TIMEOUT)
        assert r.returncode == 1
        assert "kn-sock:" in r.stderr
    finally:
        server.kill()
        server.wait()
