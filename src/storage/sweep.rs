//! The start-up sweep: removing what interrupted work left in the server's directory.

use std::path::Path;
use std::time::Duration;

use crate::protocol::{MAX_COMPONENTS, TEMP_PREFIX};

/// Removes what interrupted work left beneath `root`: temporary files older than `tmp_age` (no
/// live transfer goes that long without writing) and partial uploads older than `partial_age`.
/// Symlinks are not followed. Returns how many files it removed.
pub fn sweep(root: &Path, tmp_age: Duration, partial_age: Duration) -> usize {
    fn walk(dir: &Path, depth: usize, tmp_age: Duration, partial_age: Duration) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let (Ok(ft), name) = (e.file_type(), e.file_name()) else {
                continue;
            };
            let name = name.to_string_lossy();
            if ft.is_dir() && depth < MAX_COMPONENTS {
                removed += walk(&e.path(), depth + 1, tmp_age, partial_age);
            } else if ft.is_file() && name.starts_with(TEMP_PREFIX) {
                let max_age = match name.starts_with(&format!("{TEMP_PREFIX}partial-")) {
                    true => partial_age,
                    false => tmp_age,
                };
                let age = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .unwrap_or_default();
                if age > max_age && std::fs::remove_file(e.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }
    walk(root, 0, tmp_age, partial_age)
}
