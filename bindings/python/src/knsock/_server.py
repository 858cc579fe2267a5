"""Receiving: FileServer, start_file_server and start_file_server_async over knsock_server_*."""
import asyncio
import atexit
import ctypes
import inspect
import os
import sys
import threading
import traceback
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

from . import _ffi
from ._store import Store, set_store
from ._ffi import Overwrite, Result, lib
from ._stats import ServerStats, server_stats
from .errors import error_from, take_error

Address = Tuple[str, int]
Handler = Callable[[str, str, Address], object]
ErrorHandler = Callable[[Exception, Optional[Address]], object]
Validator = Callable[[str, str], object]
PreValidator = Callable[[str, int], object]


def _address(peer: Optional[str]) -> Optional[Address]:
    """"ip:port" (or "[v6]:port") as the (host, port) tuple kn-sock's callbacks received."""
    if not peer:
        return None
    host, _, port = peer.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return peer, 0


def _report(where: str) -> None:
    """A callback raised where nothing can receive the exception: print it, as threads do."""
    print("knsock: exception in %s:" % where, file=sys.stderr)
    traceback.print_exc()


@dataclass
class ReceivedFile:
    """A stored file as `handler_info` receives it: kn-sock's handler arguments and, beyond
    them, who sent it."""

    filename: str  # the name it was stored under (with confinement, beneath the identity's dir)
    filepath: str  # where it is
    addr: Optional[Address]  # the sender's (ip, port)
    size: int
    identity: Optional[str]  # the identity the sender proved (token name, certificate CN)


class _Callbacks:
    """One server's Python callbacks, looked up by the trampolines through its handle."""

    def __init__(self, handler, error_handler, validator, validator_before, handler_info=None):
        self.handler_info = handler_info
        self.handler = handler
        self.error_handler = error_handler
        self.validator = validator
        self.validator_before = validator_before

    def error(self, exc: Exception, addr: Optional[Address]) -> None:
        if self.error_handler is None:
            return
        try:
            self.error_handler(exc, addr)
        except BaseException:
            _report("error_handler")


def _info(ptr) -> Tuple[str, Optional[str], int, Optional[Address]]:
    return (_ffi.text(lib.knsock_file_info_name(ptr)) or "",
            _ffi.text(lib.knsock_file_info_path(ptr)),
            lib.knsock_file_info_size(ptr),
            _address(_ffi.text(lib.knsock_file_info_peer(ptr))))


def _refuse(exc: BaseException, reason, reason_len: int) -> int:
    """Writes the exception's message, cut to the buffer at a character boundary, as the reason
    the sender receives."""
    msg = str(exc) or type(exc).__name__
    raw = msg.encode("utf-8", "replace")[:max(0, reason_len - 1)]
    raw = raw.decode("utf-8", "ignore").encode("utf-8")
    ctypes.memmove(reason, raw, len(raw))
    ctypes.memset(reason + len(raw), 0, 1)
    return 1


@_ffi.VALIDATOR_CB
def _pre_validator_trampoline(userdata, info, reason, reason_len):
    try:
        cb = _ffi.lookup(userdata)
        if cb is None or cb.validator_before is None:
            return 0
        name, _, size, _ = _info(info)
        try:
            cb.validator_before(name, size)
            return 0
        except BaseException as e:
            return _refuse(e, reason, reason_len)
    except BaseException:
        return 1


@_ffi.VALIDATOR_CB
def _post_validator_trampoline(userdata, info, reason, reason_len):
    try:
        cb = _ffi.lookup(userdata)
        if cb is None or cb.validator is None:
            return 0
        name, path, _, _ = _info(info)
        try:
            cb.validator(name, path)
            return 0
        except BaseException as e:
            return _refuse(e, reason, reason_len)
    except BaseException:
        return 1


@_ffi.RECEIVED_CB
def _received_trampoline(userdata, info):
    try:
        cb = _ffi.lookup(userdata)
        if cb is None or (cb.handler is None and cb.handler_info is None):
            return
        name, path, size, addr = _info(info)
        try:
            if cb.handler is not None:
                cb.handler(name, path, addr)
            if cb.handler_info is not None:
                identity = _ffi.text(lib.knsock_file_info_identity(info))
                cb.handler_info(ReceivedFile(name, path or "", addr, size, identity))
        except Exception as e:  # the file is stored: tell the error handler, as C++ does
            if cb.error_handler is None:
                _report("handler")
            else:
                cb.error(e, addr)
    except BaseException:
        pass


@_ffi.ERROR_CB
def _error_trampoline(userdata, code, message, peer):
    try:
        cb = _ffi.lookup(userdata)
        if cb is None or cb.error_handler is None:
            return
        msg = _ffi.text(message) or _ffi.result_str(code)
        exc = error_from(code, None)
        exc.args = (msg,)
        exc.message = msg
        cb.error(exc, _address(_ffi.text(peer)))
    except BaseException:
        pass


@_ffi.FINALIZER_CB
def _finalizer_trampoline(userdata):
    try:
        _ffi.unregister(userdata)
    except BaseException:
        pass


PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def _set_security(cfg, *, tls_cert, tls_key, tls_self_signed, tokens_file, client_ca, confine,
                  identity_dirs, allow_plaintext, allow_legacy, header_timeout, max_decoders,
                  hash_budget, mode_mask, raise_fd_limit, allow_fetch=False,
                  allow_anonymous_fetch=False) -> None:
    """FileServer's TLS, authentication and limit settings on knsock_server_config `cfg`; a
    refused value raises ValueError with the library's reason."""
    def c(code: int, what: str) -> None:
        _ffi.check(code, what, lib.knsock_server_config_last_error(cfg))

    if tls_cert is not None or tls_key is not None:
        cert = None if tls_cert is None else _ffi.cstr(tls_cert, "tls_cert")
        key = None if tls_key is None else _ffi.cstr(tls_key, "tls_key")
        c(lib.knsock_server_config_set_tls_cert(cfg, cert, key), "tls_cert")
    if tls_self_signed is not None:
        c(lib.knsock_server_config_set_tls_self_signed(
            cfg, _ffi.cstr(tls_self_signed, "tls_self_signed")), "tls_self_signed")
    if tokens_file is not None:
        c(lib.knsock_server_config_set_tokens_file(cfg, _ffi.cstr(tokens_file, "tokens_file")),
          "tokens_file")
    if client_ca is not None:
        c(lib.knsock_server_config_set_client_ca(cfg, _ffi.cstr(client_ca, "client_ca")),
          "client_ca")
    c(lib.knsock_server_config_set_confine_identities(cfg, bool(confine)), "confine")
    for identity, subdir in (identity_dirs or {}).items():
        c(lib.knsock_server_config_set_identity_dir(cfg, _ffi.cstr(identity, "identity"),
                                                    _ffi.cstr(subdir, "identity_dirs")),
          "identity_dirs")
    c(lib.knsock_server_config_set_allow_plaintext(cfg, bool(allow_plaintext)),
      "allow_plaintext")
    c(lib.knsock_server_config_set_allow_legacy(cfg, bool(allow_legacy)), "allow_legacy")
    c(lib.knsock_server_config_set_allow_fetch(cfg, bool(allow_fetch)), "allow_fetch")
    c(lib.knsock_server_config_set_allow_anonymous_fetch(cfg, bool(allow_anonymous_fetch)),
      "allow_anonymous_fetch")
    if header_timeout is not None:
        c(lib.knsock_server_config_set_header_timeout_ms(cfg, max(0, int(header_timeout * 1000))),
          "header_timeout")
    if max_decoders is not None:
        if not 0 <= max_decoders < 2 ** 32:
            raise ValueError("max_decoders must be 0 to 4294967295")
        c(lib.knsock_server_config_set_max_decoders(cfg, max_decoders), "max_decoders")
    if hash_budget is not None:
        c(lib.knsock_server_config_set_hash_budget(cfg, hash_budget), "hash_budget")
    if mode_mask is not None:
        if not 0 <= mode_mask < 2 ** 32:
            raise ValueError("mode_mask must be at most 0o7777")
        c(lib.knsock_server_config_set_mode_mask(cfg, mode_mask), "mode_mask")
    c(lib.knsock_server_config_set_raise_fd_limit(cfg, bool(raise_fd_limit)), "raise_fd_limit")


def _set_s3(cfg, *, s3, s3_endpoint, s3_path_style, s3_region, s3_credentials,
            s3_ca_file) -> None:
    """FileServer's S3 settings on knsock_server_config `cfg`, only those given: the adjusters
    refuse to run before knsock_server_config_set_s3, so one without `s3` raises ValueError with
    the library's reason. Left unset, they come from the AWS_* environment at start."""
    def c(code: int, what: str) -> None:
        _ffi.check(code, what, lib.knsock_server_config_last_error(cfg))

    if s3 is not None:
        c(lib.knsock_server_config_set_s3(cfg, _ffi.cstr(s3, "s3")), "s3")
    if s3_endpoint is not None:
        c(lib.knsock_server_config_set_s3_endpoint(cfg, _ffi.cstr(s3_endpoint, "s3_endpoint"),
                                                   bool(s3_path_style)), "s3_endpoint")
    elif s3_path_style:
        raise ValueError("s3_path_style: needs s3_endpoint (path-style URLs are built on it)")
    if s3_region is not None:
        c(lib.knsock_server_config_set_s3_region(cfg, _ffi.cstr(s3_region, "s3_region")),
          "s3_region")
    if s3_credentials is not None:
        if isinstance(s3_credentials, (str, bytes)) or len(s3_credentials) not in (2, 3):
            raise ValueError("s3_credentials must be (access_key, secret_key) or "
                             "(access_key, secret_key, session_token)")
        key, secret, token = (tuple(s3_credentials) + (None,))[:3]
        c(lib.knsock_server_config_set_s3_credentials(
            cfg, _ffi.cstr(key, "s3_credentials"), _ffi.cstr(secret, "s3_credentials"),
            None if token is None else _ffi.cstr(token, "s3_credentials")), "s3_credentials")
    if s3_ca_file is not None:
        c(lib.knsock_server_config_set_s3_ca_file(cfg, _ffi.cstr(s3_ca_file, "s3_ca_file")),
          "s3_ca_file")


def hash_token(secret: str) -> str:
    """The hash of a token's secret for a server's `tokens_file`: write the line
    `NAME:<hash>` and chmod 600 the file. Salted PBKDF2, so two calls give different hashes."""
    out, err = ctypes.c_void_p(), ctypes.c_void_p()
    code = lib.knsock_hash_token(_ffi.cstr(secret, "secret"), ctypes.byref(out),
                                 ctypes.byref(err))
    if code != Result.OK:
        raise take_error(code, err)
    try:
        return ctypes.string_at(out.value).decode()
    finally:
        lib.knsock_string_free(out)


_live: "weakref.WeakSet[FileServer]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    # Library threads must not call into an interpreter that is shutting down.
    for server in list(_live):
        server.close()


class FileServer:
    """A running file server, started at once, serving on library threads (non-blocking).

    Use it as a context manager, or call `stop()` / `close()`; `port` is the real port (useful
    with port 0). The callbacks are start_file_server's; they run on the server's worker
    threads, possibly several at once, so they must be thread-safe.

    With `s3="s3://BUCKET/PREFIX"` received files are stored in that bucket (docs/storage.md)
    and `save_dir` only spools their content on its way there; a handler's `filepath` is then
    "s3://BUCKET/PREFIX/NAME". `s3_endpoint` ("http(s)://host[:port]") with `s3_path_style`
    (MinIO, SeaweedFS), `s3_region`, `s3_credentials` ((key, secret) or (key, secret, token))
    and `s3_ca_file` (PEM, for an https endpoint) need `s3`; left out, they come from the
    AWS_* environment. The bucket is opened at start: an unreachable store or refused keys
    raise `StoreError`, and a file the store fails later reaches the error handler as one.

    With `store=` (a `knsock.Store`), received files go into the program's own storage
    instead, only once verified; `save_dir` spools their content.
    """

    def __init__(self, port: int, save_dir: Union[str, "os.PathLike[str]"],
                 host: str = "0.0.0.0", handler: Optional[Handler] = None,
                 error_handler: Optional[ErrorHandler] = None,
                 validator: Optional[Validator] = None, *,
                 validator_before: Optional[PreValidator] = None,
                 max_connections: Optional[int] = None, idle_timeout: Optional[float] = None,
                 max_file_size: Optional[int] = None, reserve_bytes: Optional[int] = None,
                 resume_ttl: Optional[float] = None, accept_compression: bool = True,
                 overwrite: Union[str, int] = "replace",
                 handler_info: Optional[Callable[[ReceivedFile], object]] = None,
                 tls_cert: Optional[PathLike] = None, tls_key: Optional[PathLike] = None,
                 tls_self_signed: Optional[PathLike] = None,
                 tokens_file: Optional[PathLike] = None, client_ca: Optional[PathLike] = None,
                 confine: bool = False, identity_dirs: Optional[Dict[str, str]] = None,
                 allow_plaintext: bool = False, allow_legacy: bool = False,
                 allow_fetch: bool = False, allow_anonymous_fetch: bool = False,
                 header_timeout: Optional[float] = None, max_decoders: Optional[int] = None,
                 hash_budget: Optional[int] = None, mode_mask: Optional[int] = None,
                 raise_fd_limit: bool = True, s3: Optional[str] = None,
                 s3_endpoint: Optional[str] = None, s3_path_style: bool = False,
                 s3_region: Optional[str] = None,
                 s3_credentials: Optional[Sequence[str]] = None,
                 s3_ca_file: Optional[PathLike] = None, store: Optional[Store] = None):
        self._ptr = None
        self._cond = threading.Condition()
        self._busy = 0
        callbacks = _Callbacks(handler, error_handler, validator, validator_before,
                               handler_info)
        handle = _ffi.register(callbacks)
        cfg = lib.knsock_server_config_new()
        if not cfg:
            _ffi.unregister(handle)
            raise MemoryError("knsock_server_config_new")
        try:
            c = _ffi.check
            # From here the finalizer owns the handle: it runs once no server needs it.
            c(lib.knsock_server_config_set_finalizer(cfg, _finalizer_trampoline, handle),
              "finalizer")
            c(lib.knsock_server_config_set_directory(cfg, _ffi.cstr(save_dir, "save_dir")),
              "save_dir")
            c(lib.knsock_server_config_set_host(cfg, _ffi.cstr(host, "host")), "host")
            if not 0 <= int(port) < 65536:
                raise ValueError("port must be 0 to 65535, not %r" % (port,))
            c(lib.knsock_server_config_set_port(cfg, int(port)), "port")
            if max_connections is not None:
                c(lib.knsock_server_config_set_max_connections(cfg, max_connections),
                  "max_connections")
            if idle_timeout is not None:
                c(lib.knsock_server_config_set_idle_timeout_ms(
                    cfg, max(1, int(idle_timeout * 1000))), "idle_timeout")
            if max_file_size is not None:
                c(lib.knsock_server_config_set_max_file_size(cfg, max_file_size),
                  "max_file_size")
            if reserve_bytes is not None:
                c(lib.knsock_server_config_set_reserve_bytes(cfg, reserve_bytes),
                  "reserve_bytes")
            if resume_ttl is not None:
                c(lib.knsock_server_config_set_resume_ttl_ms(cfg, int(resume_ttl * 1000)),
                  "resume_ttl")
            c(lib.knsock_server_config_set_accept_compression(cfg, accept_compression),
              "accept_compression")
            if isinstance(overwrite, str):
                overwrite = Overwrite[overwrite.upper()]
            c(lib.knsock_server_config_set_overwrite(cfg, int(overwrite)), "overwrite")
            if validator_before is not None:
                c(lib.knsock_server_config_set_pre_validator(cfg, _pre_validator_trampoline,
                                                             handle), "validator_before")
            if validator is not None:
                c(lib.knsock_server_config_set_post_validator(cfg, _post_validator_trampoline,
                                                              handle), "validator")
            _set_security(cfg, tls_cert=tls_cert, tls_key=tls_key,
                          tls_self_signed=tls_self_signed, tokens_file=tokens_file,
                          client_ca=client_ca, confine=confine, identity_dirs=identity_dirs,
                          allow_plaintext=allow_plaintext, allow_legacy=allow_legacy,
                          allow_fetch=allow_fetch, allow_anonymous_fetch=allow_anonymous_fetch,
                          header_timeout=header_timeout, max_decoders=max_decoders,
                          hash_budget=hash_budget, mode_mask=mode_mask,
                          raise_fd_limit=raise_fd_limit)
            _set_s3(cfg, s3=s3, s3_endpoint=s3_endpoint, s3_path_style=s3_path_style,
                    s3_region=s3_region, s3_credentials=s3_credentials, s3_ca_file=s3_ca_file)
            if store is not None:
                set_store(cfg, store)
            if handler is not None or handler_info is not None:
                c(lib.knsock_server_config_set_received_handler(cfg, _received_trampoline,
                                                                handle), "handler")
            if error_handler is not None:
                c(lib.knsock_server_config_set_error_handler(cfg, _error_trampoline, handle),
                  "error_handler")
            server = ctypes.c_void_p()
            err = ctypes.c_void_p()
            code = lib.knsock_server_start(cfg, ctypes.byref(server), ctypes.byref(err))
            if code != Result.OK:
                raise take_error(code, err)
            self._ptr = server.value
        finally:
            lib.knsock_server_config_free(cfg)  # runs the finalizer when no server started
        self.host = host
        self.port: int = lib.knsock_server_port(self._ptr)
        # The pin of the server's TLS key ("sha256//..."), for senders' `pin=`; None without TLS.
        self.tls_pin: Optional[str] = _ffi.text(lib.knsock_server_tls_pin(self._ptr))
        _live.add(self)

    def _enter(self):
        """The handle for one call, counted so close() frees it only once no call is inside."""
        with self._cond:
            if self._ptr:
                self._busy += 1
            return self._ptr

    def _leave(self) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    def stop(self) -> None:
        """Stop accepting and abort uploads in flight (their senders get an error, no partial
        file stays), then wait for the workers. Safe from any thread and from a callback."""
        ptr = self._enter()
        if ptr:
            try:
                lib.knsock_server_stop(ptr)
            finally:
                self._leave()

    def wait(self) -> None:
        """Block until the server stops (by stop() or close() from another thread, or from a
        callback)."""
        ptr = self._enter()
        if not ptr:
            return
        try:
            err = ctypes.c_void_p()
            code = lib.knsock_server_wait(ptr, ctypes.byref(err))
        finally:
            self._leave()
        if code != Result.OK:
            raise take_error(code, err)

    def close(self) -> None:
        """Stop and free the server; other threads in wait() return. Not from the server's own
        callbacks (use stop() there)."""
        with self._cond:
            ptr, self._ptr = self._ptr, None
        if not ptr:
            return
        lib.knsock_server_stop(ptr)
        with self._cond:
            while self._busy:
                self._cond.wait()
        lib.knsock_server_free(ptr)
        _live.discard(self)

    def stats(self) -> ServerStats:
        """What the server has done since it started and the use of its resources now (all
        zero once closed). Safe from any thread and from a callback."""
        ptr = self._enter()
        if not ptr:
            return ServerStats()
        try:
            return server_stats(ptr)
        finally:
            self._leave()

    @property
    def running(self) -> bool:
        return self._ptr is not None

    def __enter__(self) -> "FileServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except BaseException:
            pass

    def __repr__(self) -> str:
        return "<knsock.FileServer %s:%d%s>" % (self.host, self.port,
                                                "" if self._ptr else " closed")


def start_file_server(port: int, save_dir: Union[str, "os.PathLike[str]"],
                      host: str = "0.0.0.0", handler: Optional[Handler] = None,
                      error_handler: Optional[ErrorHandler] = None,
                      validator: Optional[Validator] = None, show_progress: bool = True, *,
                      validator_before: Optional[PreValidator] = None,
                      ready: Optional[Callable[[FileServer], object]] = None,
                      **options: Any) -> None:
    """Serve files into `save_dir` on `host:port` until interrupted (kn-sock's
    `start_file_server`). Ctrl-C stops it cleanly: uploads in flight are aborted, no partial or
    temporary file stays, and the KeyboardInterrupt then propagates.

    Every file is verified (checksum), fsynced and renamed into place; names never leave
    `save_dir`. kn-sock 0.3 senders are accepted on the same port.

    Args:
        handler: `handler(filename, filepath, addr)` after each verified, stored file; `addr`
            is the sender's `(ip, port)`.
        error_handler: `error_handler(error, addr)` for each failed upload (`error` is a
            FileTransferError; `addr` None when no connection was involved), and for an
            exception raised by `handler`.
        validator: `validator(filename, filepath)` on the verified temporary file before it is
            put in place; raising refuses the file and the exception's message is the reason
            the sender gets.
        show_progress: accepted for kn-sock compatibility; the server draws no bar.
        validator_before: beyond kn-sock, `validator_before(filename, filesize)` before any
            data flows; raising refuses the file the same way.
        ready: called with the FileServer once it listens (e.g. to learn the port given 0).
        options: FileServer's (`max_connections`, `idle_timeout`, `max_file_size`,
            `reserve_bytes`, `resume_ttl`, `accept_compression`, `overwrite`, `handler_info`,
            and the TLS and authentication settings: `tls_self_signed`, `tls_cert`/`tls_key`,
            `tokens_file`, `client_ca`, `confine`, `identity_dirs`, `allow_plaintext`,
            `allow_legacy`; fetches (restores: `fetch_files`) with `allow_fetch`, for
            authenticated identities from what each may write, and, UNSAFE, for anonymous
            clients with `allow_anonymous_fetch`; the limits `header_timeout`, `max_decoders`, `hash_budget`,
            `mode_mask`, `raise_fd_limit`; S3 storage, where `save_dir` is then the spool:
            `s3`, `s3_endpoint`, `s3_path_style`, `s3_region`, `s3_credentials`,
            `s3_ca_file`).

    Callbacks run on the server's worker threads, possibly several at once.
    """
    del show_progress
    with FileServer(port, save_dir, host, handler, error_handler, validator,
                    validator_before=validator_before, **options) as server:
        print("[SYNC] File server listening on %s:%d..." % (host, server.port), flush=True)
        if ready is not None:
            ready(server)
        if threading.current_thread() is not threading.main_thread():
            server.wait()
            return
        # knsock_server_wait blocks in C, where Ctrl-C cannot reach: wait on a thread and keep
        # the main thread in an interruptible wait.
        done = threading.Event()
        failure = []

        def waiter():
            try:
                server.wait()
            except BaseException as e:
                failure.append(e)
            finally:
                done.set()

        threading.Thread(target=waiter, name="knsock-server-wait", daemon=True).start()
        try:
            done.wait()
        except BaseException:
            server.stop()
            while not done.is_set():
                try:
                    done.wait()
                except KeyboardInterrupt:  # the stop is under way and bounded
                    pass
            raise
        if failure:
            raise failure[0]


def _on_loop(loop: asyncio.AbstractEventLoop, fn: Optional[Callable]) -> Optional[Callable]:
    """A coroutine function as a plain callable for a worker thread: it runs on `loop` and the
    worker waits for it, so its exception still refuses (validators) or is reported."""
    if fn is None or not inspect.iscoroutinefunction(fn):
        return fn

    def call(*args):
        return asyncio.run_coroutine_threadsafe(fn(*args), loop).result()

    return call


async def start_file_server_async(port: int, save_dir: Union[str, "os.PathLike[str]"],
                                  host: str = "0.0.0.0", handler: Optional[Callable] = None,
                                  error_handler: Optional[Callable] = None,
                                  validator: Optional[Callable] = None,
                                  show_progress: bool = True, *,
                                  validator_before: Optional[Callable] = None,
                                  ready: Optional[Callable[[FileServer], object]] = None,
                                  **options: Any) -> None:
    """start_file_server for asyncio: serves until the awaiting task is cancelled, never
    blocking the event loop (the server runs on library threads).

    Callbacks may be plain functions (run on worker threads) or coroutine functions (run on
    this loop while the worker waits for them). Cancelling the task stops the server cleanly
    (uploads in flight aborted, no partial file) and raises asyncio.CancelledError.
    """
    del show_progress
    loop = asyncio.get_running_loop()
    server = FileServer(port, save_dir, host, _on_loop(loop, handler),
                        _on_loop(loop, error_handler), _on_loop(loop, validator),
                        validator_before=_on_loop(loop, validator_before), **options)
    waited = threading.Event()

    def wait():
        try:
            server.wait()
        finally:
            waited.set()

    def shutdown():
        server.stop()
        waited.wait()
        server.close()

    try:
        print("[ASYNC] File server listening on %s:%d..." % (host, server.port), flush=True)
        if ready is not None:
            ready(server)
        await _in_thread(loop, wait)
    finally:
        # stop() waits for the workers, which may be waiting for this loop (coroutine
        # callbacks): stop on another thread and keep the loop running until it is done.
        finished = _in_thread(loop, shutdown)
        while not finished.done():
            try:
                await asyncio.shield(finished)
            except asyncio.CancelledError:
                pass


def _in_thread(loop: asyncio.AbstractEventLoop, fn: Callable[[], object]) -> "asyncio.Future":
    """Runs fn on a thread of its own (not the loop's executor, which may be small or busy)
    and returns a future of its end."""
    fut = loop.create_future()

    def finish(exc):
        if not fut.done():
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(exc)

    def run():
        exc = None
        try:
            fn()
        except BaseException as e:
            exc = e
        try:
            loop.call_soon_threadsafe(finish, exc)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    threading.Thread(target=run, name="knsock-server", daemon=True).start()
    return fut
