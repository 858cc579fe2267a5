"""The exceptions of kn-sock's `kn_sock.errors` that file transfer raises, with knsock's detail.

`from knsock.errors import FileTransferError, ConnectionTimeoutError` works as it does with
kn-sock. Both carry the library's result `code`, the `message`, and, when the receiver refused
the file, its `peer_reason` (the text its validator raised) and `peer_code`.

For code written against Python's own exceptions, a missing local file is also a
`FileNotFoundError`, a refused connection also a `ConnectionError`, and a timeout also a
`TimeoutError`, as they were with kn-sock 0.3.
"""
from typing import Optional

from ._ffi import Result, lib, text

__all__ = ["EasySocketError", "FileTransferError", "ConnectionTimeoutError",
           "LocalFileNotFoundError", "ConnectFailedError", "AuthenticationError", "StoreError",
           "ReceiverBusyError", "Result"]


class EasySocketError(Exception):
    """Base of kn-sock's exceptions (kept under kn-sock's name)."""


class _Detail:
    code: int
    message: str
    peer_reason: Optional[str]
    peer_code: int

    def _set_detail(self, message: str, code: int, peer_reason: Optional[str],
                    peer_code: int) -> None:
        self.message = message
        self.code = Result(code) if code in Result._value2member_map_ else code
        self.peer_reason = peer_reason
        self.peer_code = peer_code


class FileTransferError(_Detail, EasySocketError):
    """A transfer failed; `peer_reason` holds the receiver's reason when it refused the file."""

    def __init__(self, message: str = "File transfer failed.", code: int = Result.IO,
                 peer_reason: Optional[str] = None, peer_code: int = 0):
        super().__init__(message)
        self._set_detail(message, code, peer_reason, peer_code)


class ConnectionTimeoutError(_Detail, EasySocketError, TimeoutError):
    """Connecting, or waiting for the peer, took longer than the timeout."""

    def __init__(self, message: str = "Connection timed out.", code: int = Result.TIMEOUT,
                 peer_reason: Optional[str] = None, peer_code: int = 0):
        Exception.__init__(self, message)
        self._set_detail(message, code, peer_reason, peer_code)

    def __str__(self) -> str:
        return self.message


class LocalFileNotFoundError(FileTransferError, FileNotFoundError):
    """The local file or directory to send does not exist."""

    def __str__(self) -> str:
        return self.message


class ConnectFailedError(FileTransferError, ConnectionError):
    """The connection could not be made (refused, unreachable, unknown host)."""

    def __str__(self) -> str:
        return self.message


class AuthenticationError(FileTransferError):
    """Authentication failed (`Result.AUTH`): the server's certificate or pin did not verify,
    the server refused our token or certificate (`peer_code` 12), or one side speaks TLS and the
    other does not (`peer_code` 13). The message says which."""


class StoreError(FileTransferError):
    """The receiver's object store failed (`Result.STORE`): a server whose bucket is unreachable
    or refuses its keys fails to start with it, and its error handler gets it for a file it could
    not store. A sender whose file the store failed gets `peer_code` 15 (unreachable or slowing
    down: retries may succeed) or 16 (refused: access denied, no such bucket)."""


class ReceiverBusyError(FileTransferError):
    """The receiver is at its connection cap (`Result.BUSY`, `peer_code` 17): retry later. A send
    with `retries` retries it with backoff first; this is raised once they are spent."""


def error_from(code: int, err: Optional[int]) -> EasySocketError:
    """The exception for a failed call, from its code and its (borrowed) knsock_error."""
    message = text(lib.knsock_error_message(err)) if err else None
    if not message:
        message = text(lib.knsock_result_str(code)) or "unknown result code"
    reason = text(lib.knsock_error_peer_reason(err)) if err else None
    peer_code = lib.knsock_error_peer_code(err) if err else 0
    cls = {Result.TIMEOUT: ConnectionTimeoutError, Result.NOT_FOUND: LocalFileNotFoundError,
           Result.CONNECT: ConnectFailedError,
           Result.AUTH: AuthenticationError, Result.STORE: StoreError,
           Result.BUSY: ReceiverBusyError}.get(code, FileTransferError)
    return cls(message, code, reason, peer_code)


def take_error(code: int, err: Optional[int]) -> EasySocketError:
    """Like error_from, for an error object the caller owns: it is freed here."""
    try:
        return error_from(code, err)
    finally:
        lib.knsock_error_free(err)
