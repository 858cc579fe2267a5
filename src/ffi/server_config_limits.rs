//! The receiver's resource limits on `knsock_server_config` (issue 9): header timeout, zstd
//! decoders, the hashing budget of digest offers, the mode mask, the descriptor limit. Each range
//! is checked by the core's own rule (`ServerConfig::validate`) on a probe copy, so it lives in
//! one place.

use std::time::Duration;

use super::server_config::{knsock_server_config, set, set_limit};
use super::types::knsock_result;

/// Milliseconds a whole frame (and the content of a small file sent eagerly) may take to arrive,
/// 1 to 86400000 (a day); a peer that drips bytes is cut off after it, whatever the idle timeout.
/// Default 10000.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_header_timeout_ms(
    config: *mut knsock_server_config,
    timeout_ms: u64,
) -> knsock_result {
    set_limit(config, |p| {
        let t = Duration::from_millis(timeout_ms);
        p.header_timeout(t);
    })
}

/// Connections that may decode zstd at once (each may need an 8 MiB window). Past that, new
/// connections are not offered compression and their senders send raw; 0 never offers it.
/// Default 16.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_max_decoders(
    config: *mut knsock_server_config,
    max: u32,
) -> knsock_result {
    set_limit(config, |p| {
        p.max_decoders(max as usize);
    })
}

/// Bytes of stored files one connection may make the receiver hash to tell whether it already
/// holds an offered file (senders with `knsock_send_options_set_skip_unchanged()`). Past that,
/// offers are answered as if the file had changed, so its content flows. Default 64 GiB.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_hash_budget(
    config: *mut knsock_server_config,
    bytes: u64,
) -> knsock_result {
    set_limit(config, |p| {
        p.hash_budget(bytes);
    })
}

/// The permission bits a received file may keep of those its sender gave, at most 07777.
/// Default 0755: no setuid, setgid or sticky bit, no write for group or others. A sender's mode
/// of 0 gives 0644 before the mask.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_mode_mask(
    config: *mut knsock_server_config,
    mask: u32,
) -> knsock_result {
    set_limit(config, |p| {
        p.mode_mask(mask);
    })
}

/// At start, raise the process's soft limit on open descriptors to its hard limit, as servers
/// commonly do. Either way, how many verified files a connection holds for a group commit is
/// sized by the limit in force. Default: true.
#[no_mangle]
pub extern "C" fn knsock_server_config_set_raise_fd_limit(
    config: *mut knsock_server_config,
    raise: bool,
) -> knsock_result {
    set(config, |c| {
        c.inner.raise_fd_limit(raise);
        Ok(())
    })
}
