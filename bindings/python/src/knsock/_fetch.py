"""Fetching files back from a receiver (a restore): fetch_files / fetch_file, blocking, and
fetch_files_async / fetch_file_async for asyncio, over knsock_fetch_files(_async)."""
import ctypes
from typing import Iterable, List, Optional, Sequence, Union

from . import _ffi
from ._ffi import lib
from ._send import (_SECURITY_DOC, FileResult, PathLike, ProgressCallback, _async_transfer,
                    _batch_results, _done_trampoline, _Options, _Progress, _progress_trampoline,
                    _port, _security)


def _names(remotes: Union[str, Sequence[str]]) -> "tuple":
    if isinstance(remotes, str):
        remotes = [remotes]
    raw = [_ffi.cstr(r, "remote name") for r in remotes]
    return (ctypes.c_char_p * max(1, len(raw)))(*raw), len(raw)


def _options(*, recursive, include, exclude, timeout, connect_timeout, retries,
             retry_delay, skip_unchanged, checksum, partial, mode_mask, security) -> _Options:
    # The progress callback goes in knsock_fetch_callbacks, not on the options.
    if not isinstance(mode_mask, int) or not 0 <= mode_mask <= 0o7777:
        raise ValueError("mode_mask must be an int from 0 to 0o7777, not %r" % (mode_mask,))
    opts = _Options(show_progress=False, chunk_size=4096, timeout=timeout,
                    connect_timeout=connect_timeout, progress_handle=0, retries=retries,
                    retry_delay=retry_delay, skip_unchanged=skip_unchanged, checksum=checksum,
                    recursive=recursive, include=include or (), exclude=exclude or (),
                    security=security)
    try:
        _ffi.check(lib.knsock_send_options_set_fetch_partial(opts.ptr, bool(partial)), "partial")
        _ffi.check(lib.knsock_send_options_set_fetch_mode_mask(opts.ptr, mode_mask), "mode_mask")
    except BaseException:
        opts.close()
        raise
    return opts


def _callbacks(handle: int) -> _ffi.FetchCallbacks:
    cbs = _ffi.FetchCallbacks()
    if handle:
        cbs.progress = _progress_trampoline
        cbs.userdata = handle
    return cbs


def fetch_files(host: str, port: int, remotes: Union[str, Sequence[str]], dest: PathLike,
                recursive: bool = False, include: Union[None, str, Iterable[str]] = None,
                exclude: Union[None, str, Iterable[str]] = None, *,
                progress_callback: Optional[ProgressCallback] = None,
                timeout: Optional[float] = 30, connect_timeout: Optional[float] = None,
                retries: int = 0, retry_delay: Optional[float] = None,
                skip_unchanged: bool = False, checksum: bool = False, tls: bool = False,
                ca_file: Optional[PathLike] = None, pin: Optional[str] = None,
                server_name: Optional[str] = None, client_cert: Optional[PathLike] = None,
                client_key: Optional[PathLike] = None,
                token: Optional[str] = None, partial: bool = False,
                mode_mask: int = 0o755) -> List[FileResult]:
    """Fetch `remotes` (names as they were sent: files, or directories with `recursive`) from a
    file server that serves fetches (`allow_fetch=True`) into the directory `dest` (created if
    missing). A name's last component and what lies beneath it land under `dest`.

    Each file is verified, given its modification time and its mode (within 0o755), made
    durable and renamed into place; every name the server lists is checked, so none lands
    outside `dest`, and a failed file leaves nothing under its name.

    Returns one `FileResult` per listed file (`path`: where it is now; `skipped`: it was already
    here unchanged, with `skip_unchanged`), then one per requested name that gave nothing
    (`path` empty, `error` a FileTransferError). Raises only when nothing could be listed: no
    connection, authentication, a server that does not serve fetches or refuses this client
    (`AuthenticationError`). `progress_callback(bytes_received, total_bytes, name)` runs on the
    calling thread after each piece; raising in it aborts and the exception reaches the caller.
    `include` / `exclude` are globs on the names as listed. `partial` keeps the data of a file
    whose fetch was cut short hidden beside its name (`.knsock-partial-…`), so a retry or a
    later fetch resumes it; `mode_mask` is the permission bits a fetched file may keep (at most
    0o7777). The other arguments are send_files'.
    """
    names, count = _names(remotes)
    progress = _Progress(progress_callback, None)
    handle = _ffi.register(progress) if progress_callback is not None else 0
    report, err = ctypes.c_void_p(), ctypes.c_void_p()
    try:
        opts = _options(recursive=recursive, include=include, exclude=exclude,
                        timeout=timeout, connect_timeout=connect_timeout, retries=retries,
                        retry_delay=retry_delay, skip_unchanged=skip_unchanged,
                        checksum=checksum, partial=partial, mode_mask=mode_mask,
                        security=_security(tls, ca_file, pin, server_name, client_cert,
                                           client_key, token))
        try:
            cbs = _callbacks(handle)
            code = lib.knsock_fetch_files(_ffi.cstr(host, "host"), _port(port), names, count,
                                          _ffi.cstr(dest, "dest"), opts.ptr, ctypes.byref(cbs),
                                          ctypes.byref(report), ctypes.byref(err))
        finally:
            opts.close()
    finally:
        if handle:
            _ffi.unregister(handle)
    return _batch_results(code, err, report, progress)


def fetch_file(host: str, port: int, remote: str, dest: PathLike, **options) -> List[FileResult]:
    """fetch_files() of one name; raises the first failure (a file that failed, or the name
    giving nothing), else returns the results."""
    results = fetch_files(host, port, [remote], dest, **options)
    for r in results:
        if r.error is not None:
            raise r.error
    return results


async def fetch_files_async(host: str, port: int, remotes: Union[str, Sequence[str]],
                            dest: PathLike, recursive: bool = False,
                            include: Union[None, str, Iterable[str]] = None,
                            exclude: Union[None, str, Iterable[str]] = None, *,
                            progress_callback: Optional[ProgressCallback] = None,
                            timeout: Optional[float] = 30,
                            connect_timeout: Optional[float] = None, retries: int = 0,
                            retry_delay: Optional[float] = None, skip_unchanged: bool = False,
                            checksum: bool = False, tls: bool = False,
                            ca_file: Optional[PathLike] = None, pin: Optional[str] = None,
                            server_name: Optional[str] = None,
                            client_cert: Optional[PathLike] = None,
                            client_key: Optional[PathLike] = None,
                            token: Optional[str] = None, partial: bool = False,
                            mode_mask: int = 0o755) -> None:
    """fetch_files() for asyncio: the fetch runs on a library thread and never blocks the loop.
    Returns once every listed file was fetched or found unchanged and every name gave something;
    raises the first failure otherwise. Cancelling the awaiting task cancels the fetch (nothing
    partial is left) and raises `asyncio.CancelledError` once it stopped. `progress_callback`
    runs on the fetch's thread, not the loop's; raising in it aborts."""
    names, count = _names(remotes)

    def start(progress_handle, done_handle, transfer):
        opts = _options(recursive=recursive, include=include, exclude=exclude,
                        timeout=timeout, connect_timeout=connect_timeout, retries=retries,
                        retry_delay=retry_delay, skip_unchanged=skip_unchanged,
                        checksum=checksum, partial=partial, mode_mask=mode_mask,
                        security=_security(tls, ca_file, pin, server_name, client_cert,
                                           client_key, token))
        try:
            err = ctypes.c_void_p()
            cbs = _callbacks(progress_handle)
            code = lib.knsock_fetch_files_async(
                _ffi.cstr(host, "host"), _port(port), names, count, _ffi.cstr(dest, "dest"),
                opts.ptr, ctypes.byref(cbs), _done_trampoline, done_handle,
                ctypes.byref(transfer), ctypes.byref(err))
        finally:
            opts.close()
        return code, err

    await _async_transfer(progress_callback, start)


async def fetch_file_async(host: str, port: int, remote: str, dest: PathLike, **options) -> None:
    """fetch_files_async() of one name."""
    await fetch_files_async(host, port, [remote], dest, **options)


for _f in (fetch_files, fetch_files_async):
    _f.__doc__ = (_f.__doc__ or "").rstrip() + "\n" + _SECURITY_DOC
