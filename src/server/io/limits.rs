//! The process's descriptor limit: raised to its hard maximum when a server starts (as servers
//! commonly do), and shared out so that honest connections never run out.

use std::os::fd::AsFd;

use rustix::process::{getrlimit, setrlimit, Resource};

/// Descriptors kept for everything but connections and files: the listener, the event loop's,
/// the directory, the host application's own files.
const SPARE: u64 = 64;

/// Raises the soft limit on open descriptors to the hard one; returns the soft limit in force.
pub(crate) fn raise_fd_limit(raise: bool) -> u64 {
    let mut lim = getrlimit(Resource::Nofile);
    if raise && lim.current < lim.maximum {
        lim.current = lim.maximum;
        if setrlimit(Resource::Nofile, lim).is_err() {
            lim = getrlimit(Resource::Nofile);
        }
    }
    lim.current.unwrap_or(u64::MAX)
}

/// The most entries the descriptor table is grown to at start.
const TABLE_AHEAD: u64 = 65_536;

/// Grows the process's descriptor table now to what the server may use (at most
/// [`TABLE_AHEAD`] entries), by duplicating `fd` to the top and closing the copy. The kernel
/// grows the table by doubling as descriptors are opened, and in a process with threads each
/// growth waits for an RCU grace period (tens of milliseconds, measured) in the thread whose
/// open needed it: an event-loop thread, with every connection it serves. Paid once here.
pub(crate) fn grow_fd_table(fd_limit: u64, fd: impl AsFd) {
    let top = fd_limit.min(TABLE_AHEAD).saturating_sub(1);
    if let Ok(top) = i32::try_from(top) {
        // A failure only means the table grows later, as it would have anyway.
        let _ = rustix::io::fcntl_dupfd_cloexec(fd, top);
    }
}

/// How the descriptor limit is shared out: `(connections, files)`, the connection cap in force
/// (at most the configured one) and the descriptors for files in flight. Files get at least a
/// quarter of what is left after the spare ones, and whatever the connections cannot use.
pub(crate) fn share(fd_limit: u64, max_connections: usize) -> (usize, u64) {
    let usable = fd_limit.saturating_sub(SPARE).max(8);
    let files = (usable / 4).max(usable.saturating_sub(max_connections as u64));
    let connections = (usable - files).clamp(1, max_connections as u64) as usize;
    (connections, files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_go_to_connections_and_files() {
        // Under 20,000 descriptors: 10,000 connections fit, the default cap gives way to files.
        assert_eq!(share(20_000, 10_000), (10_000, 9_936));
        assert_eq!(share(20_000, 65_536), (14_952, 4_984));
        // A low limit caps the connections, files keep a quarter.
        assert_eq!(share(1024, 10_000), (720, 240));
        assert_eq!(share(1 << 20, 64), (64, (1 << 20) - 64 - 64));
        assert_eq!(share(0, 10), (6, 2));
    }

    /// The table is grown at once (`FDSize` in /proc is its size).
    #[test]
    fn the_descriptor_table_grows_at_once() {
        let size = || -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("FDSize:")).unwrap();
            line["FDSize:".len()..].trim().parse().unwrap()
        };
        let limit = raise_fd_limit(false).min(8192);
        let file = std::fs::File::open("/proc/self/status").unwrap();
        grow_fd_table(limit, &file);
        drop(file);
        assert!(size() >= limit, "{} < {limit}", size());
    }
}
