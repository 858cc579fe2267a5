"""Shared helpers: files with known content, a server fixture, and waits with deadlines."""
import os
import queue
import socket
import subprocess
import sys
import threading

import pytest

import knsock

DEADLINE = 30  # seconds: an upper bound for events that must happen, never a hoped-for delay


def make_file(path, size, seed=0):
    data = os.urandom(size) if size > 65536 else bytes((i * 31 + seed) % 251 for i in range(size))
    path.write_bytes(data)
    return data


class Recorder:
    """Collects callback calls from any thread; tests wait for them with a deadline."""

    def __init__(self):
        self.calls = []
        self.cond = threading.Condition()

    def __call__(self, *args):
        with self.cond:
            self.calls.append(args)
            self.cond.notify_all()

    def wait_for(self, n=1):
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.calls) >= n, timeout=DEADLINE)
        assert ok, "expected %d calls within %ds, got %r" % (n, DEADLINE, self.calls)
        return self.calls


@pytest.fixture
def dirs(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    return src, out


@pytest.fixture
def server(dirs):
    """A factory of FileServers on 127.0.0.1 saving into dirs[1], all closed at the end."""
    started = []

    def start(**kw):
        s = knsock.FileServer(0, kw.pop("save_dir", dirs[1]), "127.0.0.1", **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lines:
    """Reads a process's stream on a thread so a test can wait for a line with a deadline."""

    def __init__(self, stream):
        self.q = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for line in iter(stream.readline, ""):
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def next(self):
        try:
            return self.q.get(timeout=DEADLINE)
        except queue.Empty:
            pytest.fail("no line within %ds" % DEADLINE)


# A child started where SIGINT is ignored (as a shell without job control starts a background
# job, and its children inherit) would ignore Ctrl-C too: it takes Python's handler back first.
CTRL_C_ON = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"


def python(code, *args, **kw):
    """A Python subprocess of this interpreter (so of this virtual environment), running `code`
    with `args` as its arguments; Ctrl-C (SIGINT) reaches it whatever its parent ignores."""
    argv = [sys.executable, "-u", "-c", CTRL_C_ON + code, *map(str, args)]
    return subprocess.Popen(argv, text=True, **kw)


def no_leftovers(out, expected):
    """The directory holds exactly the expected files: no partial or temporary file."""
    found = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert found == sorted(expected)
