"""Sending: send_file, send_files, send_files_to_many and send_file_async over
knsock_send_file*."""
import asyncio
import contextlib
import ctypes
import os
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from . import _ffi
from ._ffi import ABORT, KNSOCK_CONTINUE, Result, lib
from .errors import EasySocketError, error_from, take_error

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
ProgressCallback = Callable[[int, int, str], object]

# The library's own read/write step. kn-sock's `chunk_size` (default 4096) is honoured as a
# lower bound: the step is never smaller than this, because at 4 KiB per step the per-chunk
# cost (a syscall pair and, with a progress callback, a call into Python) would bound the
# throughput instead of the network.
MIN_IO_CHUNK = 256 * 1024
MAX_IO_CHUNK = 64 * 1024 * 1024


@dataclass
class BatchProgress:
    """Where a send_files() call stands: the current file and the whole list."""

    filename: str  # as the receiver names it, e.g. "logs/app.log"
    index: int  # its place in the list, from 0
    count: int  # files in the list
    file_sent: int
    file_total: int
    sent: int  # the list's bytes dealt with so far (earlier files count whole)
    total: int
    receiver: int = 0  # send_files_to_many: the receiver's index in its list (0 otherwise)


@dataclass
class FileResult:
    """One file's outcome in send_files()."""

    path: str  # local path
    name: str  # name on the receiver
    bytes: int  # bytes delivered (0 when it failed)
    skipped: bool  # the receiver already held it unchanged
    error: Optional[EasySocketError]  # None when delivered or skipped

    @property
    def ok(self) -> bool:
        return self.error is None


Address = Tuple[str, int]


@dataclass
class ReceiverResult:
    """One receiver's outcome in send_files_to_many()."""

    receiver: Address  # (host, port)
    error: Optional[EasySocketError]  # why it could not be reached at all; None when it was
    files: List[FileResult]  # each file's outcome there, in order (empty when not reached)

    @property
    def ok(self) -> bool:
        """Reached, and every file delivered or skipped."""
        return self.error is None and all(f.ok for f in self.files)


class _Progress:
    """The progress callbacks of one send and the first exception they raised."""

    def __init__(self, per_file: Optional[ProgressCallback],
                 batch: Optional[Callable[[BatchProgress], object]]):
        self.per_file = per_file
        self.batch = batch
        self.raised: Optional[BaseException] = None

    def run(self, call: Callable[[], object]) -> int:
        if self.raised is not None:
            return ABORT
        try:
            # kn-sock's callbacks return nothing: only an exception aborts. (False is not "stop".)
            call()
            return KNSOCK_CONTINUE
        except BaseException as e:  # noqa: B902 - KeyboardInterrupt must abort the send too
            self.raised = e
            return ABORT


@_ffi.PROGRESS_CB
def _progress_trampoline(userdata, filename, sent, total):
    try:
        st = _ffi.lookup(userdata)
        if st is None or st.per_file is None:
            return KNSOCK_CONTINUE
        return st.run(lambda: st.per_file(sent, total, _ffi.text(filename) or ""))
    except BaseException:  # never unwind into C
        return ABORT


def _batch_progress(userdata, filename, *counts) -> int:
    """A batch progress report from C, passed to the registered `_Progress` as BatchProgress."""
    try:
        st = _ffi.lookup(userdata)
        if st is None or st.batch is None:
            return KNSOCK_CONTINUE
        p = BatchProgress(_ffi.text(filename) or "", *counts)
        return st.run(lambda: st.batch(p))
    except BaseException:  # never unwind into C
        return ABORT


@_ffi.BATCH_PROGRESS_CB
def _batch_trampoline(userdata, filename, index, count, file_sent, file_total, sent, total):
    return _batch_progress(userdata, filename, index, count, file_sent, file_total, sent, total)


@_ffi.MULTI_PROGRESS_CB
def _multi_trampoline(userdata, receiver, filename, index, count, file_sent, file_total, sent,
                      total):
    return _batch_progress(userdata, filename, index, count, file_sent, file_total, sent, total,
                           receiver)


def _stderr_is_terminal() -> bool:
    """The library draws on file descriptor 2; Python's sys.stderr may be redirected too."""
    try:
        return os.isatty(2) and sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _ms(seconds: float, what: str) -> int:
    if seconds <= 0:
        raise ValueError("%s must be above 0 seconds" % what)
    return max(1, int(round(seconds * 1000)))


class _Options:
    """An owned knsock_send_options, built from keyword arguments; freed by close()."""

    def __init__(self, *, show_progress: bool, chunk_size: int, timeout: Optional[float],
                 connect_timeout: Optional[float], progress_handle: int, legacy: bool = False,
                 compress: bool = False, retries: int = 0, retry_delay: Optional[float] = None,
                 skip_unchanged: bool = False,
                 checksum: bool = False, remote_name: Optional[str] = None,
                 recursive: bool = False, follow_symlinks: bool = False,
                 include: Iterable[str] = (), exclude: Iterable[str] = (),
                 stop_on_error: bool = False, batch: bool = False,
                 security: Optional[dict] = None):
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.ptr = lib.knsock_send_options_new()
        if not self.ptr:
            raise MemoryError("knsock_send_options_new")
        try:
            p, check = self.ptr, _ffi.check
            check(lib.knsock_send_options_set_show_progress(
                p, bool(show_progress) and _stderr_is_terminal()), "show_progress")
            check(lib.knsock_send_options_set_chunk_size(
                p, min(max(chunk_size, MIN_IO_CHUNK), MAX_IO_CHUNK)), "chunk_size")
            if timeout is not None:
                check(lib.knsock_send_options_set_timeout_ms(p, _ms(timeout, "timeout")),
                      "timeout")
                if connect_timeout is None:
                    connect_timeout = timeout
            if connect_timeout is not None:
                check(lib.knsock_send_options_set_connect_timeout_ms(
                    p, _ms(connect_timeout, "connect_timeout")), "connect_timeout")
            check(lib.knsock_send_options_set_legacy(p, legacy), "legacy")
            check(lib.knsock_send_options_set_compress(p, compress), "compress")
            if retries < 0:
                raise ValueError("retries must not be negative")
            check(lib.knsock_send_options_set_retries(p, retries), "retries")
            if retry_delay is not None:
                check(lib.knsock_send_options_set_retry_delay_ms(
                    p, _ms(retry_delay, "retry_delay")), "retry_delay")
            check(lib.knsock_send_options_set_skip_unchanged(p, skip_unchanged),
                  "skip_unchanged")
            check(lib.knsock_send_options_set_checksum(p, checksum), "checksum")
            if remote_name is not None:
                check(lib.knsock_send_options_set_remote_name(
                    p, _ffi.cstr(remote_name, "remote_name")), "remote_name")
            check(lib.knsock_send_options_set_recursive(p, recursive), "recursive")
            check(lib.knsock_send_options_set_follow_symlinks(p, follow_symlinks),
                  "follow_symlinks")
            check(lib.knsock_send_options_set_stop_on_error(p, stop_on_error), "stop_on_error")
            for g in _globs(include, "include"):
                check(lib.knsock_send_options_add_include(p, _ffi.cstr(g, "include")),
                      "include %r" % g)
            for g in _globs(exclude, "exclude"):
                check(lib.knsock_send_options_add_exclude(p, _ffi.cstr(g, "exclude")),
                      "exclude %r" % g)
            if progress_handle:
                check(lib.knsock_send_options_set_progress_callback(
                    p, _progress_trampoline, progress_handle), "progress")
            if batch:
                check(lib.knsock_send_options_set_batch_progress_callback(
                    p, _batch_trampoline, progress_handle), "batch progress")
            _set_security(p, **(security or {}))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        lib.knsock_send_options_free(self.ptr)
        self.ptr = None


@contextlib.contextmanager
def _prepared(progress: "_Progress", with_callbacks: bool,
              **options: Any) -> Iterator[Tuple["_Options", int]]:
    """For one blocking send: `progress` registered when it has callbacks (its handle, else 0)
    and the `_Options` built around that handle; both released when the send has returned, so
    once no callback can run any more."""
    handle = _ffi.register(progress) if with_callbacks else 0
    try:
        opts = _Options(progress_handle=handle, **options)
        try:
            yield opts, handle
        finally:
            opts.close()
    finally:
        if handle:
            _ffi.unregister(handle)


def _set_security(p, tls: bool = False, ca_file: Optional[PathLike] = None,
                  pin: Optional[str] = None, server_name: Optional[str] = None,
                  client_cert: Optional[PathLike] = None, client_key: Optional[PathLike] = None,
                  token: Optional[str] = None) -> None:
    """The TLS and token options on knsock_send_options `p`; each refusal raises ValueError
    with the library's reason. Any of them but `tls` turns TLS on by itself."""
    def check(code: int, what: str) -> None:
        _ffi.check(code, what, lib.knsock_send_options_last_error(p))

    if tls:
        check(lib.knsock_send_options_set_tls(p, True), "tls")
    if ca_file is not None:
        check(lib.knsock_send_options_set_ca_file(p, _ffi.cstr(ca_file, "ca_file")), "ca_file")
    if pin is not None:
        check(lib.knsock_send_options_set_pin(p, _ffi.cstr(pin, "pin")), "pin")
    if server_name is not None:
        check(lib.knsock_send_options_set_server_name(p, _ffi.cstr(server_name, "server_name")),
              "server_name")
    if client_cert is not None or client_key is not None:
        cert = None if client_cert is None else _ffi.cstr(client_cert, "client_cert")
        key = None if client_key is None else _ffi.cstr(client_key, "client_key")
        check(lib.knsock_send_options_set_client_cert(p, cert, key), "client_cert")
    if token is not None:
        check(lib.knsock_send_options_set_token(p, _ffi.cstr(token, "token")), "token")


def _security(tls, ca_file, pin, server_name, client_cert, client_key, token) -> dict:
    return dict(tls=tls, ca_file=ca_file, pin=pin, server_name=server_name,
                client_cert=client_cert, client_key=client_key, token=token)


_SECURITY_DOC = """
    TLS and authentication, keyword-only (docs/security.md): `tls=True` encrypts with TLS 1.3;
    `pin="sha256//..."` (FileServer.tls_pin) or `ca_file=` say how the server is verified (by
    default: the system's trust store and the host name; `server_name=` when the certificate
    names another host). Verification cannot be turned off. `token="NAME:SECRET"` proves who
    the sender is; `client_cert=`/`client_key=` (PEM files) do so by certificate. Any of these
    turns TLS on. A server that fails verification, refuses the credential, or does not speak
    TLS raises `AuthenticationError`; a malformed pin or token raises ValueError.
"""


def _globs(value: Union[None, str, Iterable[str]], what: str) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _port(port: int) -> int:
    if not 0 < int(port) < 65536:
        raise ValueError("port must be 1 to 65535, not %r" % (port,))
    return int(port)


def _raise_for(code: int, err, progress: _Progress) -> None:
    """Raises the failure of a send: a callback's own exception when it aborted the send."""
    exc = take_error(code, err)
    if progress.raised is not None and code in (Result.ABORTED_BY_CALLBACK, Result.CANCELLED):
        raise progress.raised from exc
    raise exc


def send_file(host: str, port: int, filepath: PathLike, show_progress: bool = True,
              progress_callback: Optional[ProgressCallback] = None, chunk_size: int = 4096,
              timeout: Optional[float] = 30, *, connect_timeout: Optional[float] = None,
              legacy: bool = False, compress: bool = False, retries: int = 0,
              retry_delay: Optional[float] = None, skip_unchanged: bool = False,
              checksum: bool = False,
              remote_name: Optional[str] = None, tls: bool = False,
              ca_file: Optional[PathLike] = None, pin: Optional[str] = None,
              server_name: Optional[str] = None, client_cert: Optional[PathLike] = None,
              client_key: Optional[PathLike] = None, token: Optional[str] = None) -> None:
    """Send the file at `filepath` to a file server at `host:port` (kn-sock's `send_file`).

    Returns once the receiver has the file verified (checksum), durable (fsync) and in place
    under its final name; raises otherwise:

    - `FileTransferError` on failure; when the receiver refused the file, `e.peer_reason` is its
      reason (the message its validator raised) and `str(e)` includes it.
    - `ConnectionTimeoutError` when connecting or waiting for the peer takes over `timeout`.
    - Whatever `progress_callback` raised: raising in it aborts the transfer (the receiver keeps
      no file) and the exception reaches the caller.

    Args:
        show_progress: draw a progress bar on stderr, only when stderr is a terminal.
        progress_callback: `progress_callback(bytes_sent, total_bytes, filename)`, called on the
            calling thread once with 0, then after each chunk, the last time with the total.
        chunk_size: the smallest read/write step, in bytes. Steps below 256 KiB are raised to
            256 KiB (so the default 4096 means 256 KiB): progress is reported per step, and a
            4 KiB step would make the per-step overhead, not the network, the limit.
        timeout: seconds a connect, read or write may make no progress (None: the library's
            defaults, 10 s to connect and 30 s idle).

    Keyword-only, beyond kn-sock: `connect_timeout` (seconds, default `timeout`), `legacy` (speak
    kn-sock 0.3's protocol to reach a kn-sock 0.3 server), `compress` (zstd where it pays),
    `retries` and `retry_delay` (seconds, doubling; a resuming receiver continues where its
    data ends), `skip_unchanged` (do not send a file the receiver holds unchanged: by default
    the same size and modification time, rsync's quick check; with `checksum` the same content
    digest), `remote_name` (the name to store it under).
    """
    security = _security(tls, ca_file, pin, server_name, client_cert, client_key, token)
    progress = _Progress(progress_callback, None)
    # Without a callback nothing calls into Python per chunk: the send runs on a library thread
    # while this thread waits in slices, where Ctrl-C can reach it. With one, the blocking call
    # runs it on this thread, as kn-sock did, and Ctrl-C arrives inside it (and aborts).
    with _prepared(progress, progress_callback is not None, show_progress=show_progress,
                   chunk_size=chunk_size, timeout=timeout, connect_timeout=connect_timeout,
                   legacy=legacy, compress=compress, retries=retries, retry_delay=retry_delay,
                   skip_unchanged=skip_unchanged, checksum=checksum, remote_name=remote_name,
                   security=security) as (opts, handle):
        chost, cpath = _ffi.cstr(host, "host"), _ffi.cstr(filepath, "filepath")
        if not handle:
            _send_interruptible(chost, _port(port), cpath, opts)
            return
        err = ctypes.c_void_p()
        code = lib.knsock_send_file(chost, _port(port), cpath, opts.ptr, ctypes.byref(err))
    if code != Result.OK:
        _raise_for(code, err, progress)
    if progress.raised is not None:  # raised during the final call, after the last byte
        raise progress.raised


_WAIT_SLICE_MS = 200


def _send_interruptible(host: bytes, port: int, path: bytes, opts: "_Options") -> None:
    transfer, err = ctypes.c_void_p(), ctypes.c_void_p()
    code = lib.knsock_send_file_async(host, port, path, opts.ptr, _ffi.DONE_CB(), None,
                                      ctypes.byref(transfer), ctypes.byref(err))
    if code != Result.OK:
        raise take_error(code, err)
    try:
        while True:
            code = lib.knsock_transfer_wait(transfer, _WAIT_SLICE_MS)
            if code != Result.IN_PROGRESS:
                break
        if code != Result.OK:
            raise error_from(code, lib.knsock_transfer_error(transfer))
    except BaseException:
        lib.knsock_transfer_cancel(transfer)  # Ctrl-C: the receiver keeps no file
        raise
    finally:
        lib.knsock_transfer_free(transfer)


def send_files(host: str, port: int, paths: Sequence[PathLike], recursive: bool = False,
               include: Union[None, str, Iterable[str]] = None,
               exclude: Union[None, str, Iterable[str]] = None, *, show_progress: bool = True,
               progress_callback: Optional[ProgressCallback] = None,
               batch_progress_callback: Optional[Callable[[BatchProgress], object]] = None,
               chunk_size: int = 4096, timeout: Optional[float] = 30,
               connect_timeout: Optional[float] = None, follow_symlinks: bool = False,
               stop_on_error: bool = False, compress: bool = False, retries: int = 0,
               retry_delay: Optional[float] = None,
               skip_unchanged: bool = False, checksum: bool = False, tls: bool = False,
               ca_file: Optional[PathLike] = None, pin: Optional[str] = None,
               server_name: Optional[str] = None, client_cert: Optional[PathLike] = None,
               client_key: Optional[PathLike] = None,
               token: Optional[str] = None) -> List[FileResult]:
    """Send many files, and directory trees with `recursive`, over one connection, pipelined.

    Returns one `FileResult` per file, in order, whether it was delivered, skipped as unchanged
    (`skip_unchanged`) or failed (`result.error` is then the exception send_file would raise).
    Raises only when nothing could be attempted: a missing path, a walk error, no connection.

    `include` / `exclude` are globs on each file's relative name (`*` also crosses `/`), e.g.
    `include="*.log"`. `progress_callback(bytes_sent, total_bytes, filename)` runs per chunk of
    each file; `batch_progress_callback(BatchProgress)` also reports the whole list's bytes.
    A callback that raises aborts the batch and the exception reaches the caller. The other
    arguments are send_file's.
    """
    cpaths, count = _cpaths(paths)
    progress = _Progress(progress_callback, batch_progress_callback)
    with_callbacks = progress_callback is not None or batch_progress_callback is not None
    report, err = ctypes.c_void_p(), ctypes.c_void_p()
    with _prepared(progress, with_callbacks, show_progress=show_progress,
                   chunk_size=chunk_size, timeout=timeout, connect_timeout=connect_timeout,
                   compress=compress, retries=retries, retry_delay=retry_delay,
                   skip_unchanged=skip_unchanged, checksum=checksum, recursive=recursive,
                   follow_symlinks=follow_symlinks, include=include, exclude=exclude,
                   stop_on_error=stop_on_error, batch=batch_progress_callback is not None,
                   security=_security(tls, ca_file, pin, server_name, client_cert, client_key,
                                      token)) as (opts, _):
        code = lib.knsock_send_files(_ffi.cstr(host, "host"), _port(port), cpaths, count,
                                     opts.ptr, ctypes.byref(report), ctypes.byref(err))
    return _batch_results(code, err, report, progress)


def _batch_results(code, err, report, progress) -> List[FileResult]:
    """A batch call's outcome (a send or a fetch): each file's result from its report, or the
    call's error raised; an exception a progress callback raised is raised after the report was
    read and freed."""
    if code != Result.OK:
        _raise_for(code, err, progress)
    try:
        results = _file_results(report.value)
    finally:
        lib.knsock_batch_report_free(report)
    if progress.raised is not None:
        raise progress.raised
    return results


def _cpaths(paths: Union[PathLike, Sequence[PathLike]]) -> Tuple["ctypes.Array", int]:
    """The paths (or one path) as the C array of strings the batch sends take, and its length."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    raw = [_ffi.cstr(p, "path") for p in paths]
    return (ctypes.c_char_p * max(1, len(raw)))(*raw), len(raw)


def _file_results(report) -> List[FileResult]:
    """The per-file outcomes of a knsock_batch_report (borrowed: the caller frees it)."""
    results = []
    for i in range(lib.knsock_batch_report_count(report)):
        rc = lib.knsock_batch_report_result(report, i)
        results.append(FileResult(
            path=_ffi.text(lib.knsock_batch_report_path(report, i)) or "",
            name=_ffi.text(lib.knsock_batch_report_name(report, i)) or "",
            bytes=lib.knsock_batch_report_bytes(report, i),
            skipped=bool(lib.knsock_batch_report_skipped(report, i)),
            error=None if rc == Result.OK else error_from(
                rc, lib.knsock_batch_report_error(report, i))))
    return results


def _receiver(receiver: Union[str, Address]) -> Address:
    """A receiver given as "host:port" ("[v6]:port" for IPv6) or (host, port), checked."""
    if isinstance(receiver, str):
        host, sep, port = receiver.rpartition(":")
        bracketed = host.startswith("[") and host.endswith("]")
        if not sep or not host or (":" in host and not bracketed):
            raise ValueError("receiver %r: expected \"host:port\" (\"[v6]:port\" for IPv6)"
                             % receiver)
        host = host[1:-1] if bracketed else host
        try:
            return host, _port(int(port))
        except ValueError:
            raise ValueError("receiver %r: the port must be 1 to 65535" % receiver) from None
    try:
        host, port = receiver
    except (TypeError, ValueError):
        raise ValueError("receiver %r: expected (host, port) or \"host:port\"" % (receiver,)
                         ) from None
    if not isinstance(host, str) or not host:
        raise ValueError("receiver %r: the host must be a non-empty str" % (receiver,))
    return host, _port(port)


def send_files_to_many(receivers: Sequence[Union[str, Address]],
                       paths: Sequence[PathLike], recursive: bool = False,
                       include: Union[None, str, Iterable[str]] = None,
                       exclude: Union[None, str, Iterable[str]] = None, *,
                       batch_progress_callback: Optional[Callable[[BatchProgress], object]] = None,
                       chunk_size: int = 4096, timeout: Optional[float] = 30,
                       connect_timeout: Optional[float] = None, follow_symlinks: bool = False,
                       stop_on_error: bool = False, compress: bool = False, retries: int = 0,
                       retry_delay: Optional[float] = None, skip_unchanged: bool = False,
                       checksum: bool = False,
                       tls: bool = False, ca_file: Optional[PathLike] = None,
                       pin: Optional[str] = None, server_name: Optional[str] = None,
                       client_cert: Optional[PathLike] = None,
                       client_key: Optional[PathLike] = None,
                       token: Optional[str] = None) -> List[ReceiverResult]:
    """Send the same files to every receiver at once (fan-out): one connection and one thread
    per receiver, each delivered as send_files would (each receiver decides for itself what to
    accept, skip, resume or take compressed). Each file is read once while the receivers keep
    up with one another; a slow or dead receiver never holds up the others.

    `receivers` are "host:port" strings ("[v6]:port" for IPv6) or (host, port) tuples. Returns
    one `ReceiverResult` per receiver, in order: `error` when it could not be reached at all,
    else `files`, one `FileResult` per file as send_files returns them. Raises only for bad
    arguments (ValueError: no receivers, a malformed receiver) or when nothing could be
    attempted (a missing path, a walk error).

    `batch_progress_callback(BatchProgress)` reports each receiver's progress with
    `BatchProgress.receiver` set to its index in `receivers`; it runs on the receivers' threads,
    several at once, so it must be thread-safe. Raising in it aborts every receiver at its next
    step, and the exception reaches the caller. No progress bar is drawn. The other arguments
    are send_files'.
    """
    if isinstance(receivers, str):
        raise ValueError("receivers must be a list of \"host:port\" or (host, port), not %r"
                         % (receivers,))
    parsed = [_receiver(r) for r in receivers]
    if not parsed:
        raise ValueError("receivers is empty: name at least one \"host:port\"")
    hosts = [_ffi.cstr(host, "host") for host, _ in parsed]
    carray = (_ffi.Receiver * len(parsed))(*(_ffi.Receiver(h, port)
                                             for h, (_, port) in zip(hosts, parsed)))
    cpaths, count = _cpaths(paths)
    progress = _Progress(None, batch_progress_callback)
    report, err = ctypes.c_void_p(), ctypes.c_void_p()
    # The options' own callbacks are not called by the fan-out: progress comes through the
    # multi callback, with the receiver's index.
    with _prepared(progress, batch_progress_callback is not None, show_progress=False,
                   chunk_size=chunk_size, timeout=timeout, connect_timeout=connect_timeout,
                   compress=compress, retries=retries, retry_delay=retry_delay,
                   skip_unchanged=skip_unchanged, checksum=checksum, recursive=recursive,
                   follow_symlinks=follow_symlinks, include=include, exclude=exclude,
                   stop_on_error=stop_on_error,
                   security=_security(tls, ca_file, pin, server_name, client_cert, client_key,
                                      token)) as (opts, handle):
        code = lib.knsock_send_files_multi(
            carray, len(parsed), cpaths, count, opts.ptr,
            _multi_trampoline if handle else _ffi.MULTI_PROGRESS_CB(), handle,
            ctypes.byref(report), ctypes.byref(err))
    if code != Result.OK:
        _raise_for(code, err, progress)
    r = report.value
    try:
        results = []
        for i, receiver in enumerate(parsed):
            rc = lib.knsock_multi_report_result(r, i)
            if rc != Result.OK:  # the error is the report's: copied, not freed
                results.append(ReceiverResult(receiver, error_from(
                    rc, lib.knsock_multi_report_error(r, i)), []))
            else:
                results.append(ReceiverResult(receiver, None,
                                              _file_results(lib.knsock_multi_report_batch(r, i))))
    finally:
        lib.knsock_multi_report_free(report)
    if progress.raised is not None:
        raise progress.raised
    return results


class _AsyncSend:
    """What the completion trampoline needs to wake the awaiting task."""

    def __init__(self, loop: asyncio.AbstractEventLoop, progress: _Progress):
        self.loop = loop
        self.progress = progress
        self.done: "asyncio.Future[tuple]" = loop.create_future()

    def finish(self, code: int, exc: Optional[EasySocketError]) -> None:
        if not self.done.done():
            self.done.set_result((code, exc))


@_ffi.DONE_CB
def _done_trampoline(userdata, code, err):
    try:
        st = _ffi.lookup(userdata)
        if st is None:
            return
        exc = None if code == Result.OK else error_from(code, err)
        st.progress.per_file = None  # nothing calls it any more; drop the reference early
        st.loop.call_soon_threadsafe(st.finish, code, exc)
    except BaseException:  # the loop may be closed; nothing may unwind into C
        pass


async def send_file_async(host: str, port: int, filepath: PathLike, show_progress: bool = True,
                          progress_callback: Optional[ProgressCallback] = None,
                          chunk_size: int = 4096, timeout: Optional[float] = 30, *,
                          connect_timeout: Optional[float] = None, legacy: bool = False,
                          compress: bool = False, retries: int = 0,
                          retry_delay: Optional[float] = None, skip_unchanged: bool = False,
                          checksum: bool = False,
                          remote_name: Optional[str] = None, tls: bool = False,
                          ca_file: Optional[PathLike] = None, pin: Optional[str] = None,
                          server_name: Optional[str] = None,
                          client_cert: Optional[PathLike] = None,
                          client_key: Optional[PathLike] = None,
                          token: Optional[str] = None) -> None:
    """`send_file` for asyncio: the transfer runs on a library thread and never blocks the loop.

    Same arguments, errors and guarantees as send_file. Cancelling the awaiting task cancels the
    transfer (the receiver keeps no file) and raises `asyncio.CancelledError` once it stopped.
    `progress_callback` runs on the transfer's thread, not the loop's; raising in it aborts.
    """
    def start(progress_handle, done_handle, transfer):
        opts = _Options(show_progress=show_progress, chunk_size=chunk_size, timeout=timeout,
                        connect_timeout=connect_timeout, progress_handle=progress_handle,
                        legacy=legacy, compress=compress, retries=retries,
                        retry_delay=retry_delay, skip_unchanged=skip_unchanged,
                        checksum=checksum, remote_name=remote_name,
                        security=_security(tls, ca_file, pin, server_name, client_cert,
                                           client_key, token))
        try:
            err = ctypes.c_void_p()
            code = lib.knsock_send_file_async(_ffi.cstr(host, "host"), _port(port),
                                              _ffi.cstr(filepath, "filepath"), opts.ptr,
                                              _done_trampoline, done_handle,
                                              ctypes.byref(transfer), ctypes.byref(err))
        finally:
            opts.close()
        return code, err

    await _async_transfer(progress_callback, start)


async def _async_transfer(progress_callback, start) -> None:
    """Runs an async transfer (a send or a fetch): `start(progress_handle, done_handle,
    transfer)` builds its options and starts it, returning the C call's code and error object;
    then its end is awaited without blocking the loop (_transfer_ends). An error before the end
    cancels a running transfer and frees it on a thread of its own, so the loop never waits."""
    loop = asyncio.get_running_loop()
    progress = _Progress(progress_callback, None)
    state = _AsyncSend(loop, progress)
    handle = _ffi.register(progress) if progress_callback is not None else 0
    done_handle = _ffi.register(state)
    transfer = ctypes.c_void_p()
    try:
        code, err = start(handle, done_handle, transfer)
        if code != Result.OK:
            raise take_error(code, err)
        await _transfer_ends(transfer, state, progress)
    finally:
        if transfer:  # an error before the end: a running transfer is cancelled and waited for
            threading.Thread(target=lib.knsock_transfer_free, args=(transfer,),
                             daemon=True).start()
        if handle:
            _ffi.unregister(handle)
        _ffi.unregister(done_handle)


for _f in (send_file, send_files, send_files_to_many, send_file_async):
    _f.__doc__ = (_f.__doc__ or "").rstrip() + "\n" + _SECURITY_DOC


async def _transfer_ends(transfer, state, progress) -> None:
    """Waits for an async transfer (a send or a fetch) to end without blocking the loop, frees
    it (`transfer` then holds NULL) and raises what it ended with. A cancelled wait cancels the
    transfer and still waits for its end: once it has ended nothing partial is left."""
    cancelled = False
    while True:
        try:
            code, exc = await asyncio.shield(state.done)
            break
        except asyncio.CancelledError:
            cancelled = True
            lib.knsock_transfer_cancel(transfer)
    # on_done has run; free() waits only for the transfer's thread to return from it.
    lib.knsock_transfer_free(transfer)
    transfer.value = None
    if cancelled:
        raise asyncio.CancelledError()
    if code != Result.OK:
        if progress.raised is not None and code == Result.ABORTED_BY_CALLBACK:
            raise progress.raised from exc
        raise exc
    if progress.raised is not None:
        raise progress.raised
