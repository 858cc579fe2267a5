"""send_stream (a binary file object or an iterator of bytes) and Store (the program's own
storage): bytes arrive identical; a source that raises, a stream past max_file_size, a store
whose write raises: nothing is committed, the sender gets the reason, the server goes on."""
import io
import os
import threading
import time

import pytest

import knsock
from knsock import FileTransferError, StoreError

from conftest import DEADLINE, make_file, no_leftovers


def settled(out, expected):
    """no_leftovers once the receiver has seen every connection end (with a deadline)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            return no_leftovers(out, expected)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def test_a_file_object_and_an_iterator_arrive_identical(server, dirs):
    srv = server()
    data = os.urandom(3 << 20)
    knsock.send_stream("127.0.0.1", srv.port, io.BytesIO(data), "obj.bin")
    assert (dirs[1] / "obj.bin").read_bytes() == data
    seen = []
    chunks = (data[i:i + 70000] for i in range(0, len(data), 70000))
    knsock.send_stream("127.0.0.1", srv.port, chunks, "gen.bin",
                       progress_callback=lambda sent, total, name: seen.append((sent, total)))
    assert (dirs[1] / "gen.bin").read_bytes() == data
    assert seen and all(total == 0 for _, total in seen) and seen[-1][0] == len(data)


def test_a_pipe_with_its_size_stated(server, dirs):
    srv = server()
    r, w = os.pipe()
    data = os.urandom(500_000)

    def writer():
        with os.fdopen(w, "wb") as f:
            f.write(data)

    t = threading.Thread(target=writer)
    t.start()
    with os.fdopen(r, "rb") as f:
        knsock.send_stream("127.0.0.1", srv.port, f, "piped.bin", size=len(data))
    t.join()
    assert (dirs[1] / "piped.bin").read_bytes() == data


def test_a_source_that_raises_stores_nothing_and_its_exception_reaches_the_caller(server, dirs):
    srv = server()

    def dump():
        yield os.urandom(2 << 20)
        raise RuntimeError("pg_dump died")

    with pytest.raises(RuntimeError, match="pg_dump died"):
        knsock.send_stream("127.0.0.1", srv.port, dump(), "dump.sql")
    with pytest.raises(FileTransferError, match="ended after 5 of its 10 bytes"):
        knsock.send_stream("127.0.0.1", srv.port, [b"12345"], "short", size=10)
    knsock.send_stream("127.0.0.1", srv.port, [b"after"], "after")
    settled(dirs[1], ["after"])


def test_a_stream_past_the_maximum_size_is_refused_with_the_reason(server, dirs):
    srv = server(max_file_size=1 << 20)

    def endless():
        block = b"x" * 65536
        while True:
            yield block

    with pytest.raises(FileTransferError) as e:
        knsock.send_stream("127.0.0.1", srv.port, endless(), "big")
    assert "exceeds the limit of 1048576 bytes" in (e.value.peer_reason or "")
    knsock.send_stream("127.0.0.1", srv.port, [b"small"], "small")
    settled(dirs[1], ["small"])


class MemoryStore(knsock.Store):
    def __init__(self):
        self.lock = threading.Lock()
        self.objects = {}
        self.aborted = 0

    def begin(self, name, obj):
        return [name, obj, bytearray()]

    def write(self, upload, data):
        if "boom" in upload[0]:
            raise OSError("the vault is sealed")
        upload[2] += data

    def commit(self, upload):
        with self.lock:
            self.objects[upload[0]] = (upload[1], bytes(upload[2]))

    def abort(self, upload):
        with self.lock:
            self.aborted += 1

    def stat(self, name):
        with self.lock:
            found = self.objects.get(name)
        return found[0] if found else None


def test_files_go_into_a_store_and_a_raising_write_commits_nothing(server, dirs, tmp_path):
    store = MemoryStore()
    spool = tmp_path / "spool"
    spool.mkdir()
    srv = server(save_dir=spool, store=store)
    src = dirs[0]
    want = {}
    for i in range(40):
        want["f%d" % i] = make_file(src / ("f%d" % i), i * 2500, i)
    results = knsock.send_files("127.0.0.1", srv.port, [src / n for n in sorted(want)])
    assert all(r.ok for r in results)
    assert {n: data for n, (_, data) in store.objects.items()} == want
    assert all(obj.digest is not None and obj.size == len(want[n])
               for n, (obj, _) in store.objects.items())
    # Unchanged: stat() answers, nothing is sent again.
    again = knsock.send_files("127.0.0.1", srv.port, [src / n for n in sorted(want)],
                              skip_unchanged=True)
    assert all(r.skipped for r in again)

    make_file(src / "boom.bin", 100000, 7)
    with pytest.raises(StoreError) as e:
        knsock.send_file("127.0.0.1", srv.port, src / "boom.bin", show_progress=False)
    assert "the vault is sealed" in (e.value.peer_reason or "")
    assert "boom.bin" not in store.objects and store.aborted == 1
    knsock.send_stream("127.0.0.1", srv.port, io.BytesIO(b"still serving"), "s.txt")
    assert store.objects["s.txt"][1] == b"still serving"


def test_a_store_must_be_a_store(server):
    with pytest.raises(TypeError):
        server(store=object())


def test_send_stream_async_round_trip_and_cancel(server, dirs):
    import asyncio
    srv = server()
    data = os.urandom(2 << 20)
    started = threading.Event()

    def slow():
        started.set()
        while True:
            yield b"y" * 65536

    async def main():
        await knsock.send_stream_async("127.0.0.1", srv.port, io.BytesIO(data), "async.bin")
        task = asyncio.create_task(
            knsock.send_stream_async("127.0.0.1", srv.port, slow(), "cancelled.bin"))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(main(), 60))
    assert (dirs[1] / "async.bin").read_bytes() == data
    settled(dirs[1], ["async.bin"])
