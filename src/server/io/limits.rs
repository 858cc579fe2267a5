//! The process's descriptor limit: raised to its hard maximum when a server starts (as servers
//! commonly do), and shared out so that honest connections never run out.

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
}
