"""A server's statistics: `knsock_server_stats` through a `knsock_stats` struct whose `size`
field says how much of it this binding knows, its `knsock_stats_values` as a `ServerStats`."""
import ctypes
from ctypes import c_uint64
from dataclasses import dataclass, fields
from typing import Tuple

from ._ffi import Result, lib

#: Slots of `files_rejected` and `files_failed`: slot c counts refusal code c (1 to 16,
#: docs/protocol.md section 5); slot 0 counts codes the library does not know.
STATS_CODES = 17

_COUNTS = ("connections_open", "connections_accepted", "files_received", "files_skipped")
_MORE = ("bytes_received", "bytes_stored", "bytes_reused", "resumes", "auth_failures",
         "tls_handshakes", "store_requests", "store_failures", "connections_max",
         "decoders_in_use", "decoders_max", "files_in_flight", "space_reserved",
         "descriptors_open", "descriptors_limit", "connections_busy")


class _Values(ctypes.Structure):
    """`knsock_stats_values`."""

    _fields_ = ([(n, c_uint64) for n in _COUNTS]
                + [("files_rejected", c_uint64 * STATS_CODES),
                   ("files_failed", c_uint64 * STATS_CODES)]
                + [(n, c_uint64) for n in _MORE])


class _Stats(ctypes.Structure):
    """`knsock_stats`: the size this binding knows, then the values."""

    _fields_ = [("size", c_uint64), ("values", _Values)]


lib.knsock_server_stats.restype = ctypes.c_int
lib.knsock_server_stats.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Stats)]


@dataclass(frozen=True)
class ServerStats:
    """What a server has done since it started (totals) and the use of its bounded resources
    now. `files_rejected[code]` counts offers refused before their data (REJECT),
    `files_failed[code]` files not stored after it (FAILED). Nothing here names a file or a
    sender."""

    connections_open: int = 0
    connections_accepted: int = 0
    files_received: int = 0
    files_skipped: int = 0
    files_rejected: Tuple[int, ...] = (0,) * STATS_CODES
    files_failed: Tuple[int, ...] = (0,) * STATS_CODES
    bytes_received: int = 0
    bytes_stored: int = 0
    bytes_reused: int = 0
    resumes: int = 0
    auth_failures: int = 0
    tls_handshakes: int = 0
    store_requests: int = 0
    store_failures: int = 0
    connections_max: int = 0
    decoders_in_use: int = 0
    decoders_max: int = 0
    files_in_flight: int = 0
    space_reserved: int = 0
    descriptors_open: int = 0
    descriptors_limit: int = 0
    connections_busy: int = 0

    @property
    def rejected(self) -> int:
        return sum(self.files_rejected)

    @property
    def failed(self) -> int:
        return sum(self.files_failed)


def server_stats(ptr) -> ServerStats:
    """The statistics of the server at `ptr` (a live handle); all zero if the call fails."""
    raw = _Stats()
    raw.size = ctypes.sizeof(_Stats)
    if lib.knsock_server_stats(ptr, ctypes.byref(raw)) != Result.OK:
        return ServerStats()
    v = raw.values
    values = {f.name: getattr(v, f.name) for f in fields(ServerStats)}
    values["files_rejected"] = tuple(v.files_rejected)
    values["files_failed"] = tuple(v.files_failed)
    return ServerStats(**values)
