"""knsock against the previous release's protocol (the kn-sock CLI built from git commit 60eb350
by scripts/prev-knsock.sh), both directions: the current sender to the previous server, and the
previous sender to the current server.

They pass while both sides speak the same protocol, and must keep passing once the sender
tries newer features first (issue 22's optimistic first flight): against a previous server it
then falls back without them, and a previous sender still finds the current server.

Run by scripts/interop.sh, which exports KNSOCK_BIN (the release binary under test) and
KNSOCK_PREV_BIN (the previous release's binary).
"""
import json
import os
import queue
import signal
import stat
import subprocess
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
KNSOCK = os.environ.get("KNSOCK_BIN", os.path.join(HERE, "../../target/release/kn-sock"))
PREV = os.environ.get("KNSOCK_PREV_BIN", "")
TIMEOUT = 30  # upper bound for every event that must happen

# (sender, server) per direction; the ids name them.
DIRECTIONS = [pytest.param(("new", "prev"), id="new-sender-to-prev-server"),
              pytest.param(("prev", "new"), id="prev-sender-to-new-server")]


def binary(which):
    if which == "new":
        assert os.access(KNSOCK, os.X_OK), "%s is missing: run cargo build --release" % KNSOCK
        return KNSOCK
    assert PREV and os.access(PREV, os.X_OK), (
        "KNSOCK_PREV_BIN (%r) is not an executable: run scripts/interop.sh, or set "
        "KNSOCK_PREV_BIN=$(scripts/prev-knsock.sh)" % PREV)
    return PREV


class Lines:
    """Reads a stream line by line on a thread, so a test waits for a line with a deadline."""

    def __init__(self, stream):
        self.q = queue.Queue()
        self.seen = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for line in iter(stream.readline, ""):
            self.q.put(line.rstrip("\n"))
        self.q.put(None)  # the stream ended

    def next(self, deadline):
        try:
            line = self.q.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail("no line within %ds (so far: %r)" % (TIMEOUT, self.seen[-5:]))
        if line is not None:
            self.seen.append(line)
        return line

    def wait_for(self, pred, what):
        """Lines up to and including the first for which pred holds (earlier lines too: a
        fallback may log a protocol error first). Fails at the deadline or the stream's end."""
        deadline = time.monotonic() + TIMEOUT
        got = []
        while True:
            line = self.next(deadline)
            if line is None:
                pytest.fail("stream ended before %s; it said: %r" % (what, got))
            got.append(line)
            if pred(line):
                return got


class Server:
    def __init__(self, exe, out, args):
        self.out = out
        self.proc = subprocess.Popen(
            [exe, "run-file-server", "0", str(out), "--host", "127.0.0.1", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stdout, self.stderr = Lines(self.proc.stdout), Lines(self.proc.stderr)
        first = self.stdout.next(time.monotonic() + TIMEOUT)
        assert first and first.startswith("listening on 127.0.0.1:"), (first, self.stderr.seen)
        self.port = int(first.rsplit(":", 1)[1])

    def received(self, names):
        """Waits until the server has reported every one of names as received; returns the
        lines it printed on stdout meanwhile."""
        missing = set(names)

        def done(line):
            if line.startswith("received "):
                missing.discard(line.split()[1])
            return not missing
        return [] if not missing else self.stdout.wait_for(done, "received %d files" % len(names))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=TIMEOUT) == 0, self.stderr.seen


@pytest.fixture
def servers():
    started = []

    def start(which, out, *args):
        out.mkdir(exist_ok=True)
        s = Server(binary(which), out, args)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


def send(which, port, *args, env=None, cwd=None):
    """Runs send-file of `which` to 127.0.0.1:port; returns the CompletedProcess."""
    e = dict(os.environ)
    e.pop("KNSOCK_TOKEN", None)
    e.update(env or {})
    return subprocess.run([binary(which), "send-file", "127.0.0.1", str(port), *map(str, args),
                           "--no-progress", "--timeout", str(TIMEOUT)],
                          capture_output=True, text=True, timeout=2 * TIMEOUT, env=e, cwd=cwd)


def ok(r):
    assert r.returncode == 0, "exit %d\nstdout: %s\nstderr: %s" % (r.returncode, r.stdout, r.stderr)
    return r


def content(size, seed):
    """Deterministic bytes that differ from file to file (no all-zero content)."""
    block = bytes((i * 131 + seed * 7 + (i >> 8)) % 256 for i in range(65536))
    return (block * (size // len(block) + 1))[:size]


def summary(r):
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    s = [l for l in lines if l.get("event") == "summary"]
    assert len(s) == 1, r.stdout
    return s[0], [l for l in lines if l.get("event") == "file"]


def listing(d):
    """Every entry below d (temporary files included), relative."""
    return sorted(os.path.relpath(os.path.join(root, n), d)
                  for root, dirs, files in os.walk(d) for n in dirs + files)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("size", [4096, 3 << 20], ids=["4KiB", "3MiB"])
def test_single_file(servers, tmp_path, direction, size):
    sender, server = direction
    srv = servers(server, tmp_path / "recv")
    data = content(size, 1)
    (tmp_path / "one.bin").write_bytes(data)
    r = ok(send(sender, srv.port, tmp_path / "one.bin"))
    assert "sent %s as one.bin (%d bytes)" % (tmp_path / "one.bin", size) in r.stdout, r.stdout
    srv.received(["one.bin"])
    assert (srv.out / "one.bin").read_bytes() == data
    assert listing(srv.out) == ["one.bin"]


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_batch_then_unchanged_rerun(servers, tmp_path, direction):
    sender, server = direction
    srv = servers(server, tmp_path / "recv")
    src = tmp_path / "batch"
    src.mkdir()
    files = {"f%03d.txt" % i: content(100 + 37 * i, i) for i in range(300)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    # Sent from tmp_path, the names are batch/f000.txt ...
    first = ok(send(sender, srv.port, "batch", "-r", "--skip-unchanged", "--log-format", "json",
                    cwd=tmp_path))
    s, per_file = summary(first)
    assert (s["files"], s["sent"], s["unchanged"], s["failed"]) == (300, 300, 0, 0), s
    srv.received(["batch/" + n for n in files])
    got = srv.out / "batch"
    assert sorted(os.listdir(got)) == sorted(files)
    for name, data in files.items():
        assert (got / name).read_bytes() == data
    before = {n: os.stat(got / n) for n in files}

    again = ok(send(sender, srv.port, "batch", "-r", "--skip-unchanged", "--log-format", "json",
                    cwd=tmp_path))
    s, per_file = summary(again)
    assert (s["files"], s["sent"], s["unchanged"], s["failed"]) == (300, 0, 300, 0), s
    assert s["bytes_sent"] == 0, s
    assert sorted(f["name"] for f in per_file if f["result"] == "unchanged") == \
        sorted("batch/" + n for n in files)
    # Nothing was stored again: the same inodes and times. And the server received nothing:
    # the next file it reports is the marker sent after the re-run.
    for n, st in before.items():
        now = os.stat(got / n)
        assert (now.st_ino, now.st_mtime_ns, now.st_ctime_ns) == \
            (st.st_ino, st.st_mtime_ns, st.st_ctime_ns), n
    (tmp_path / "marker.txt").write_bytes(b"after the re-run")
    ok(send(sender, srv.port, tmp_path / "marker.txt"))
    lines = srv.received(["marker.txt"])
    assert [l for l in lines if l.startswith("received ")] == \
        [l for l in lines if l.startswith("received marker.txt ")], lines


def make_token(exe, tmp_path, name, secret):
    r = subprocess.run([exe, "hash-token", name], input=secret + "\n", capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 0 and r.stdout.startswith(name + ":"), r.stderr
    tokens = tmp_path / "tokens"
    tokens.write_text(r.stdout)
    tokens.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return tokens


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_tls_with_token(servers, tmp_path, direction):
    sender, server = direction
    tokens = make_token(binary(server), tmp_path, "alice", "alice-secret")
    srv = servers(server, tmp_path / "recv", "--tls-self-signed", str(tmp_path / "identity"),
                  "--tokens", str(tokens))
    second = srv.stdout.next(time.monotonic() + TIMEOUT)
    assert second and second.startswith("tls pin sha256//"), second
    pin = second.split()[2]
    small, big = content(4096, 2), content(3 << 20, 3)
    (tmp_path / "small.bin").write_bytes(small)
    (tmp_path / "big.bin").write_bytes(big)

    # Without the token: refused with the reason, nothing stored.
    r = send(sender, srv.port, tmp_path / "small.bin", "--pin", pin)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "authentication required" in r.stderr, r.stderr
    # With a wrong pin: the sender refuses the server before anything is sent.
    wrong = "sha256//" + "A" * 43 + "="
    r = send(sender, srv.port, tmp_path / "small.bin", "--pin", wrong,
             env={"KNSOCK_TOKEN": "alice:alice-secret"})
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "does not match the pin" in r.stderr, r.stderr
    assert listing(srv.out) == []

    ok(send(sender, srv.port, tmp_path / "small.bin", tmp_path / "big.bin", "--pin", pin,
            env={"KNSOCK_TOKEN": "alice:alice-secret"}))
    srv.received(["small.bin", "big.bin"])
    assert (srv.out / "small.bin").read_bytes() == small
    assert (srv.out / "big.bin").read_bytes() == big
    assert listing(srv.out) == ["big.bin", "small.bin"]

    # The unchanged re-run over TLS skips both.
    r = ok(send(sender, srv.port, tmp_path / "small.bin", tmp_path / "big.bin", "--pin", pin,
                "--skip-unchanged", "--log-format", "json",
                env={"KNSOCK_TOKEN": "alice:alice-secret"}))
    s, _ = summary(r)
    assert (s["sent"], s["unchanged"], s["failed"], s["bytes_sent"]) == (0, 2, 0, 0), s


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_refused_file_leaves_nothing(servers, tmp_path, direction):
    sender, server = direction
    srv = servers(server, tmp_path / "recv", "--max-size", "5000")
    for size in (6000, 3 << 20):  # one the sender may send eagerly, one it may not
        name = "big%d.bin" % size
        (tmp_path / name).write_bytes(content(size, 4))
        r = send(sender, srv.port, tmp_path / name)
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert "rejected by receiver: file of %d bytes exceeds the limit of 5000 bytes" % size \
            in r.stderr, r.stderr
        srv.stderr.wait_for(lambda l: "refused '%s'" % name in l, "the refusal of " + name)
        assert listing(srv.out) == []
    # The server still takes a file within the limit.
    (tmp_path / "fits.bin").write_bytes(content(4096, 5))
    ok(send(sender, srv.port, tmp_path / "fits.bin"))
    srv.received(["fits.bin"])
    assert listing(srv.out) == ["fits.bin"]
