//! `knsock_server`: a running server, started from a `knsock_server_config`.

use std::ffi::{c_char, CString};

use super::convert::to_cstring;
use super::error::knsock_error;
use super::macros::{ffi_boundary, free_box, to_boxed_mut_ptr, try_out, try_ref};
use super::macros::{Castable, OwnershipBox};
use super::server_config::knsock_server_config;
use super::types::knsock_result;
use crate::Server;

/// A running server. Created by `knsock_server_start()`; freed with `knsock_server_free()`.
///
/// Thread safety: `knsock_server_port()`, `knsock_server_stats()`, `knsock_server_stop()` and
/// `knsock_server_wait()` may be called from any thread, also at once; `knsock_server_free()` must be the last call, with
/// no other call on the server running and not from its own callbacks.
pub struct knsock_server {
    server: Server,
    /// The TLS pin, kept as a C string for as long as the server lives.
    pin: Option<CString>,
}

impl Castable for knsock_server {
    type Ownership = OwnershipBox;
}

impl knsock_server {
    /// The Rust server, for the other modules of its C type (`server_stats.rs`).
    pub(super) fn server(&self) -> &Server {
        &self.server
    }
}

/// Binds and starts a server from `config` (which is copied, and may be freed at once), and
/// returns without blocking: this is the async server (kn-sock's `start_file_server_async`);
/// `knsock_server_wait()` is the blocking one. On success `*server` receives the new server
/// (free it with `knsock_server_free()`). On failure, when `error` is not NULL, `*error`
/// receives a new error object.
#[no_mangle]
pub extern "C" fn knsock_server_start(
    config: *const knsock_server_config,
    server: *mut *mut knsock_server,
    error: *mut *mut knsock_error,
) -> knsock_result {
    ffi_boundary!(error: error, {
        let config = try_ref!(config);
        let server = try_out!(server);
        let started = config.to_rust()?.start()?;
        let pin = started.tls_pin().map(to_cstring);
        server.write(to_boxed_mut_ptr(knsock_server {
            server: started,
            pin,
        }));
        Ok(())
    })
}

/// The port the server listens on (the real one when 0 was configured); 0 when `server` is NULL.
#[no_mangle]
pub extern "C" fn knsock_server_port(server: *const knsock_server) -> u16 {
    ffi_boundary!({ Ok(try_ref!(server).server.local_addr().port()) })
}

/// The pin of the server's TLS key, `sha256//` and 44 characters of base64 (curl's
/// `CURLOPT_PINNEDPUBLICKEY` form), for senders' `knsock_send_options_set_pin()`: print it or
/// hand it over out of band. With `knsock_server_config_set_tls_self_signed()` it stays the same
/// across restarts while the state directory is kept. NULL for a server without TLS or when
/// `server` is NULL. Owned by the server: valid until `knsock_server_free()`; do not free it.
/// Any thread.
#[no_mangle]
pub extern "C" fn knsock_server_tls_pin(server: *const knsock_server) -> *const c_char {
    ffi_boundary!({
        let s = try_ref!(server);
        Ok(s.pin.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()))
    })
}

/// Stops the server: no new connections, transfers in flight aborted (their senders get an
/// error; no temporary file is left, except the hidden partial data resume keeps when
/// `knsock_server_config_set_resume_ttl_ms()` is above 0), then waits for the server's threads
/// (a callback still running is waited for). Safe to
/// call from any thread, more than once, and from the server's own callbacks (then it only
/// requests the stop and returns at once). The server must still be freed.
#[no_mangle]
pub extern "C" fn knsock_server_stop(server: *const knsock_server) -> knsock_result {
    ffi_boundary!({
        try_ref!(server).server.stop();
        Ok(())
    })
}

/// Stops the server gracefully: no new connection is accepted and no new file admitted (its
/// sender is refused with "receiver is shutting down"), while the files already under way
/// finish, for at most `timeout_ms` milliseconds (`UINT64_MAX`: without limit); what still runs
/// then is aborted as by
/// `knsock_server_stop()`. Returns `KNSOCK_RESULT_OK` when everything finished in time,
/// `KNSOCK_RESULT_TIMEOUT` when transfers had to be aborted. Blocks the calling thread; from the
/// server's own callbacks it only requests the shutdown and returns
/// `KNSOCK_RESULT_IN_PROGRESS`. Safe to call from any thread. The server must still be freed.
#[no_mangle]
pub extern "C" fn knsock_server_shutdown(
    server: *const knsock_server,
    timeout_ms: u64,
) -> knsock_result {
    ffi_boundary!({
        let s = &try_ref!(server).server;
        Ok(
            match s.shutdown(std::time::Duration::from_millis(timeout_ms)) {
                true => knsock_result::Ok,
                false if s.is_stopping() => knsock_result::Timeout,
                false => knsock_result::InProgress,
            },
        )
    })
}

/// Blocks until the server stops (kn-sock's blocking `start_file_server`): until
/// `knsock_server_stop()` is called from another thread or a callback. Fails with
/// `KNSOCK_RESULT_INVALID_ARGUMENT` when called from the server's own callback.
#[no_mangle]
pub extern "C" fn knsock_server_wait(
    server: *const knsock_server,
    error: *mut *mut knsock_error,
) -> knsock_result {
    ffi_boundary!(error: error, { try_ref!(server).server.wait() })
}

/// Stops the server if it runs and frees it. NULL is a no-op. Must not be called while another
/// thread is inside a call on the same server, nor from the server's own callbacks.
#[no_mangle]
pub extern "C" fn knsock_server_free(server: *mut knsock_server) {
    ffi_boundary!({
        // SAFETY: the header's contract: NULL or a server from `knsock_server_start()`, freed
        // once, with no other call on it running.
        unsafe { free_box(server) };
        Ok(())
    })
}
