"""FileServer.stats(): the counters after a stored and a refused file, and a closed server."""
import pytest

import knsock
from knsock.errors import FileTransferError

from conftest import make_file


def test_stats_count_stored_and_refused_files(server, dirs):
    src, _ = dirs
    data = make_file(src / "ok.bin", 70_000)
    make_file(src / "huge.bin", 3_000_000)

    def validator_before(filename, filesize):
        if filesize > 1_000_000:
            raise ValueError("too big")

    s = server(validator_before=validator_before)
    knsock.send_file("127.0.0.1", s.port, str(src / "ok.bin"))
    with pytest.raises(FileTransferError):
        knsock.send_file("127.0.0.1", s.port, str(src / "huge.bin"))
    st = s.stats()
    assert isinstance(st, knsock.ServerStats)
    assert (st.files_received, st.bytes_stored) == (1, len(data))
    assert st.connections_accepted == 2
    # Code 1: refused by the validator before the data (a large file is never sent eagerly).
    assert st.files_rejected[1] == 1 and st.rejected == 1 and st.failed == 0
    assert len(st.files_rejected) == len(st.files_failed) == knsock.STATS_CODES
    assert st.bytes_received >= len(data)
    assert st.connections_max > 0 and st.descriptors_limit > 0
    s.close()
    assert s.stats() == knsock.ServerStats()
