"""send_file and send_files: round trips, progress, aborts, errors, timeouts, progress bar."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import knsock
from knsock.errors import ConnectionTimeoutError, FileTransferError

from conftest import DEADLINE, Recorder, make_file, no_leftovers, python


@pytest.mark.parametrize("name,size", [("empty.bin", 0), ("one.bin", 1), ("big.bin", 3_000_000),
                                       ("spaced ünïcode name.txt", 5000)])
def test_round_trip(server, dirs, name, size):
    src, out = dirs
    data = make_file(src / name, size, 7)
    s = server()
    knsock.send_file("127.0.0.1", s.port, str(src / name), show_progress=False)
    assert (out / name).read_bytes() == data
    no_leftovers(out, [name])


def test_pathlike_and_remote_name(server, dirs):
    src, out = dirs
    data = make_file(src / "a.bin", 1000)
    knsock.send_file("127.0.0.1", server().port, src / "a.bin", remote_name="sub/b.bin")
    assert (out / "sub" / "b.bin").read_bytes() == data


def test_progress_is_monotonic_to_the_total(server, dirs):
    src, _ = dirs
    make_file(src / "p.bin", 5_000_000)
    calls = []
    caller = threading.get_ident()

    def progress(sent, total, filename):
        assert threading.get_ident() == caller  # the blocking send calls back on our thread
        calls.append((sent, total, filename))

    knsock.send_file("127.0.0.1", server().port, str(src / "p.bin"), progress_callback=progress)
    assert calls[0] == (0, 5_000_000, "p.bin")
    assert calls[-1] == (5_000_000, 5_000_000, "p.bin")
    sents = [c[0] for c in calls]
    assert sents == sorted(sents) and len(calls) > 3
    assert all(c[1] == 5_000_000 and c[2] == "p.bin" for c in calls)


def test_chunk_size_sets_the_step_above_the_floor(server, dirs):
    src, _ = dirs
    make_file(src / "c.bin", 4 << 20)
    steps = {}
    for chunk in (4096, 1 << 20):
        seen = []
        knsock.send_file("127.0.0.1", server().port, str(src / "c.bin"), chunk_size=chunk,
                         progress_callback=lambda s, t, f: seen.append(s))
        steps[chunk] = seen[1] - seen[0]
    assert steps[4096] == knsock._send.MIN_IO_CHUNK  # 4096 is raised to the floor
    assert steps[1 << 20] == 1 << 20


def test_callback_exception_aborts_and_reaches_the_caller(server, dirs):
    src, out = dirs
    make_file(src / "abort.bin", 4_000_000)
    errors = Recorder()
    s = server(error_handler=errors)

    class Stop(Exception):
        pass

    def progress(sent, total, filename):
        if sent > 0:
            raise Stop("enough")

    with pytest.raises(Stop, match="enough") as info:
        knsock.send_file("127.0.0.1", s.port, str(src / "abort.bin"), progress_callback=progress)
    assert isinstance(info.value.__cause__, FileTransferError)
    assert info.value.__cause__.code == knsock.Result.ABORTED_BY_CALLBACK
    error, addr = errors.wait_for(1)[0]
    assert isinstance(error, FileTransferError) and addr[0] == "127.0.0.1"
    no_leftovers(out, [])


def test_validator_refusal_reaches_the_sender(server, dirs):
    src, out = dirs
    make_file(src / "evil.exe", 100)

    def validator(filename, filepath):
        raise ValueError("File type not allowed: " + filename)

    with pytest.raises(FileTransferError) as info:
        knsock.send_file("127.0.0.1", server(validator=validator).port, str(src / "evil.exe"))
    e = info.value
    assert e.code == knsock.Result.REJECTED
    assert e.peer_reason == "File type not allowed: evil.exe"
    assert "File type not allowed: evil.exe" in str(e)
    no_leftovers(out, [])


def test_connection_refused(dirs):
    src, _ = dirs
    make_file(src / "f", 10)
    with socket.socket() as bound:  # bound, never listening: connecting is refused
        bound.bind(("127.0.0.1", 0))
        with pytest.raises(FileTransferError) as info:
            knsock.send_file("127.0.0.1", bound.getsockname()[1], str(src / "f"))
    assert info.value.code == knsock.Result.CONNECT
    assert isinstance(info.value, ConnectionError)


BUSY_TEXT = "receiver busy: 10000 connections, the most it serves; retry later"


def busy_receiver(listener, attempts):
    """Answers each connection as a receiver at its cap: hello reply version 0, ERROR 17, close."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # the test closed the listener
        with conn, conn.makefile("rb") as sender:
            attempts.append(1)
            conn.settimeout(DEADLINE)
            hello = sender.read(14)  # magic, versions, ext_len; then the extension
            sender.read(int.from_bytes(hello[12:14], "big"))
            text = BUSY_TEXT.encode()
            error = (17).to_bytes(2, "big") + len(text).to_bytes(2, "big") + text
            conn.sendall(b"\x89KNSOCK\0" + b"\0\0\0\x04\0\0\0\0"  # version 0, no caps
                         + b"\x07" + len(error).to_bytes(4, "big") + error)  # ERROR 17
            conn.shutdown(socket.SHUT_WR)
            sender.read()  # what the sender still sends, until it closes


def test_a_busy_receiver_raises_receiver_busy_after_the_retries(dirs):
    src, _ = dirs
    make_file(src / "f", 10)
    attempts = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        threading.Thread(target=busy_receiver, args=(listener, attempts), daemon=True).start()
        port = listener.getsockname()[1]
        with pytest.raises(knsock.ReceiverBusyError) as info:
            knsock.send_file("127.0.0.1", port, str(src / "f"))
        assert len(attempts) == 1
        with pytest.raises(knsock.ReceiverBusyError):
            knsock.send_file("127.0.0.1", port, str(src / "f"), retries=2, retry_delay=0.01)
        assert len(attempts) == 4
    e = info.value
    assert isinstance(e, FileTransferError)
    assert e.code == knsock.Result.BUSY and e.peer_code == 17 and e.peer_reason == BUSY_TEXT
    assert e.message.startswith("receiver busy, retry later: " + BUSY_TEXT)


def test_missing_file(server):
    with pytest.raises(FileTransferError) as info:
        knsock.send_file("127.0.0.1", server().port, "/nonexistent/knsock-test")
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.code == knsock.Result.NOT_FOUND


def test_timeout_when_the_peer_never_answers(dirs):
    src, _ = dirs
    make_file(src / "f", 10)
    with socket.socket() as silent:  # accepts (in the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        t = time.monotonic()
        with pytest.raises(ConnectionTimeoutError) as info:
            knsock.send_file("127.0.0.1", silent.getsockname()[1], str(src / "f"), timeout=1)
        elapsed = time.monotonic() - t
    assert info.value.code == knsock.Result.TIMEOUT
    assert not isinstance(info.value, FileTransferError)  # kn-sock's separate class
    assert 0.9 <= elapsed < DEADLINE


def test_bad_arguments(dirs):
    with pytest.raises(ValueError):
        knsock.send_file("127.0.0.1", 0, "x")
    with pytest.raises(ValueError):
        knsock.send_file("127.0.0.1", 1, "x", chunk_size=0)
    with pytest.raises(ValueError):
        knsock.send_file("127.0.0.1", 1, "a\0b")
    with pytest.raises(ValueError, match="include"):
        knsock.send_files("127.0.0.1", 1, [str(dirs[0])], include="[")


SEND_IN_CHILD = """
import sys, knsock
knsock.send_file("127.0.0.1", int(sys.argv[1]), sys.argv[2])
print("sent")
"""


def test_progress_bar_only_on_a_terminal(server, dirs):
    src, out = dirs
    make_file(src / "bar.bin", 2_000_000)
    port = server().port
    # stderr a pipe: show_progress=True (the default) draws nothing.
    r = subprocess.run([sys.executable, "-c", SEND_IN_CHILD, str(port), str(src / "bar.bin")],
                       capture_output=True, text=True, timeout=DEADLINE)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "sent\n" and r.stderr == ""
    # stderr a terminal: the bar is drawn there.
    import pty
    master, slave = pty.openpty()
    try:
        p = python(SEND_IN_CHILD, port, src / "bar.bin", stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        assert p.wait(timeout=DEADLINE) == 0
        drawn = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child's side is closed and everything was read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(master)
    assert b"bar.bin" in drawn or b"%" in drawn or b"MiB" in drawn, drawn


def test_send_files_tree_with_globs_and_results(server, dirs):
    src, out = dirs
    tree = src / "logs"
    (tree / "sub").mkdir(parents=True)
    expect = {"logs/a.log": make_file(tree / "a.log", 4096, 1),
              "logs/sub/b.log": make_file(tree / "sub" / "b.log", 300_000, 2)}
    make_file(tree / "skip.tmp", 10)
    make_file(tree / "sub" / "drop.log", 10)
    batches = []
    results = knsock.send_files("127.0.0.1", server().port, [str(tree)], recursive=True,
                                include="*.log", exclude=["*drop*"],
                                batch_progress_callback=batches.append)
    assert sorted(r.name for r in results) == sorted(expect)
    assert all(r.ok and not r.skipped and r.error is None for r in results)
    assert {r.name: r.bytes for r in results} == {k: len(v) for k, v in expect.items()}
    for name, data in expect.items():
        assert (out / name).read_bytes() == data
    assert batches[-1].sent == batches[-1].total == 4096 + 300_000
    assert batches[-1].count == 2
    # Again, skipping what the receiver holds unchanged, compressed where it pays.
    again = knsock.send_files("127.0.0.1", server().port, [str(tree)], recursive=True,
                              include="*.log", exclude="*drop*", skip_unchanged=True,
                              compress=True)
    assert all(r.ok and r.skipped for r in again)


def test_checksum_compares_content_not_size_and_time(server, dirs):
    src, out = dirs
    path = src / "same.bin"
    path.write_bytes(b"a" * 5000)
    port = server().port
    knsock.send_file("127.0.0.1", port, str(path), show_progress=False)
    # New content, same size and modification time: the quick check takes it as unchanged,
    # the digest comparison does not.
    stat = path.stat()
    path.write_bytes(b"b" * 5000)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    quick, = knsock.send_files("127.0.0.1", port, [str(path)], skip_unchanged=True)
    assert quick.ok and quick.skipped
    assert (out / "same.bin").read_bytes() == b"a" * 5000
    digest, = knsock.send_files("127.0.0.1", port, [str(path)], skip_unchanged=True,
                                checksum=True)
    assert digest.ok and not digest.skipped
    assert (out / "same.bin").read_bytes() == b"b" * 5000


def test_send_files_per_file_failure(server, dirs):
    src, out = dirs
    make_file(src / "ok.txt", 10)
    make_file(src / "no.bin", 10)

    def validator_before(filename, size):
        if filename.endswith(".bin"):
            raise PermissionError("only text, please")

    results = knsock.send_files("127.0.0.1", server(validator_before=validator_before).port,
                                [str(src / "ok.txt"), str(src / "no.bin")])
    ok, no = results
    assert ok.ok and ok.name == "ok.txt"
    assert not no.ok and isinstance(no.error, FileTransferError)
    assert no.error.peer_reason == "only text, please"
    no_leftovers(out, ["ok.txt"])


def test_send_files_nothing_attempted(server):
    with pytest.raises(FileNotFoundError):
        knsock.send_files("127.0.0.1", server().port, ["/nonexistent/knsock-test"])


def test_refusals_are_not_retried(server, dirs):
    src, out = dirs
    make_file(src / "r.bin", 1000)
    seen = Recorder()

    def validator(filename, filepath):
        seen(filename)
        raise ValueError("no")

    with pytest.raises(FileTransferError, match="no"):
        knsock.send_file("127.0.0.1", server(validator=validator).port, str(src / "r.bin"),
                         retries=3, retry_delay=0.01)
    assert seen.calls == [("r.bin",)]
    no_leftovers(out, [])


def test_ctrl_c_aborts_a_blocking_send_without_callback(server, dirs):
    src, out = dirs
    # Larger than an eager file (64 KiB), whose content would already be all there: this one
    # waits for its ACCEPT, which the validator holds.
    make_file(src / "held.bin", 100_000)
    offered, release = threading.Event(), threading.Event()

    def validator_before(filename, filesize):
        offered.set()
        release.wait(DEADLINE)  # hold the send in flight until the sender was interrupted

    errors = Recorder()
    s = server(validator_before=validator_before, error_handler=errors)
    child = python(SEND_IN_CHILD, s.port, src / "held.bin", stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE)
    try:
        assert offered.wait(DEADLINE)
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=DEADLINE) != 0
    finally:
        release.set()
        child.kill()
    assert "KeyboardInterrupt" in child.stderr.read() and child.stdout.read() == ""
    errors.wait_for(1)  # the server saw the upload end ...
    no_leftovers(out, [])  # ... and kept nothing
