//! Names of the receiver's own hidden files and of stored ones: temporary files (tagged with
//! the server run that made them), unique ids, `dir/file` and keep-both numbering.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::TEMP_PREFIX;

/// `dir/file`, or `file` at the top.
pub(crate) fn rel_name(rel_dir: &str, file: &str) -> String {
    match rel_dir.is_empty() {
        true => file.to_string(),
        false => format!("{rel_dir}/{file}"),
    }
}

/// `report.txt` → `report (n).txt`; n = 0 is the name itself.
pub(crate) fn numbered(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_string();
    }
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{} ({n}){}", &name[..dot], &name[dot..]),
        _ => format!("{name} ({n})"),
    }
}

/// A fresh temporary file name.
pub(crate) fn temp_name() -> String {
    format!("{TEMP_PREFIX}{:016x}.tmp", unique())
}

pub(crate) fn unique() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names() {
        assert_eq!(numbered("a.txt", 0), "a.txt");
        assert_eq!(numbered("a.txt", 2), "a (2).txt");
        assert_eq!(numbered("archive.tar.gz", 1), "archive.tar (1).gz");
        assert_eq!(numbered(".bashrc", 1), ".bashrc (1)");
        assert_eq!(numbered("README", 3), "README (3)");
    }
}
