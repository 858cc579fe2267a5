"""The asyncio forms: awaitable, cancellable, never blocking the event loop."""
import asyncio
import threading

import pytest

import knsock
from knsock.errors import ConnectionTimeoutError, FileTransferError

from conftest import DEADLINE, Recorder, make_file, no_leftovers


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, DEADLINE))


def test_send_file_async_round_trip_keeps_the_loop_running(server, dirs):
    src, out = dirs
    data = make_file(src / "a.bin", 6_000_000)
    s = server()
    release = threading.Event()
    ticks = []

    def progress(sent, total, filename):
        if sent > 0 and not release.is_set():
            release.wait(DEADLINE)  # the transfer's thread waits; the loop must not

    async def main():
        send = asyncio.create_task(knsock.send_file_async("127.0.0.1", s.port, str(src / "a.bin"),
                                                          progress_callback=progress))
        for _ in range(5):
            await asyncio.sleep(0)
            ticks.append(1)
        release.set()
        await send

    run(main())
    assert len(ticks) == 5
    assert (out / "a.bin").read_bytes() == data


def test_cancelling_the_task_cancels_the_transfer(server, dirs, monkeypatch):
    src, out = dirs
    make_file(src / "c.bin", 8_000_000)
    errors = Recorder()
    s = server(error_handler=errors)
    first_chunk = threading.Event()
    release = threading.Event()
    lib = knsock._ffi.lib
    real_cancel = lib.knsock_transfer_cancel

    def cancel(transfer):  # the transfer goes on only once it was told to stop
        rc = real_cancel(transfer)
        release.set()
        return rc

    monkeypatch.setattr(lib, "knsock_transfer_cancel", cancel)

    def progress(sent, total, filename):
        if sent > 0:
            first_chunk.set()
            assert release.wait(DEADLINE)

    async def main():
        send = asyncio.create_task(knsock.send_file_async("127.0.0.1", s.port, str(src / "c.bin"),
                                                          progress_callback=progress))
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, first_chunk.wait, DEADLINE)
        send.cancel()
        with pytest.raises(asyncio.CancelledError):
            await send

    run(main())
    errors.wait_for(1)  # the receiver saw the upload fail ...
    no_leftovers(out, [])  # ... and kept nothing


def test_send_file_async_errors(server, dirs):
    src, out = dirs
    make_file(src / "e.txt", 10)

    def validator(filename, filepath):
        raise ValueError("async says no")

    port = server(validator=validator).port

    async def main():
        with pytest.raises(FileTransferError) as info:
            await knsock.send_file_async("127.0.0.1", port, str(src / "e.txt"))
        assert info.value.peer_reason == "async says no"

        def progress(sent, total, filename):
            raise KeyError("from the callback")

        with pytest.raises(KeyError):
            await knsock.send_file_async("127.0.0.1", port, str(src / "e.txt"),
                                         progress_callback=progress)
        import socket
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(1)
            with pytest.raises(ConnectionTimeoutError):
                await knsock.send_file_async("127.0.0.1", silent.getsockname()[1],
                                             str(src / "e.txt"), timeout=0.5)

    run(main())
    no_leftovers(out, [])


def test_start_file_server_async_with_coroutine_callbacks(dirs):
    src, out = dirs
    files = {"x%d.txt" % i: make_file(src / ("x%d.txt" % i), 100 + i, i) for i in range(3)}
    make_file(src / "bad.exe", 10)

    async def main():
        loop = asyncio.get_running_loop()
        got = []
        started = loop.create_future()

        async def handler(filename, filepath, addr):
            assert asyncio.get_running_loop() is loop  # coroutine callbacks run on our loop
            got.append(filename)

        async def validator(filename, filepath):
            await asyncio.sleep(0)
            if filename.endswith(".exe"):
                raise ValueError("no executables")

        serve = asyncio.create_task(knsock.start_file_server_async(
            0, str(out), "127.0.0.1", handler=handler, validator=validator,
            ready=started.set_result))
        srv = await started
        await asyncio.gather(*(knsock.send_file_async("127.0.0.1", srv.port, str(src / n))
                               for n in files))
        with pytest.raises(FileTransferError, match="no executables"):
            await knsock.send_file_async("127.0.0.1", srv.port, str(src / "bad.exe"))
        assert sorted(got) == sorted(files)
        serve.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serve
        assert not srv.running

    run(main())
    no_leftovers(out, list(files))


def test_start_file_server_async_in_use_port_raises(dirs):
    async def main():
        with knsock.FileServer(0, dirs[1], "127.0.0.1") as taken:
            with pytest.raises(FileTransferError):
                await knsock.start_file_server_async(taken.port, str(dirs[1]), "127.0.0.1")

    run(main())
