//! `knsock_server_config`: a server's settings and callbacks (the builder
//! `knsock_server_start()` copies), and their translation to [`ServerConfig`].

use std::ffi::{c_char, c_int, c_void, CStr};
use std::net::SocketAddr;
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use super::convert::{arg_path, arg_str, to_cstring, UserData};
use super::error::knsock_error;
use super::file_info::knsock_file_info;
use super::macros::{ffi_boundary, free_box, to_boxed_mut_ptr, try_mut, try_ref};
use super::macros::{Castable, OwnershipBox};
use super::types::{knsock_overwrite, knsock_result, KNSOCK_REASON_MAX, KNSOCK_VALIDATOR_ACCEPT};
use crate::{Error, Result};
use crate::{FileInfo, Overwrite, ServerConfig};

/// Validator: return `KNSOCK_VALIDATOR_ACCEPT` to accept the file, `KNSOCK_VALIDATOR_REJECT` (or
/// any other value) to refuse it. To tell the sender why, write a NUL-terminated UTF-8 reason
/// into `reason` (room for `reason_len` bytes, never fewer than `KNSOCK_REASON_MAX`, zeroed on
/// entry; longer text is cut); it reaches the sender's `knsock_error_peer_reason()`.
/// The pre-data validator runs on the OFFER, before any byte of content is stored
/// (`knsock_file_info_path()` is NULL; a large file's content does not flow until it accepts, a
/// small file's in a batch may already be on its way and is then dropped); the post-data
/// validator runs on the verified, fsynced temporary file before it is renamed into place
/// (`knsock_file_info_path()` is that file, by its exact bytes; it exists while the validator
/// runs). Runs on one of the server's threads (`knsock-server`), possibly on several at once:
/// it must be thread-safe. It may block: the server's other connections go on meanwhile (it
/// holds one of the 64 threads of the server's blocking pool, and its own connection).
pub type knsock_validator_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        info: *const knsock_file_info,
        reason: *mut c_char,
        reason_len: usize,
    ) -> c_int,
>;

/// Received handler: a file was stored (`knsock_file_info_path()` is where) and its sender was
/// told. Runs on one of the server's threads (`knsock-server`), possibly on several at once
/// for different connections: it must be thread-safe. One connection's calls come one at a
/// time, in the order its files were stored, while the connection goes on receiving; it may
/// block, at the cost of its own connection only (which waits once 64 of its commits' calls
/// are queued). A server that stops or drains waits for the calls queued. It may call
/// `knsock_server_stop()` (which then returns at once) but not `knsock_server_wait()` or
/// `knsock_server_free()` on its own server.
pub type knsock_received_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, info: *const knsock_file_info)>;

/// Error handler: a connection or file failed (`code`, a one-line `message`) with the sender at
/// `peer` ("ip:port", or NULL when no connection was involved). Strings are borrowed for the
/// call. Runs on a server thread, possibly on several at once; the same rules as the received
/// handler apply.
pub type knsock_error_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        code: knsock_result,
        message: *const c_char,
        peer: *const c_char,
    ),
>;

/// Releases userdata once no callback can run any more.
pub type knsock_finalizer_cb = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

type Validate =
    unsafe extern "C" fn(*mut c_void, *const knsock_file_info, *mut c_char, usize) -> c_int;
type Received = unsafe extern "C" fn(*mut c_void, *const knsock_file_info);
type OnError = unsafe extern "C" fn(*mut c_void, knsock_result, *const c_char, *const c_char);

/// Calls the finalizer when the last holder (the config, or a server started from it) is gone.
struct Finalizer(unsafe extern "C" fn(*mut c_void), UserData);

impl Drop for Finalizer {
    fn drop(&mut self) {
        // SAFETY: registered by the caller for exactly this call.
        unsafe { (self.0)(self.1.ptr()) }
    }
}

/// A server's settings, built with the setters below. Created by `knsock_server_config_new()`,
/// freed by the caller with `knsock_server_config_free()`. `knsock_server_start()` copies it, so
/// one config may start several servers and be freed while they run.
///
/// Thread safety: `knsock_server_start()` may read one config from several threads at once; a
/// setter must not run at the same time as any other call on it. A running server does not use
/// it.
pub struct knsock_server_config {
    pub(crate) inner: ServerConfig,
    dir_set: bool,
    pre: Option<(Validate, UserData)>,
    post: Option<(Validate, UserData)>,
    received: Option<(Received, UserData)>,
    on_error: Option<(OnError, UserData)>,
    finalizer: Option<Arc<Finalizer>>,
    /// The detail of the last setter call, when it failed.
    last_error: Option<knsock_error>,
}

impl Castable for knsock_server_config {
    type Ownership = OwnershipBox;
}

/// A new server config: listen on 0.0.0.0 and an ephemeral port, 65,536 connections at once
/// (fewer when the descriptor limit cannot hold them), a
/// 30 s idle timeout, no size limit, no reserve, replace existing files. A directory must be set
/// before starting. NULL only if memory ran out.
#[no_mangle]
pub extern "C" fn knsock_server_config_new() -> *mut knsock_server_config {
    ffi_boundary!({
        Ok(to_boxed_mut_ptr(knsock_server_config {
            inner: ServerConfig::new(""),
            dir_set: false,
            pre: None,
            post: None,
            received: None,
            on_error: None,
            finalizer: None,
            last_error: None,
        }))
    })
}

/// Frees a config. Servers started from it keep running. NULL is a no-op.
#[no_mangle]
pub extern "C" fn knsock_server_config_free(config: *mut knsock_server_config) {
    ffi_boundary!({
        // SAFETY: the header's contract: NULL or a config from `knsock_server_config_new()`,
        // freed once.
        unsafe { free_box(config) };
        Ok(())
    })
}

/// Runs one setter on `config` (NULL is `KNSOCK_RESULT_INVALID_ARGUMENT`) and keeps the detail
/// of its failure for `knsock_server_config_last_error()`.
pub(crate) fn set(
    config: *mut knsock_server_config,
    f: impl FnOnce(&mut knsock_server_config) -> Result<()>,
) -> knsock_result {
    ffi_boundary!({
        let c = try_mut!(config);
        let done = f(c);
        c.last_error = done.as_ref().err().map(knsock_error::from_error);
        done
    })
}

/// Runs a setter whose value the core's own rule ([`ServerConfig::validate`]) checks: the change
/// is tried on a default config first, so a value the start would refuse is refused here, with
/// the start's own message, and the range lives in one place.
pub(crate) fn set_limit(
    config: *mut knsock_server_config,
    change: impl Fn(&mut ServerConfig),
) -> knsock_result {
    set(config, |c| {
        let mut probe = ServerConfig::new("");
        change(&mut probe);
        probe.validate()?;
        change(&mut c.inner);
        Ok(())
    })
}

/// Why the last setter call on `config` failed (e.g. "max connections must be 1 to 1000000"), or
/// NULL when it succeeded, when no setter ran yet, or when `config` is NULL. Kept per config
/// (no thread-local state). Owned by the config: valid until the next setter call on it or
/// `knsock_server_config_free()`; do not free it.
#[no_mangle]
pub extern "C" fn knsock_server_config_last_error(
    config: *const knsock_server_config,
) -> *const knsock_error {
    ffi_boundary!({
        let c = try_ref!(config);
        Ok(c.last_error.as_ref().map_or(ptr::null(), |e| e as *const _))
    })
}

/// The directory files are stored in (copied). It must exist when the server starts.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_directory(
    config: *mut knsock_server_config,
    dir: *const c_char,
) -> knsock_result {
    set(config, |c| {
        // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
        c.inner.dir(unsafe { arg_path(dir, "directory") }?);
        c.dir_set = true;
        Ok(())
    })
}

/// The address to listen on, e.g. "127.0.0.1" or "::" (copied). Default "0.0.0.0".
#[no_mangle]
pub extern "C" fn knsock_server_config_set_host(
    config: *mut knsock_server_config,
    host: *const c_char,
) -> knsock_result {
    set(config, |c| {
        // SAFETY: the header's contract: a string argument is NULL or NUL-terminated.
        c.inner.host(unsafe { arg_str(host, "host") }?);
        Ok(())
    })
}

/// The port; 0 (the default) picks a free one, which `knsock_server_port()` reports.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_port(
    config: *mut knsock_server_config,
    port: u16,
) -> knsock_result {
    set(config, |c| {
        c.inner.port(port);
        Ok(())
    })
}

/// How many connections are served at once (1 to 1,000,000; default 65,536, and never more than
/// the descriptor limit allows: docs/operations.md). A sender over the cap is answered "receiver
/// busy" (`KNSOCK_RESULT_BUSY` on its side) and retries later when it has retries.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_max_connections(
    config: *mut knsock_server_config,
    max: u32,
) -> knsock_result {
    set_limit(config, |c| {
        c.max_connections(max as usize);
    })
}

/// Milliseconds a connection may make no progress before it is dropped, 1 to 86400000 (a day);
/// default 30000.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_idle_timeout_ms(
    config: *mut knsock_server_config,
    timeout_ms: u64,
) -> knsock_result {
    set_limit(config, |c| {
        c.idle_timeout(Duration::from_millis(timeout_ms));
    })
}

/// Largest file accepted, in bytes; 0 (the default) for no limit. Checked before any data.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_max_file_size(
    config: *mut knsock_server_config,
    max_bytes: u64,
) -> knsock_result {
    set(config, |c| {
        c.inner.max_file_size((max_bytes > 0).then_some(max_bytes));
        Ok(())
    })
}

/// Bytes of free space that must remain after a file is stored; a file that would cut into
/// them is refused before any data with "no space". Default 0.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_reserve_bytes(
    config: *mut knsock_server_config,
    reserve_bytes: u64,
) -> knsock_result {
    set(config, |c| {
        c.inner.reserve_bytes(reserve_bytes);
        Ok(())
    })
}

/// Milliseconds to keep the data of an interrupted upload so the sender's retry resumes where
/// it ends (keyed by name, size, modification time and sender host), at most 365 days
/// (31536000000). Expired data is removed when a server starts on the directory.
///
/// What an aborted upload leaves behind: with 0 (the default) nothing; the data received so
/// far is deleted at once. Above 0, the received prefix of an interrupted upload (connection
/// lost, timeout, server stopped, or the sender's `knsock_transfer_cancel()` or a progress
/// callback's abort) is kept hidden beside the final name, as `.knsock-partial-…`, for this
/// long, so that a retry resumes. It never appears under the final name; content that failed
/// its checksum or could not be written is never kept.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_resume_ttl_ms(
    config: *mut knsock_server_config,
    ttl_ms: u64,
) -> knsock_result {
    set_limit(config, |c| {
        c.resume_ttl(Duration::from_millis(ttl_ms));
    })
}

/// Whether senders may send zstd-compressed content (default: true). Decoding is bounded: never
/// more than the announced size, never a window above 8 MiB.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_accept_compression(
    config: *mut knsock_server_config,
    accept: bool,
) -> knsock_result {
    set(config, |c| {
        c.inner.accept_compression(accept);
        Ok(())
    })
}

/// What to do when a file of the same name exists: a `knsock_overwrite` value. Unknown values
/// give `KNSOCK_RESULT_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_overwrite(
    config: *mut knsock_server_config,
    policy: u32,
) -> knsock_result {
    set(config, |c| {
        c.inner.overwrite(match policy {
            p if p == knsock_overwrite::Replace as u32 => Overwrite::Replace,
            p if p == knsock_overwrite::Refuse as u32 => Overwrite::Refuse,
            p if p == knsock_overwrite::Rename as u32 => Overwrite::Rename,
            p => return Err(Error::invalid(format!("unknown overwrite policy {p}"))),
        });
        Ok(())
    })
}

/// Sets (or clears, with NULL) the validator run before any data; see `knsock_validator_cb`.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_pre_validator(
    config: *mut knsock_server_config,
    callback: knsock_validator_cb,
    userdata: *mut c_void,
) -> knsock_result {
    set(config, |c| {
        c.pre = callback.map(|f| (f, UserData(userdata)));
        Ok(())
    })
}

/// Sets (or clears, with NULL) the validator run on the verified data; see
/// `knsock_validator_cb`.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_post_validator(
    config: *mut knsock_server_config,
    callback: knsock_validator_cb,
    userdata: *mut c_void,
) -> knsock_result {
    set(config, |c| {
        c.post = callback.map(|f| (f, UserData(userdata)));
        Ok(())
    })
}

/// Sets (or clears, with NULL) the handler called for each stored file; see
/// `knsock_received_cb`.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_received_handler(
    config: *mut knsock_server_config,
    callback: knsock_received_cb,
    userdata: *mut c_void,
) -> knsock_result {
    set(config, |c| {
        c.received = callback.map(|f| (f, UserData(userdata)));
        Ok(())
    })
}

/// Sets (or clears, with NULL) the error handler; see `knsock_error_cb`.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_error_handler(
    config: *mut knsock_server_config,
    callback: knsock_error_cb,
    userdata: *mut c_void,
) -> knsock_result {
    set(config, |c| {
        c.on_error = callback.map(|f| (f, UserData(userdata)));
        Ok(())
    })
}

/// Sets a finalizer called exactly once with `userdata` after the config and every server
/// started from it are freed and no callback can run any more, on whichever thread released the
/// last of them. Use it to free the callbacks' userdata. Setting another (or NULL) releases the
/// config's hold on the previous one, which then runs as soon as no server started with it is
/// left (at once if there is none).
#[no_mangle]
pub extern "C" fn knsock_server_config_set_finalizer(
    config: *mut knsock_server_config,
    finalizer: knsock_finalizer_cb,
    userdata: *mut c_void,
) -> knsock_result {
    set(config, |c| {
        c.finalizer = finalizer.map(|f| Arc::new(Finalizer(f, UserData(userdata))));
        Ok(())
    })
}

/// Calls a C validator with a zeroed reason buffer and reads back its verdict.
fn call_validator(f: Validate, ud: UserData, info: &FileInfo) -> std::result::Result<(), String> {
    let c_info = knsock_file_info::new(info);
    let mut reason = vec![0 as c_char; KNSOCK_REASON_MAX];
    // SAFETY: the caller registered `f` with `ud`; the buffer is `reason.len()` bytes.
    let verdict = unsafe { f(ud.ptr(), &c_info, reason.as_mut_ptr(), reason.len()) };
    if verdict == KNSOCK_VALIDATOR_ACCEPT {
        return Ok(());
    }
    *reason.last_mut().unwrap() = 0;
    // SAFETY: NUL-terminated within the buffer (the last byte was just set to 0).
    let text = unsafe { CStr::from_ptr(reason.as_ptr()) }.to_string_lossy();
    Err(match text.is_empty() {
        true => "refused by the receiver's validator".to_string(),
        false => text.into_owned(),
    })
}

impl knsock_server_config {
    /// The Rust config with the C callbacks wrapped; each wrapper holds the finalizer alive.
    pub(crate) fn to_rust(&self) -> Result<ServerConfig> {
        if !self.dir_set {
            return Err(Error::invalid(
                "no directory set (knsock_server_config_set_directory)",
            ));
        }
        let mut cfg = self.inner.clone();
        let keep = self.finalizer.clone();
        for (v, after) in [(self.pre, false), (self.post, true)] {
            if let Some((f, ud)) = v {
                let keep = keep.clone();
                let call = move |info: &FileInfo| {
                    let _ = &keep;
                    call_validator(f, ud, info)
                };
                match after {
                    false => cfg.validate_before(call),
                    true => cfg.validate_after(call),
                };
            }
        }
        if let Some((f, ud)) = self.received {
            let keep = keep.clone();
            cfg.on_received(move |info| {
                let _ = &keep;
                let c_info = knsock_file_info::new(info);
                // SAFETY: registered by the caller with `ud`.
                unsafe { f(ud.ptr(), &c_info) }
            });
        }
        if let Some((f, ud)) = self.on_error {
            cfg.on_error(move |e: &Error, peer: Option<SocketAddr>| {
                let _ = &keep;
                let msg = to_cstring(e.message());
                let peer = peer.map(|p| to_cstring(&p.to_string()));
                let peer_ptr = peer.as_ref().map_or(ptr::null(), |p| p.as_ptr());
                // SAFETY: registered by the caller with `ud`; strings live through the call.
                unsafe { f(ud.ptr(), e.kind().into(), msg.as_ptr(), peer_ptr) }
            });
        }
        Ok(cfg)
    }
}
