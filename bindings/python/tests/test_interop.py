"""Both directions with the real kn-sock 0.3.0 from PyPI, byte for byte."""
import subprocess
import sys

import pytest

import knsock

from conftest import DEADLINE, Lines, Recorder, free_port, make_file, no_leftovers

import kn_sock.file_transfer as kn_sock  # noqa: E402 - scripts/test-python.sh installs it


def test_knsock_sender_to_kn_sock_server(dirs):
    src, out = dirs
    port = free_port()
    code = ("from kn_sock.file_transfer import start_file_server as s; "
            "s(%d, %r, host='127.0.0.1', show_progress=False)" % (port, str(out)))
    server = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE,
                              text=True)
    try:
        lines = Lines(server.stdout)
        assert "listening" in lines.next()
        for name, size in [("legacy.bin", 5_000_000), ("small.txt", 7), ("empty", 0)]:
            data = make_file(src / name, size, 3)
            progress = []
            knsock.send_file("127.0.0.1", port, str(src / name), legacy=True,
                             progress_callback=lambda s, t, f: progress.append(s))
            assert progress[-1] == size
            # kn-sock closes only after writing the file, and knsock's legacy send returns only
            # after that close: the file is complete now.
            assert (out / name).read_bytes() == data
    finally:
        server.kill()
        server.wait()


def test_kn_sock_sender_to_knsock_server(server, dirs):
    src, out = dirs
    got = Recorder()
    s = server(handler=got)
    files = {"k1.bin": make_file(src / "k1.bin", 3_000_000, 1),
             "k2 spaced.txt": make_file(src / "k2 spaced.txt", 1000, 2)}
    for name in files:
        r = subprocess.run([sys.executable, "-c",
                            "import sys; from kn_sock.file_transfer import send_file; "
                            "send_file('127.0.0.1', int(sys.argv[1]), sys.argv[2], "
                            "show_progress=False)", str(s.port), str(src / name)],
                           capture_output=True, text=True, timeout=DEADLINE)
        assert r.returncode == 0, r.stderr
    calls = got.wait_for(len(files))  # kn-sock does not wait for the receiver: we do
    assert sorted(c[0] for c in calls) == sorted(files)
    for name, data in files.items():
        assert (out / name).read_bytes() == data
    no_leftovers(out, list(files))


def test_kn_sock_async_sender_to_knsock_async_server(dirs):
    src, out = dirs
    data = make_file(src / "as.bin", 500_000, 9)
    import asyncio

    async def main():
        loop = asyncio.get_running_loop()
        started, received = loop.create_future(), loop.create_future()
        serve = asyncio.create_task(knsock.start_file_server_async(
            0, str(out), "127.0.0.1", ready=started.set_result,
            handler=lambda f, p, a: loop.call_soon_threadsafe(received.set_result, f)))
        srv = await started
        await kn_sock.send_file_async("127.0.0.1", srv.port, str(src / "as.bin"),
                                      show_progress=False)
        assert await asyncio.wait_for(received, DEADLINE) == "as.bin"
        serve.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serve

    asyncio.run(main())
    assert (out / "as.bin").read_bytes() == data
