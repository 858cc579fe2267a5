"""ctypes declarations of the C ABI (include/knsock.h) and the helpers every module shares.

Only this module touches ctypes types; the rest of the package speaks Python. Callbacks cross
from C through the module-level trampolines in the other modules: each receives an integer
handle as `userdata` and looks the Python state up in `_registry`, so no Python object's address
ever reaches C and nothing is freed while C may still call back.
"""
import ctypes
import os
import threading
from ctypes import (CFUNCTYPE, POINTER, c_bool, c_char_p, c_int, c_int64, c_size_t, c_uint16,
                    c_uint32, c_uint64, c_void_p)
from enum import IntEnum
from typing import Any, Dict, Optional

KNSOCK_CONTINUE = 0
ABORT = 1
# Room the library guarantees in a validator's reason buffer (the header says "at least 1025").
REASON_MIN = 1025


class Result(IntEnum):
    """The C ABI's `knsock_result` codes."""

    OK = 0
    INVALID_ARGUMENT = 1
    NOT_FOUND = 2
    CONNECT = 3
    TIMEOUT = 4
    REJECTED = 5
    PROTOCOL = 6
    INTEGRITY = 7
    NO_SPACE = 8
    IO = 9
    CANCELLED = 10
    ABORTED_BY_CALLBACK = 11
    PANIC = 12
    IN_PROGRESS = 13
    AUTH = 14
    STORE = 15
    BUSY = 16


class Overwrite(IntEnum):
    """What a server does when a received file's name exists (`knsock_overwrite`)."""

    REPLACE = 0
    REFUSE = 1
    RENAME = 2


PROGRESS_CB = CFUNCTYPE(c_int, c_void_p, c_char_p, c_uint64, c_uint64)
BATCH_PROGRESS_CB = CFUNCTYPE(c_int, c_void_p, c_char_p, c_size_t, c_size_t, c_uint64, c_uint64,
                              c_uint64, c_uint64)
# `reason` is a writable buffer: declared as a void pointer so ctypes does not copy it.
VALIDATOR_CB = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p, c_size_t)
RECEIVED_CB = CFUNCTYPE(None, c_void_p, c_void_p)
ERROR_CB = CFUNCTYPE(None, c_void_p, c_int, c_char_p, c_char_p)
FINALIZER_CB = CFUNCTYPE(None, c_void_p)
DONE_CB = CFUNCTYPE(None, c_void_p, c_int, c_void_p)
MULTI_PROGRESS_CB = CFUNCTYPE(c_int, c_void_p, c_size_t, c_char_p, c_size_t, c_size_t, c_uint64,
                              c_uint64, c_uint64, c_uint64)


# knsock_send_stream's read callback: bytes written into `buffer`, 0 at the end, READ_ABORT.
READ_CB = CFUNCTYPE(c_size_t, c_void_p, c_void_p, c_size_t)
READ_ABORT = ctypes.c_size_t(-1).value
SIZE_UNKNOWN = (1 << 64) - 1
STORE_OK, STORE_FAILED, STORE_REFUSED, STORE_NOT_FOUND = 0, 1, 2, 3


class StoreObject(ctypes.Structure):
    """`knsock_store_object`: an object as a store sees it."""

    _fields_ = [("size", c_uint64), ("mtime_secs", c_int64), ("mtime_nanos", c_uint32),
                ("mode", c_uint32), ("has_digest", c_bool), ("digest", ctypes.c_uint8 * 16)]


# The store's callbacks; `reason` (the last argument but for abort) is a writable buffer.
STORE_BEGIN_CB = CFUNCTYPE(c_int, c_void_p, c_char_p, POINTER(StoreObject), POINTER(c_void_p),
                           c_void_p)
STORE_WRITE_CB = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p)
STORE_COMMIT_CB = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p)
STORE_ABORT_CB = CFUNCTYPE(None, c_void_p, c_void_p)
STORE_STAT_CB = CFUNCTYPE(c_int, c_void_p, c_char_p, POINTER(StoreObject), c_void_p)


class StoreVtable(ctypes.Structure):
    """`knsock_store_vtable`."""

    _fields_ = [("begin", STORE_BEGIN_CB), ("write", STORE_WRITE_CB),
                ("commit", STORE_COMMIT_CB), ("abort", STORE_ABORT_CB),
                ("stat", STORE_STAT_CB), ("free_userdata", FINALIZER_CB)]


FETCHED_CB = CFUNCTYPE(None, c_void_p, c_char_p, c_char_p, c_uint64, c_bool)
FETCH_ERROR_CB = CFUNCTYPE(None, c_void_p, c_char_p, c_void_p)


class FetchCallbacks(ctypes.Structure):
    """`knsock_fetch_callbacks`: read during the call that takes it."""

    _fields_ = [("progress", PROGRESS_CB), ("fetched", FETCHED_CB), ("error", FETCH_ERROR_CB),
                ("userdata", c_void_p)]


class Receiver(ctypes.Structure):
    """`knsock_receiver`: one receiver of knsock_send_files_multi (the host borrowed for the
    call)."""

    _fields_ = [("host", c_char_p), ("port", c_uint16)]


_P = c_void_p  # every knsock handle is opaque
_PP = POINTER(c_void_p)

_PROTOTYPES = {
    "knsock_version": (c_char_p, []),
    "knsock_result_str": (c_char_p, [c_int]),
    # errors
    "knsock_error_code": (c_int, [_P]),
    "knsock_error_message": (c_char_p, [_P]),
    "knsock_error_peer_reason": (c_char_p, [_P]),
    "knsock_error_peer_code": (c_uint16, [_P]),
    "knsock_error_free": (None, [_P]),
    # send options
    "knsock_send_options_new": (_P, []),
    "knsock_send_options_free": (None, [_P]),
    "knsock_send_options_set_show_progress": (c_int, [_P, c_bool]),
    "knsock_send_options_set_progress_callback": (c_int, [_P, PROGRESS_CB, c_void_p]),
    "knsock_send_options_set_batch_progress_callback": (c_int, [_P, BATCH_PROGRESS_CB,
                                                                c_void_p]),
    "knsock_send_options_set_chunk_size": (c_int, [_P, c_size_t]),
    "knsock_send_options_set_timeout_ms": (c_int, [_P, c_uint64]),
    "knsock_send_options_set_connect_timeout_ms": (c_int, [_P, c_uint64]),
    "knsock_send_options_set_legacy": (c_int, [_P, c_bool]),
    "knsock_send_options_set_retries": (c_int, [_P, c_uint32]),
    "knsock_send_options_set_retry_delay_ms": (c_int, [_P, c_uint64]),
    "knsock_send_options_set_compress": (c_int, [_P, c_bool]),
    "knsock_send_options_set_skip_unchanged": (c_int, [_P, c_bool]),
    "knsock_send_options_set_checksum": (c_int, [_P, c_bool]),
    "knsock_send_options_set_remote_name": (c_int, [_P, c_char_p]),
    "knsock_send_options_set_recursive": (c_int, [_P, c_bool]),
    "knsock_send_options_set_fetch_partial": (c_int, [_P, c_bool]),
    "knsock_send_options_set_fetch_mode_mask": (c_int, [_P, c_uint32]),
    "knsock_send_options_set_follow_symlinks": (c_int, [_P, c_bool]),
    "knsock_send_options_add_include": (c_int, [_P, c_char_p]),
    "knsock_send_options_add_exclude": (c_int, [_P, c_char_p]),
    "knsock_send_options_set_stop_on_error": (c_int, [_P, c_bool]),
    "knsock_send_options_last_error": (_P, [_P]),
    # send options: TLS and tokens
    "knsock_send_options_set_tls": (c_int, [_P, c_bool]),
    "knsock_send_options_set_ca_file": (c_int, [_P, c_char_p]),
    "knsock_send_options_set_pin": (c_int, [_P, c_char_p]),
    "knsock_send_options_set_server_name": (c_int, [_P, c_char_p]),
    "knsock_send_options_set_client_cert": (c_int, [_P, c_char_p, c_char_p]),
    "knsock_send_options_set_token": (c_int, [_P, c_char_p]),
    "knsock_hash_token": (c_int, [c_char_p, POINTER(c_void_p), _PP]),
    "knsock_string_free": (None, [c_void_p]),
    # sending
    "knsock_send_file": (c_int, [c_char_p, c_uint16, c_char_p, _P, _PP]),
    "knsock_send_stream": (c_int, [c_char_p, c_uint16, c_char_p, READ_CB, c_void_p, c_uint64,
                                   _P, _PP]),
    "knsock_server_config_set_store": (c_int, [_P, POINTER(StoreVtable), c_void_p]),
    "knsock_send_files": (c_int, [c_char_p, c_uint16, POINTER(c_char_p), c_size_t, _P, _PP,
                                  _PP]),
    "knsock_send_file_async": (c_int, [c_char_p, c_uint16, c_char_p, _P, DONE_CB, c_void_p, _PP,
                                       _PP]),
    "knsock_send_files_multi": (c_int, [POINTER(Receiver), c_size_t, POINTER(c_char_p),
                                        c_size_t, _P, MULTI_PROGRESS_CB, c_void_p, _PP, _PP]),
    "knsock_fetch_files": (c_int, [c_char_p, c_uint16, POINTER(c_char_p), c_size_t, c_char_p,
                                   _P, POINTER(FetchCallbacks), _PP, _PP]),
    "knsock_fetch_files_async": (c_int, [c_char_p, c_uint16, POINTER(c_char_p), c_size_t,
                                         c_char_p, _P, POINTER(FetchCallbacks), DONE_CB,
                                         c_void_p, _PP, _PP]),
    "knsock_transfer_wait": (c_int, [_P, c_int64]),
    "knsock_transfer_error": (_P, [_P]),
    "knsock_transfer_cancel": (c_int, [_P]),
    "knsock_transfer_progress": (c_int, [_P, POINTER(c_uint64), POINTER(c_uint64)]),
    "knsock_transfer_free": (None, [_P]),
    # batch report
    "knsock_batch_report_count": (c_size_t, [_P]),
    "knsock_batch_report_failed": (c_size_t, [_P]),
    "knsock_batch_report_name": (c_char_p, [_P, c_size_t]),
    "knsock_batch_report_path": (c_char_p, [_P, c_size_t]),
    "knsock_batch_report_bytes": (c_uint64, [_P, c_size_t]),
    "knsock_batch_report_skipped": (c_bool, [_P, c_size_t]),
    "knsock_batch_report_result": (c_int, [_P, c_size_t]),
    "knsock_batch_report_error": (_P, [_P, c_size_t]),
    "knsock_batch_report_free": (None, [_P]),
    # fan-out report
    "knsock_multi_report_count": (c_size_t, [_P]),
    "knsock_multi_report_result": (c_int, [_P, c_size_t]),
    "knsock_multi_report_error": (_P, [_P, c_size_t]),
    "knsock_multi_report_batch": (_P, [_P, c_size_t]),
    "knsock_multi_report_free": (None, [_P]),
    # file info
    "knsock_file_info_name": (c_char_p, [_P]),
    "knsock_file_info_size": (c_uint64, [_P]),
    "knsock_file_info_mtime": (c_int64, [_P]),
    "knsock_file_info_mode": (c_uint32, [_P]),
    "knsock_file_info_peer": (c_char_p, [_P]),
    "knsock_file_info_path": (c_char_p, [_P]),
    "knsock_file_info_identity": (c_char_p, [_P]),
    # server
    "knsock_server_config_new": (_P, []),
    "knsock_server_config_free": (None, [_P]),
    "knsock_server_config_set_directory": (c_int, [_P, c_char_p]),
    "knsock_server_config_set_host": (c_int, [_P, c_char_p]),
    "knsock_server_config_set_port": (c_int, [_P, c_uint16]),
    "knsock_server_config_set_max_connections": (c_int, [_P, c_uint32]),
    "knsock_server_config_set_idle_timeout_ms": (c_int, [_P, c_uint64]),
    "knsock_server_config_set_max_file_size": (c_int, [_P, c_uint64]),
    "knsock_server_config_set_reserve_bytes": (c_int, [_P, c_uint64]),
    "knsock_server_config_set_resume_ttl_ms": (c_int, [_P, c_uint64]),
    "knsock_server_config_set_accept_compression": (c_int, [_P, c_bool]),
    "knsock_server_config_set_overwrite": (c_int, [_P, c_uint32]),
    "knsock_server_config_set_pre_validator": (c_int, [_P, VALIDATOR_CB, c_void_p]),
    "knsock_server_config_set_post_validator": (c_int, [_P, VALIDATOR_CB, c_void_p]),
    "knsock_server_config_set_received_handler": (c_int, [_P, RECEIVED_CB, c_void_p]),
    "knsock_server_config_set_error_handler": (c_int, [_P, ERROR_CB, c_void_p]),
    "knsock_server_config_set_finalizer": (c_int, [_P, FINALIZER_CB, c_void_p]),
    "knsock_server_config_last_error": (_P, [_P]),
    # server: TLS, authentication, limits
    "knsock_server_config_set_tls_cert": (c_int, [_P, c_char_p, c_char_p]),
    "knsock_server_config_set_tls_self_signed": (c_int, [_P, c_char_p]),
    "knsock_server_config_set_tokens_file": (c_int, [_P, c_char_p]),
    "knsock_server_config_set_client_ca": (c_int, [_P, c_char_p]),
    "knsock_server_config_set_confine_identities": (c_int, [_P, c_bool]),
    "knsock_server_config_set_identity_dir": (c_int, [_P, c_char_p, c_char_p]),
    "knsock_server_config_set_allow_plaintext": (c_int, [_P, c_bool]),
    "knsock_server_config_set_allow_legacy": (c_int, [_P, c_bool]),
    "knsock_server_config_set_allow_fetch": (c_int, [_P, c_bool]),
    "knsock_server_config_set_allow_anonymous_fetch": (c_int, [_P, c_bool]),
    "knsock_server_config_set_header_timeout_ms": (c_int, [_P, c_uint64]),
    "knsock_server_config_set_max_decoders": (c_int, [_P, c_uint32]),
    "knsock_server_config_set_hash_budget": (c_int, [_P, c_uint64]),
    "knsock_server_config_set_mode_mask": (c_int, [_P, c_uint32]),
    "knsock_server_config_set_raise_fd_limit": (c_int, [_P, c_bool]),
    # server: S3 storage
    "knsock_server_config_set_s3": (c_int, [_P, c_char_p]),
    "knsock_server_config_set_s3_endpoint": (c_int, [_P, c_char_p, c_bool]),
    "knsock_server_config_set_s3_region": (c_int, [_P, c_char_p]),
    "knsock_server_config_set_s3_credentials": (c_int, [_P, c_char_p, c_char_p, c_char_p]),
    "knsock_server_config_set_s3_ca_file": (c_int, [_P, c_char_p]),
    "knsock_server_tls_pin": (c_char_p, [_P]),
    "knsock_server_start": (c_int, [_P, _PP, _PP]),
    "knsock_server_port": (c_uint16, [_P]),
    "knsock_server_stop": (c_int, [_P]),
    "knsock_server_wait": (c_int, [_P, _PP]),
    "knsock_server_free": (None, [_P]),
}


def _load() -> ctypes.CDLL:
    path = os.environ.get("KNSOCK_LIBRARY") or os.path.join(os.path.dirname(__file__),
                                                            "libknsock.so")
    lib = ctypes.CDLL(path)
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


lib = _load()


def text(raw: Optional[bytes]) -> Optional[str]:
    """A borrowed C string as str (None stays None); bytes that are not UTF-8 are kept as
    surrogate escapes, as os.fsdecode does for paths."""
    return None if raw is None else raw.decode("utf-8", "surrogateescape")


def cstr(value: Any, what: str) -> bytes:
    """A str, bytes or path-like as the NUL-free bytes C expects."""
    raw = os.fsencode(value) if not isinstance(value, str) else value.encode("utf-8",
                                                                             "surrogateescape")
    if b"\0" in raw:
        raise ValueError("%s contains a NUL byte" % what)
    return raw


def result_str(code: int) -> str:
    return text(lib.knsock_result_str(code)) or "unknown result code"


# --- userdata handles: small integers standing for Python objects C may call back into.

_registry: Dict[int, Any] = {}
_registry_lock = threading.Lock()
_next_handle = 1


def register(obj: Any) -> int:
    global _next_handle
    with _registry_lock:
        handle = _next_handle
        _next_handle += 1
        _registry[handle] = obj
    return handle


def lookup(handle: Optional[int]) -> Any:
    with _registry_lock:
        return _registry.get(handle or 0)


def unregister(handle: int) -> None:
    with _registry_lock:
        _registry.pop(handle, None)


def check(code: int, what: str, last_error: Optional[int] = None) -> None:
    """Raises ValueError for a setter the library refused (a bad value, a malformed glob), with
    the detail of `last_error` (the options' or config's `_last_error()`) when given."""
    if code != Result.OK:
        detail = text(lib.knsock_error_message(last_error)) if last_error else None
        raise ValueError("%s: %s" % (what, detail or result_str(code)))
