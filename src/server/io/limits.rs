//! The process's descriptor limit: raised to its hard maximum when a server starts (as servers
//! commonly do), and shared out so that honest connections never run out.

use rustix::process::{getrlimit, setrlimit, Resource};

/// Descriptors kept for everything but connections: the listener, the wake pipe, the directory,
/// the host application's own files.
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

/// How many verified files one connection may hold for a group commit: every connection keeps
/// two descriptors for its socket and two for the file in flight, and each held file two (its
/// temporary file and its directory).
pub(crate) fn group_max(fd_limit: u64, connections: usize, most: usize) -> usize {
    let per_connection = fd_limit.saturating_sub(SPARE) / connections.max(1) as u64;
    let files = per_connection.saturating_sub(4) / 2;
    (files as usize).clamp(1, most)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_size_follows_the_limit() {
        assert_eq!(group_max(1024, 64, 256), 5);
        assert_eq!(group_max(1024, 4, 256), 118);
        assert_eq!(group_max(1 << 20, 64, 256), 256);
        assert_eq!(group_max(10, 64, 256), 1);
    }
}
