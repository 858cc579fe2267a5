"""Store: the embedding program's own storage for a FileServer (knsock_server_config_set_store).
Subclass it; the server calls its methods from its worker threads, several files at once."""
import ctypes
from dataclasses import dataclass
from typing import Any, Optional

from . import _ffi


@dataclass
class StoredObject:
    """An object as a Store sees it: what begin() is told, and what stat() returns."""

    size: int
    mtime_secs: int = 0
    mtime_nanos: int = 0
    mode: int = 0o644
    digest: Optional[bytes] = None  # the XXH3-128 of the content (16 bytes); begin() has it


class Store:
    """Received files go into it, only once verified, instead of the FileServer's directory
    (which then only spools content on its way). For one file the server calls, from one of
    its threads and in order: `begin(name, obj)`, which returns any object standing for the
    upload, `write(upload, data)` for each piece, then `commit(upload)`; `abort(upload)` instead
    of (or after a failed) commit. A method that raises fails the file: its sender is told the
    exception's text (code 15, a `StoreError`), nothing is committed, and the server goes on.
    `stat(name)` (optional) returns the StoredObject under `name`, or None: skip-unchanged
    uses it. The methods must be thread-safe; delta transfer does not apply to a store."""

    def begin(self, name: str, obj: StoredObject) -> Any:
        raise NotImplementedError

    def write(self, upload: Any, data: bytes) -> None:
        raise NotImplementedError

    def commit(self, upload: Any) -> None:
        raise NotImplementedError

    def abort(self, upload: Any) -> None:
        raise NotImplementedError

    def stat(self, name: str) -> Optional[StoredObject]:
        return None


def _say(reason: int, exc: BaseException) -> int:
    text = (str(exc) or type(exc).__name__).encode("utf-8", "replace")[:_ffi.REASON_MIN - 1]
    ctypes.memmove(reason, text + b"\0", len(text) + 1)
    return _ffi.STORE_FAILED


def _obj(o: StoredObject) -> _ffi.StoreObject:
    c = _ffi.StoreObject(size=o.size, mtime_secs=o.mtime_secs, mtime_nanos=o.mtime_nanos,
                         mode=o.mode, has_digest=o.digest is not None)
    if o.digest is not None:
        ctypes.memmove(c.digest, bytes(o.digest)[:16], min(16, len(o.digest)))
    return c


@_ffi.STORE_BEGIN_CB
def _begin(userdata, name, obj, handle, reason):
    try:
        o = obj.contents
        upload = _ffi.lookup(userdata).begin(
            _ffi.text(name) or "",
            StoredObject(o.size, o.mtime_secs, o.mtime_nanos, o.mode,
                         bytes(o.digest) if o.has_digest else None))
        handle[0] = _ffi.register(upload)
        return _ffi.STORE_OK
    except BaseException as e:  # never unwind into C
        return _say(reason, e)


@_ffi.STORE_WRITE_CB
def _write(userdata, handle, data, length, reason):
    try:
        _ffi.lookup(userdata).write(_ffi.lookup(handle), ctypes.string_at(data, length))
        return _ffi.STORE_OK
    except BaseException as e:
        return _say(reason, e)


@_ffi.STORE_COMMIT_CB
def _commit(userdata, handle, reason):
    try:
        _ffi.lookup(userdata).commit(_ffi.lookup(handle))
        _ffi.unregister(handle)
        return _ffi.STORE_OK
    except BaseException as e:  # abort follows, and unregisters
        return _say(reason, e)


@_ffi.STORE_ABORT_CB
def _abort(userdata, handle):
    try:
        _ffi.lookup(userdata).abort(_ffi.lookup(handle))
    except BaseException:
        pass
    finally:
        _ffi.unregister(handle)


@_ffi.STORE_STAT_CB
def _stat(userdata, name, out, reason):
    try:
        found = _ffi.lookup(userdata).stat(_ffi.text(name) or "")
        if found is None:
            return _ffi.STORE_NOT_FOUND
        out[0] = _obj(found)
        return _ffi.STORE_OK
    except BaseException as e:
        return _say(reason, e)


@_ffi.FINALIZER_CB
def _free(userdata):
    try:
        _ffi.unregister(userdata)
    except BaseException:
        pass


def set_store(cfg: int, store: Store) -> None:
    """Gives the config `store`; the library unregisters it through `_free` once done."""
    if not isinstance(store, Store):
        raise TypeError("store must be a knsock.Store, not %r" % (type(store).__name__,))
    vtable = _ffi.StoreVtable(_begin, _write, _commit, _abort, _stat, _free)
    handle = _ffi.register(store)
    code = _ffi.lib.knsock_server_config_set_store(cfg, ctypes.byref(vtable), handle)
    if code != _ffi.Result.OK:
        _ffi.unregister(handle)
    _ffi.check(code, "store", _ffi.lib.knsock_server_config_last_error(cfg))
