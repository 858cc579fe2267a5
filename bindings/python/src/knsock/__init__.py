"""knsock: kn-sock's file-transfer API on knsock's Rust engine, through its C ABI.

Code written for kn-sock moves over by changing the import::

    from knsock import send_file, start_file_server            # was: from kn_sock import ...
    from knsock.errors import FileTransferError, ConnectionTimeoutError

`send_file` returns only once the receiver has the file verified, durable and in place; a
refusal raises FileTransferError with the receiver's reason. Beyond kn-sock: `send_files`
(trees over one connection, per-file results), `FileServer` (a non-blocking server), a pre-data
`validator_before`, compression, retries, skipping unchanged files, and TLS with
authentication (`pin=`, `token=` on sends; `tls_self_signed=`, `tokens_file=`, `confine=` on
servers; `AuthenticationError`), fan-out (`send_files_to_many`: the same files to several
receivers at once), S3 storage on servers (`s3="s3://BUCKET/PREFIX"`; `StoreError`) and
`FileServer.stats()` (a `ServerStats` of counters and resources in use). A receiver at its
connection cap raises `ReceiverBusyError` (a `FileTransferError`) once `retries` are spent.
`send_stream` sends a binary file object or an iterator of bytes (size known only at its end),
and a `FileServer(store=...)` receives into a `knsock.Store` of the program's own.
Restores: `fetch_files` / `fetch_file` (and their `_async` forms) get files back from a server
started with `allow_fetch=True`, verified and renamed into place as a receiver does.
"""
from ._ffi import Overwrite, Result, lib as _lib
from ._fetch import fetch_file, fetch_file_async, fetch_files, fetch_files_async
from ._send import (BatchProgress, FileResult, ReceiverResult, send_file, send_file_async,
                    send_files, send_files_to_many)
from ._server import (FileServer, ReceivedFile, hash_token, start_file_server,
                      start_file_server_async)
from ._stats import STATS_CODES, ServerStats
from ._store import Store, StoredObject
from ._stream import send_stream, send_stream_async
from .errors import (AuthenticationError, ConnectionTimeoutError, EasySocketError,
                     FileTransferError, ReceiverBusyError, StoreError)

__version__ = "0.1.0"
library_version: str = _lib.knsock_version().decode()

__all__ = [
    "send_file", "send_file_async", "send_files", "start_file_server",
    "start_file_server_async", "FileServer", "FileResult", "BatchProgress",
    "FileTransferError", "ConnectionTimeoutError", "EasySocketError", "Result", "Overwrite",
    "library_version", "AuthenticationError", "ReceivedFile", "hash_token",
    "send_files_to_many", "ReceiverResult", "StoreError", "ServerStats", "STATS_CODES",
    "ReceiverBusyError", "send_stream", "send_stream_async", "Store", "StoredObject",
    "fetch_file", "fetch_files", "fetch_file_async", "fetch_files_async",
]
