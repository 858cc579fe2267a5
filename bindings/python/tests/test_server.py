"""The server side: handler, error_handler, validators, concurrency, stop, Ctrl-C."""
import os
import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import knsock
from knsock.errors import FileTransferError

from conftest import DEADLINE, Lines, Recorder, make_file, no_leftovers, python


def test_handler_gets_name_final_path_and_address(server, dirs):
    src, out = dirs
    data = make_file(src / "h.txt", 1234)
    got = Recorder()
    knsock.send_file("127.0.0.1", server(handler=got).port, str(src / "h.txt"))
    (filename, filepath, addr), = got.wait_for(1)
    assert filename == "h.txt"
    assert os.path.realpath(filepath) == os.path.realpath(out / "h.txt")
    assert open(filepath, "rb").read() == data
    host, port = addr
    assert host == "127.0.0.1" and isinstance(port, int) and port > 0


def test_validator_sees_the_verified_file_before_it_is_in_place(server, dirs):
    src, out = dirs
    data = make_file(src / "v.bin", 200_000)
    seen = []

    def validator(filename, filepath):
        seen.append((filename, open(filepath, "rb").read(), (out / "v.bin").exists()))

    knsock.send_file("127.0.0.1", server(validator=validator).port, str(src / "v.bin"))
    assert seen == [("v.bin", data, False)]
    assert (out / "v.bin").read_bytes() == data


def test_validator_before_refuses_before_data(server, dirs):
    src, out = dirs
    make_file(src / "huge.bin", 3_000_000)
    seen, errors = Recorder(), Recorder()

    def validator_before(filename, filesize):
        seen(filename, filesize)
        if filesize > 1_000_000:
            raise ValueError("too big: %d bytes" % filesize)

    s = server(validator_before=validator_before, error_handler=errors)
    with pytest.raises(FileTransferError) as info:
        knsock.send_file("127.0.0.1", s.port, str(src / "huge.bin"))
    assert info.value.peer_reason == "too big: 3000000 bytes"
    assert seen.calls == [("huge.bin", 3_000_000)]
    no_leftovers(out, [])


def test_a_reason_longer_than_the_buffer_is_cut_at_a_character(server, dirs):
    src, _ = dirs
    make_file(src / "x", 1)

    def validator(filename, filepath):
        raise ValueError("é" * 5000)

    with pytest.raises(FileTransferError) as info:
        knsock.send_file("127.0.0.1", server(validator=validator).port, str(src / "x"))
    reason = info.value.peer_reason
    assert reason and set(reason) == {"é"} and len(reason.encode()) <= 1024


def test_handler_exception_goes_to_the_error_handler(server, dirs):
    src, out = dirs
    data = make_file(src / "ok.txt", 5)
    errors = Recorder()

    def handler(filename, filepath, addr):
        raise RuntimeError("handler failed on " + filename)

    knsock.send_file("127.0.0.1", server(handler=handler, error_handler=errors).port,
                     str(src / "ok.txt"))
    (error, addr), = errors.wait_for(1)
    assert isinstance(error, RuntimeError) and str(error) == "handler failed on ok.txt"
    assert addr[0] == "127.0.0.1"
    assert (out / "ok.txt").read_bytes() == data  # stored before the handler ran


def test_callbacks_run_concurrently_on_worker_threads(server, dirs):
    src, out = dirs
    n = 24
    files = {"c%02d.bin" % i: make_file(src / ("c%02d.bin" % i), 50_000 + i, i) for i in range(n)}
    inside, peak, lock = [0], [0], threading.Lock()
    barrier = threading.Barrier(2, timeout=DEADLINE)
    got = Recorder()

    def validator(filename, filepath):
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        try:
            if filename in ("c00.bin", "c01.bin"):
                barrier.wait()  # proves two validators run at the same time
        finally:
            with lock:
                inside[0] -= 1

    s = server(validator=validator, handler=got)
    order = ["c00.bin", "c01.bin"] + sorted(files)[2:]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: knsock.send_file("127.0.0.1", s.port, str(src / name),
                                                    show_progress=False), order))
    assert peak[0] >= 2
    assert {c[0] for c in got.wait_for(n)} == set(files)
    assert len({c[2] for c in got.calls}) == n  # one connection (source port) per send
    for name, data in files.items():
        assert (out / name).read_bytes() == data


def test_file_server_context_manager_and_stop(dirs):
    src, _ = dirs
    make_file(src / "f", 10)
    with knsock.FileServer(0, dirs[1], "127.0.0.1") as s:
        assert s.port > 0 and s.running
        knsock.send_file("127.0.0.1", s.port, str(src / "f"))
        port = s.port
    assert not s.running
    with pytest.raises(FileTransferError) as info:
        knsock.send_file("127.0.0.1", port, str(src / "f"), timeout=5)
    assert info.value.code == knsock.Result.CONNECT


def test_stop_from_a_handler_ends_the_blocking_server(dirs):
    src, out = dirs
    data = make_file(src / "last.txt", 10)
    ready = threading.Event()
    port = []

    def run():
        knsock.start_file_server(0, str(out), "127.0.0.1",
                                 handler=lambda f, p, a: srv[0].stop(),
                                 ready=lambda s: (srv.append(s), port.append(s.port),
                                                  ready.set()))

    srv = []
    t = threading.Thread(target=run)
    t.start()
    assert ready.wait(DEADLINE)
    knsock.send_file("127.0.0.1", port[0], str(src / "last.txt"))
    t.join(DEADLINE)
    assert not t.is_alive()
    assert (out / "last.txt").read_bytes() == data


def test_bind_failure_raises(server, dirs):
    s = server()
    with pytest.raises(FileTransferError):
        knsock.FileServer(s.port, dirs[1], "127.0.0.1")
    with pytest.raises(FileTransferError):
        knsock.FileServer(0, dirs[1] / "missing", "127.0.0.1")


CTRL_C_SERVER = """
import sys, threading, knsock
def validator_before(name, size):
    print("upload started", flush=True)
knsock.start_file_server(0, sys.argv[1], host="127.0.0.1", validator_before=validator_before)
"""


def test_ctrl_c_stops_the_blocking_server_cleanly(dirs):
    src, out = dirs
    make_file(src / "big.bin", 50_000_000)
    proc = python(CTRL_C_SERVER, out, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = Lines(proc.stdout)
    first = lines.next()
    assert first.startswith("[SYNC] File server listening on 127.0.0.1:"), first
    port = int(first.split(":")[-1].rstrip("."))
    failure = []
    stalled = threading.Event()

    def progress(sent, total, filename):
        if sent > 0:
            stalled.wait(DEADLINE)  # hold the upload in flight until the server is gone

    def send():
        try:
            knsock.send_file("127.0.0.1", port, str(src / "big.bin"), progress_callback=progress,
                             timeout=DEADLINE)
        except Exception as e:
            failure.append(e)

    t = threading.Thread(target=send)
    t.start()
    assert lines.next() == "upload started"
    proc.send_signal(signal.SIGINT)
    try:
        rc = proc.wait(timeout=DEADLINE)
    finally:
        stalled.set()
        t.join(DEADLINE)
    assert "KeyboardInterrupt" in proc.stderr.read()
    assert rc != 0
    assert failure and isinstance(failure[0], knsock.EasySocketError)
    no_leftovers(out, [])  # the upload in flight left nothing behind
