"""TLS and authentication from Python: a pin round trip, a wrong pin, a token whose identity
reaches handler_info, a wrong token, and the settings' own checks."""
import os

import pytest

import knsock
from knsock import AuthenticationError, FileTransferError, Result
from conftest import Recorder, make_file, no_leftovers

WRONG_PIN = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


@pytest.fixture
def tokens(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("alice:%s\n" % knsock.hash_token("alice-secret"))
    os.chmod(path, 0o600)
    return path


def test_round_trip_with_the_pin(dirs, server, tmp_path):
    src, out = dirs
    got = Recorder()
    srv = server(tls_self_signed=tmp_path / "identity", handler_info=got)
    assert srv.tls_pin.startswith("sha256//") and len(srv.tls_pin) == 52
    data = make_file(src / "one.bin", 3 << 20)
    knsock.send_file("127.0.0.1", srv.port, src / "one.bin", show_progress=False,
                     pin=srv.tls_pin)
    assert (out / "one.bin").read_bytes() == data
    info = got.wait_for(1)[0][0]
    assert info.filename == "one.bin" and info.identity is None and info.size == len(data)
    results = knsock.send_files("127.0.0.1", srv.port, [src / "one.bin"], show_progress=False,
                                pin=srv.tls_pin, compress=True)
    assert [r.ok for r in results] == [True]


def test_a_plain_server_has_no_pin(server):
    assert server().tls_pin is None


def test_a_wrong_pin_is_an_authentication_error(dirs, server, tmp_path):
    src, out = dirs
    srv = server(tls_self_signed=tmp_path / "identity")
    make_file(src / "x.bin", 100)
    with pytest.raises(AuthenticationError) as e:
        knsock.send_file("127.0.0.1", srv.port, src / "x.bin", show_progress=False,
                         pin=WRONG_PIN)
    assert isinstance(e.value, FileTransferError)
    assert e.value.code == Result.AUTH
    assert "does not match the pin" in str(e.value)
    # A plain sender is told the server requires TLS (ERROR code 13).
    with pytest.raises(AuthenticationError) as e:
        knsock.send_file("127.0.0.1", srv.port, src / "x.bin", show_progress=False)
    assert e.value.peer_code == 13 and "requires TLS" in str(e.value)
    no_leftovers(out, [])


def test_a_token_gives_the_identity_and_a_wrong_one_is_refused(dirs, server, tmp_path, tokens):
    src, out = dirs
    got, plain = Recorder(), Recorder()
    srv = server(tls_self_signed=tmp_path / "identity", tokens_file=tokens, handler=plain,
                 handler_info=got)
    data = make_file(src / "a.bin", 1000)
    with pytest.raises(AuthenticationError) as e:
        knsock.send_file("127.0.0.1", srv.port, src / "a.bin", show_progress=False,
                         pin=srv.tls_pin, token="alice:guess")
    assert e.value.peer_code == 12 and "wrong token" in str(e.value)
    no_leftovers(out, [])
    knsock.send_file("127.0.0.1", srv.port, src / "a.bin", show_progress=False,
                     pin=srv.tls_pin, token="alice:alice-secret")
    assert (out / "a.bin").read_bytes() == data
    info = got.wait_for(1)[0][0]
    assert info.identity == "alice" and info.filename == "a.bin"
    # kn-sock's handler keeps its signature.
    name, path, addr = plain.wait_for(1)[0]
    assert name == "a.bin" and path == str(out / "a.bin") and addr[0] == "127.0.0.1"


def test_confinement_puts_each_identity_in_its_directory(dirs, server, tmp_path, tokens):
    src, out = dirs
    srv = server(tls_self_signed=tmp_path / "identity", tokens_file=tokens, confine=True)
    make_file(src / "f.txt", 10)
    knsock.send_file("127.0.0.1", srv.port, src / "f.txt", show_progress=False,
                     pin=srv.tls_pin, token="alice:alice-secret")
    no_leftovers(out, ["alice/f.txt"])


def test_settings_are_checked_with_their_reason(dirs, tmp_path, tokens):
    src, out = dirs
    make_file(src / "x.bin", 10)
    with pytest.raises(ValueError, match="pin must look like"):
        knsock.send_file("127.0.0.1", 9, src / "x.bin", show_progress=False, pin="sha256//x")
    with pytest.raises(ValueError, match="NAME:SECRET"):
        knsock.send_file("127.0.0.1", 9, src / "x.bin", show_progress=False, token="nocolon")
    with pytest.raises(FileTransferError, match="need TLS") as e:
        knsock.FileServer(0, out, "127.0.0.1", tokens_file=tokens)
    assert e.value.code == Result.INVALID_ARGUMENT
    with pytest.raises(ValueError, match="mode mask"):
        knsock.FileServer(0, out, "127.0.0.1", mode_mask=0o10000)
    with pytest.raises(FileTransferError):
        knsock.hash_token("")
