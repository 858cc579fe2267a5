"""send_stream: what a binary file object or an iterator of bytes yields, sent as one file of a
stated size or of one known only at its end (knsock_send_stream)."""
import asyncio
import ctypes
import functools
import threading
from typing import Any, Iterable, Iterator, Optional, Union

from . import _ffi
from ._ffi import Result, lib
from ._send import ProgressCallback, _port, _prepared, _Progress, _raise_for, _security

Source = Union[Any, Iterable[bytes]]


class _Reader:
    """A source read for C: a file object through readinto() or read(), else an iterator of
    bytes (the rest of a long item kept for the next call); the first exception is kept."""

    def __init__(self, source: Source):
        self.readinto = getattr(source, "readinto", None)
        self.read = getattr(source, "read", None) if self.readinto is None else None
        self.items: Optional[Iterator[bytes]] = None
        if self.readinto is None and self.read is None:
            self.items = iter(source)
        self.rest = memoryview(b"")
        self.raised: Optional[BaseException] = None
        self.cancel = threading.Event()  # send_stream_async: set when its task is cancelled

    def into(self, buffer: int, length: int) -> int:
        if self.cancel.is_set():
            raise asyncio.CancelledError()
        view = memoryview((ctypes.c_char * length).from_address(buffer)).cast("B")
        if self.readinto is not None:
            return self.readinto(view) or 0
        if self.read is not None:
            data = self.read(length) or b""
            view[:len(data)] = data
            return len(data)
        while not self.rest:
            try:
                self.rest = memoryview(bytes(next(self.items)))  # type: ignore[arg-type]
            except StopIteration:
                return 0
        n = min(length, len(self.rest))
        view[:n] = self.rest[:n]
        self.rest = self.rest[n:]
        return n


@_ffi.READ_CB
def _read_trampoline(userdata, buffer, length):
    reader = _ffi.lookup(userdata)
    try:
        if reader is None or reader.raised is not None:
            return _ffi.READ_ABORT
        n = reader.into(buffer, length)
        if not 0 <= n <= length:
            raise ValueError("the source returned %r bytes for a buffer of %d" % (n, length))
        return n
    except BaseException as e:  # noqa: B902 - KeyboardInterrupt must abort the send too
        if reader is not None:
            reader.raised = e
        return _ffi.READ_ABORT


def send_stream(host: str, port: int, source: Source, remote_name: str,
                size: Optional[int] = None, *,
                progress_callback: Optional[ProgressCallback] = None,
                chunk_size: int = 256 * 1024, timeout: Optional[float] = 30,
                connect_timeout: Optional[float] = None, compress: bool = False,
                tls: bool = False, ca_file: Any = None, pin: Optional[str] = None,
                server_name: Optional[str] = None, client_cert: Any = None,
                client_key: Any = None, token: Optional[str] = None,
                _reader: Optional[_Reader] = None) -> None:
    """Send what `source` yields, to its end, as the file `remote_name` (knsock_send_stream).

    `source` is a binary file object (anything with `readinto()` or `read(n)`: a pipe, a socket
    file, `sys.stdin.buffer`, `io.BytesIO`) or an iterable of bytes (a generator). Returns once
    the receiver has the file verified, durable and in place; raises otherwise:

    - whatever the source raised, which aborts the send: the receiver stores nothing;
    - `FileTransferError` when the receiver refused it (`e.peer_reason`: for a stream past its
      maximum file size, "the stream exceeds the limit of N bytes"), or `size` was stated and
      the source yielded another number of bytes (then nothing is stored either).

    `size` is the content's size when known; without it the size is known only at the end and
    `progress_callback(bytes_sent, 0, remote_name)` gets a total of 0. There is no retry and no
    resume: a stream cannot be read twice. Runs on the calling thread, callbacks included.
    """
    security = _security(tls, ca_file, pin, server_name, client_cert, client_key, token)
    progress = _Progress(progress_callback, None)
    reader = _reader or _Reader(source)
    if size is not None and not 0 <= size < _ffi.SIZE_UNKNOWN:
        raise ValueError("size must be 0 to 2**64 - 2, not %r" % (size,))
    chost, cname = _ffi.cstr(host, "host"), _ffi.cstr(remote_name, "remote_name")
    handle = _ffi.register(reader)
    try:
        with _prepared(progress, progress_callback is not None, show_progress=False,
                       chunk_size=chunk_size, timeout=timeout, connect_timeout=connect_timeout,
                       compress=compress, security=security) as (opts, _):
            err = ctypes.c_void_p()
            code = lib.knsock_send_stream(
                chost, _port(port), cname, _read_trampoline, handle,
                _ffi.SIZE_UNKNOWN if size is None else size, opts.ptr, ctypes.byref(err))
    finally:
        _ffi.unregister(handle)
    if code != Result.OK:
        if reader.raised is not None and code == Result.ABORTED_BY_CALLBACK:
            lib.knsock_error_free(err)
            raise reader.raised
        _raise_for(code, err, progress)
    if progress.raised is not None:
        raise progress.raised


async def send_stream_async(host: str, port: int, source: Source, remote_name: str,
                            size: Optional[int] = None, **options: Any) -> None:
    """`send_stream` for asyncio: the send, and the reads of `source`, run on a worker thread
    and never block the loop. Same arguments, errors and guarantees. Cancelling the awaiting
    task aborts the send at the source's next read (the receiver stores nothing) and raises
    `asyncio.CancelledError` once it stopped; a read that blocks is waited for."""
    loop = asyncio.get_running_loop()
    reader = _Reader(source)
    send = functools.partial(send_stream, host, port, source, remote_name, size,
                             _reader=reader, **options)
    done = loop.run_in_executor(None, send)
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        # Stop at the next read, then wait for the send's end: the receiver stores nothing.
        reader.cancel.set()
        await asyncio.wait({done})
        raise
