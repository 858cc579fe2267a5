"""FileServer(s3=...): a server storing into the S3 engine scripts/test.sh starts
(KNSOCK_S3_ENDPOINT, KNSOCK_S3_BUCKET, keys knsock-test / knsock-test-secret; skipped without
one unless KNSOCK_REQUIRE_S3=1). The objects are checked through the server's handler and
skip-unchanged, with no S3 client here."""
import os
import queue
import socket
import threading

import pytest

import knsock
from knsock.errors import FileTransferError, StoreError

from conftest import DEADLINE, Recorder, make_file


def s3_settings(tag):
    """FileServer's S3 arguments for s3://BUCKET/py-PID-TAG on the test engine. Without one the
    test is skipped, unless KNSOCK_REQUIRE_S3=1 (which scripts/test.sh sets, so CI never skips
    it silently): then it fails."""
    endpoint = os.environ.get("KNSOCK_S3_ENDPOINT")
    bucket = os.environ.get("KNSOCK_S3_BUCKET")
    if not endpoint or not bucket:
        why = ("no S3 engine: set KNSOCK_S3_ENDPOINT and KNSOCK_S3_BUCKET (an existing bucket "
               "there; keys knsock-test / knsock-test-secret), as scripts/test.sh does when it "
               "starts SeaweedFS")
        if os.environ.get("KNSOCK_REQUIRE_S3") == "1":
            pytest.fail(why + " (KNSOCK_REQUIRE_S3=1: S3 tests must run)")
        pytest.skip(why + " (KNSOCK_REQUIRE_S3=1 makes this a failure)")
    return dict(s3="s3://%s/py-%d-%s" % (bucket, os.getpid(), tag), s3_endpoint=endpoint,
                s3_path_style=True, s3_region="us-east-1",
                s3_credentials=("knsock-test", "knsock-test-secret"))


def skipped(port, path):
    """Sends `path` with skip-unchanged comparing digests (the object's recorded one); whether
    the receiver skipped it."""
    result, = knsock.send_files("127.0.0.1", port, [str(path)], skip_unchanged=True,
                                checksum=True)
    assert result.ok, result.error
    return result.skipped


def test_round_trip_into_the_bucket(tmp_path):
    src, spool = tmp_path / "src", tmp_path / "spool"
    src.mkdir()
    spool.mkdir()
    make_file(src / "report.bin", 300_000, 1)
    got = Recorder()
    settings = s3_settings("trip")
    with knsock.FileServer(0, spool, "127.0.0.1", handler=got, **settings) as server:
        knsock.send_file("127.0.0.1", server.port, str(src / "report.bin"))
        (filename, filepath, _), = got.wait_for(1)
        assert (filename, filepath) == ("report.bin", settings["s3"] + "/report.bin")
        assert not (spool / "report.bin").exists()  # the bucket has it, not the spool

        # The object carries the verified digest: the same file is skipped, ...
        assert skipped(server.port, src / "report.bin")
        # ... another one is stored again, and then skipped.
        make_file(src / "report.bin", 200_000, 2)
        assert not skipped(server.port, src / "report.bin")
        assert skipped(server.port, src / "report.bin")
        assert len(got.wait_for(2)) == 2


def test_start_file_server_takes_the_s3_settings(tmp_path):
    src, spool = tmp_path / "src", tmp_path / "spool"
    src.mkdir()
    spool.mkdir()
    make_file(src / "blocking.txt", 1000)
    got, ready, failed = Recorder(), queue.Queue(), []
    settings = s3_settings("blocking")

    def serve():
        try:
            knsock.start_file_server(0, spool, "127.0.0.1", handler=got, ready=ready.put,
                                     **settings)
        except BaseException as e:
            failed.append(e)
            ready.put(None)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    server = ready.get(timeout=DEADLINE)
    assert server is not None, failed
    knsock.send_file("127.0.0.1", server.port, str(src / "blocking.txt"))
    (_, filepath, _), = got.wait_for(1)
    assert filepath == settings["s3"] + "/blocking.txt"
    server.stop()
    thread.join(DEADLINE)
    assert not thread.is_alive() and not failed


def test_an_unreachable_store_fails_the_start(tmp_path):
    settings = s3_settings("unreachable")
    with socket.socket() as closed:  # bound, never listening: connecting is refused
        closed.bind(("127.0.0.1", 0))
        settings["s3_endpoint"] = "http://127.0.0.1:%d" % closed.getsockname()[1]
        with pytest.raises(StoreError) as info:
            knsock.FileServer(0, tmp_path, "127.0.0.1", **settings)
    assert isinstance(info.value, FileTransferError)
    assert info.value.code == knsock.Result.STORE
    assert "unreachable" in str(info.value)


def test_refused_keys_fail_the_start(tmp_path):
    settings = s3_settings("refused")
    settings["s3_credentials"] = ("knsock-test", "wrong-secret")
    with pytest.raises(StoreError, match="access denied"):
        knsock.FileServer(0, tmp_path, "127.0.0.1", **settings)


def test_misuse_is_refused_with_the_reason(tmp_path):
    # Refused while configuring, before any store is contacted. The adjusters without a
    # bucket: the library's message says what comes first.
    with pytest.raises(ValueError, match=r"s3_endpoint: .*knsock_server_config_set_s3\(\)"):
        knsock.FileServer(0, tmp_path, "127.0.0.1", s3_endpoint="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="s3_path_style: needs s3_endpoint"):
        knsock.FileServer(0, tmp_path, "127.0.0.1", s3="s3://bucket/prefix", s3_path_style=True)
    with pytest.raises(ValueError, match="s3_credentials must be"):
        knsock.FileServer(0, tmp_path, "127.0.0.1", s3="s3://bucket/prefix",
                          s3_credentials=("key",))
    with pytest.raises(ValueError, match="^s3: "):
        knsock.FileServer(0, tmp_path, "127.0.0.1", s3="http://not-s3/")
