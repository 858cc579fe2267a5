"""send_files_to_many: the same files to several receivers at once, with per-receiver results."""
import socket

import pytest

import knsock
from knsock.errors import FileTransferError

from conftest import Recorder, make_file, no_leftovers


def test_three_receivers_one_refusing_and_one_unreachable(server, dirs, tmp_path):
    src, _ = dirs
    expect = {"a.txt": make_file(src / "a.txt", 4096, 1),
              "b.bin": make_file(src / "b.bin", 300_000, 2)}
    outs = [tmp_path / ("out%d" % i) for i in range(3)]
    for out in outs:
        out.mkdir()

    def refuse(filename, filepath):
        raise PermissionError("not here: " + filename)

    first, refusing, third = (server(save_dir=outs[0]),
                              server(save_dir=outs[1], validator=refuse),
                              server(save_dir=outs[2]))
    progress = []
    with socket.socket() as closed:  # bound, never listening: connecting is refused
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()[1]
        receivers = ["127.0.0.1:%d" % first.port, ("127.0.0.1", refusing.port),
                     "127.0.0.1:%d" % third.port, ("127.0.0.1", dead)]
        results = knsock.send_files_to_many(receivers, [str(src / "a.txt"), str(src / "b.bin")],
                                            batch_progress_callback=progress.append)

    assert [r.receiver for r in results] == [("127.0.0.1", s.port)
                                             for s in (first, refusing, third)] + [
                                                 ("127.0.0.1", dead)]
    ok1, refused, ok3, unreachable = results
    for r, out in ((ok1, outs[0]), (ok3, outs[2])):
        assert r.ok and r.error is None
        assert [(f.name, f.bytes, f.skipped, f.error) for f in r.files] == [
            ("a.txt", 4096, False, None), ("b.bin", 300_000, False, None)]
        for name, data in expect.items():
            assert (out / name).read_bytes() == data
    assert refused.error is None and not refused.ok  # reached; each file refused
    assert [f.name for f in refused.files] == ["a.txt", "b.bin"]
    for f in refused.files:
        assert isinstance(f.error, FileTransferError)
        assert f.error.peer_reason == "not here: " + f.name
    no_leftovers(outs[1], [])
    assert unreachable.files == [] and not unreachable.ok
    assert isinstance(unreachable.error, ConnectionError)
    assert unreachable.error.code == knsock.Result.CONNECT

    # Each reached receiver's progress, by its index; the last report covers both files.
    for i in (0, 1, 2):
        last = [p for p in progress if p.receiver == i][-1]
        assert last.count == 2 and last.sent == last.total == 4096 + 300_000


def test_a_raising_callback_aborts_and_reaches_the_caller(server, dirs):
    src, out = dirs
    make_file(src / "big.bin", 4_000_000)
    errors = Recorder()
    port = server(error_handler=errors).port

    def stop(p):
        if p.file_sent > 0:
            raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        knsock.send_files_to_many(["127.0.0.1:%d" % port], [str(src / "big.bin")],
                                  batch_progress_callback=stop)
    error, _ = errors.wait_for(1)[0]  # the receiver dropped the upload
    assert isinstance(error, FileTransferError)
    no_leftovers(out, [])


def test_bad_arguments_raise_clearly(dirs):
    src, _ = dirs
    make_file(src / "f", 10)
    path = [str(src / "f")]
    with pytest.raises(ValueError, match="receivers is empty"):
        knsock.send_files_to_many([], path)
    with pytest.raises(ValueError, match="receivers must be a list"):
        knsock.send_files_to_many("127.0.0.1:9000", path)
    for bad in ("localhost", ":9000", "::1:9000"):
        with pytest.raises(ValueError, match="expected \"host:port\""):
            knsock.send_files_to_many([bad], path)
    for bad in ("localhost:http", "localhost:0", "localhost:70000"):
        with pytest.raises(ValueError, match="the port must be 1 to 65535"):
            knsock.send_files_to_many([bad], path)
    with pytest.raises(ValueError, match="expected \\(host, port\\)"):
        knsock.send_files_to_many([("localhost", 1, 2)], path)
    with pytest.raises(FileNotFoundError):
        knsock.send_files_to_many(["127.0.0.1:9"], ["/nonexistent/knsock-test"])
