"""fetch_files / fetch_file and their async forms: a tree sent comes back byte for byte, with
progress; unchanged files are skipped; refusals and cancellation leave nothing behind; the mode
mask and partial copies."""
import asyncio

import pytest

import knsock
from conftest import make_file, no_leftovers


def _tree(src):
    (src / "tree" / "sub").mkdir(parents=True)
    return (make_file(src / "tree" / "a.bin", 500_000), make_file(src / "tree" / "sub" / "b.txt", 100))


def test_a_tree_comes_back(dirs, server, tmp_path):
    src, _ = dirs
    a, b = _tree(src)
    s = server(allow_fetch=True, allow_anonymous_fetch=True)
    knsock.send_files("127.0.0.1", s.port, [src / "tree"], recursive=True, show_progress=False)
    dst = tmp_path / "restored"
    seen = []
    results = knsock.fetch_files("127.0.0.1", s.port, ["tree", "nope"], dst, recursive=True,
                                 progress_callback=lambda got, total, name: seen.append((name, got)))
    assert [r.name for r in results] == ["tree/a.bin", "tree/sub/b.txt", "nope"]
    assert results[0].ok and results[0].path == str(dst / "tree" / "a.bin")
    assert not results[2].ok and "no such file: 'nope'" in str(results[2].error)
    assert (dst / "tree" / "a.bin").read_bytes() == a
    assert (dst / "tree" / "sub" / "b.txt").read_bytes() == b
    assert seen[-1] == ("tree/sub/b.txt", 100)
    no_leftovers(dst, ["tree/a.bin", "tree/sub/b.txt"])

    again = knsock.fetch_files("127.0.0.1", s.port, "tree", dst, recursive=True,
                               skip_unchanged=True)
    assert all(r.skipped for r in again) and len(again) == 2

    one = tmp_path / "one"
    knsock.fetch_file("127.0.0.1", s.port, "tree/sub/b.txt", one)
    assert (one / "b.txt").read_bytes() == b
    with pytest.raises(knsock.FileTransferError, match="no such file"):
        knsock.fetch_file("127.0.0.1", s.port, "nope", one)


def test_the_async_forms(dirs, server, tmp_path):
    src, out = dirs
    data = make_file(out / "f.bin", 300_000)
    s = server(allow_fetch=True, allow_anonymous_fetch=True)
    dst = tmp_path / "async"
    asyncio.run(knsock.fetch_file_async("127.0.0.1", s.port, "f.bin", dst))
    assert (dst / "f.bin").read_bytes() == data

    async def missing():
        await knsock.fetch_files_async("127.0.0.1", s.port, ["nope"], dst)

    with pytest.raises(knsock.FileTransferError, match="no such file"):
        asyncio.run(missing())


def test_refusals_and_an_aborting_callback(dirs, server, tmp_path):
    _, out = dirs
    make_file(out / "f.bin", 300_000)
    dst = tmp_path / "nothing"
    closed = server()
    with pytest.raises(knsock.FileTransferError, match="does not serve fetches"):
        knsock.fetch_file("127.0.0.1", closed.port, "f.bin", dst)
    anonymous = server(allow_fetch=True)
    with pytest.raises(knsock.AuthenticationError, match="only to authenticated clients"):
        knsock.fetch_file("127.0.0.1", anonymous.port, "f.bin", dst)

    class Stop(Exception):
        pass

    def stop(got, total, name):
        raise Stop()

    s = server(allow_fetch=True, allow_anonymous_fetch=True)
    with pytest.raises(Stop):
        knsock.fetch_files("127.0.0.1", s.port, ["f.bin"], dst, progress_callback=stop)
    no_leftovers(dst, [])


def test_mode_mask_and_partial_copies(dirs, server, tmp_path):
    _, out = dirs
    data = make_file(out / "f.bin", 600_000)
    (out / "f.bin").chmod(0o644)
    s = server(allow_fetch=True, allow_anonymous_fetch=True)
    dst = tmp_path / "masked"
    knsock.fetch_file("127.0.0.1", s.port, "f.bin", dst, mode_mask=0o700)
    assert (dst / "f.bin").stat().st_mode & 0o7777 == 0o600
    for bad in (0o10000, -1, "755"):
        with pytest.raises(ValueError, match="mode_mask"):
            knsock.fetch_file("127.0.0.1", s.port, "f.bin", dst, mode_mask=bad)

    class Stop(Exception):
        pass

    def stop(got, total, name):
        raise Stop()

    # Cut short by the callback: with partial copies kept the data stays hidden and the next
    # fetch resumes it; without, nothing is left.
    for partial in (False, True):
        cut = tmp_path / ("cut%d" % partial)
        with pytest.raises(Stop):
            knsock.fetch_file("127.0.0.1", s.port, "f.bin", cut, partial=partial,
                              progress_callback=stop)
        left = sorted(p.name for p in cut.iterdir())
        if partial:
            assert len(left) == 1 and left[0].startswith(".knsock-partial-"), left
        else:
            assert left == []
        knsock.fetch_file("127.0.0.1", s.port, "f.bin", cut, partial=partial)
        assert (cut / "f.bin").read_bytes() == data
        assert sorted(p.name for p in cut.iterdir()) == ["f.bin"]
    asyncio.run(knsock.fetch_file_async("127.0.0.1", s.port, "f.bin", tmp_path / "am",
                                        mode_mask=0o700, partial=True))
    assert (tmp_path / "am" / "f.bin").stat().st_mode & 0o7777 == 0o600
