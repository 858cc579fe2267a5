//! Turning paths into named sources: recursion, include/exclude globs, symlinks (loops
//! detected), in a stable order.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use glob::{MatchOptions, Pattern};

use crate::error::{Error, ErrorKind, Result};

/// One file to send: where it is here, the name it gets on the receiver, its size when listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file here.
    pub path: PathBuf,
    /// Its name on the receiver, `/`-separated.
    pub name: String,
    /// Its size when it was listed (for progress; what is sent is what is read).
    pub size: u64,
}

/// Which files a walk picks.
#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// Descend into directories (a directory without it is an error, as with `cp`).
    pub recursive: bool,
    /// Globs matched against the relative name (`*` also crosses `/`): when any is given, a
    /// file must match one. `*.log` selects by extension.
    pub include: Vec<String>,
    /// Globs that drop a file, whatever `include` says.
    pub exclude: Vec<String>,
    /// Follow symlinks (loops are detected); by default they are skipped.
    pub follow_symlinks: bool,
}

/// Lists the files `paths` name, in a stable order: a file stands for itself (its base name on
/// the receiver), a directory for every file beneath it (`dir/sub/file`).
pub fn collect_sources(paths: &[PathBuf], opts: &WalkOptions) -> Result<Vec<Source>> {
    let compile = |globs: &[String]| -> Result<Vec<Pattern>> {
        globs
            .iter()
            .map(|g| Pattern::new(g).map_err(|e| Error::invalid(format!("bad pattern {g:?}: {e}"))))
            .collect()
    };
    let include = compile(&opts.include)?;
    let exclude = compile(&opts.exclude)?;
    let wanted = |name: &str| {
        let m = MatchOptions {
            require_literal_separator: false,
            ..MatchOptions::new()
        };
        (include.is_empty() || include.iter().any(|p| p.matches_with(name, m)))
            && !exclude.iter().any(|p| p.matches_with(name, m))
    };
    let mut out = Vec::new();
    for path in paths {
        let meta = stat(path, opts.follow_symlinks)?;
        let Some(meta) = meta else { continue };
        let base = base_name(path)?;
        if meta.is_dir() {
            if !opts.recursive {
                return Err(Error::invalid(format!(
                    "{} is a directory (send it with recursion)",
                    path.display()
                )));
            }
            let mut seen = vec![(meta.dev(), meta.ino())];
            walk(path, &base, opts, &wanted, &mut seen, &mut out)?;
        } else if meta.is_file() && wanted(&base) {
            out.push(Source {
                path: path.clone(),
                name: base,
                size: meta.len(),
            });
        }
    }
    Ok(out)
}

fn walk(
    dir: &Path,
    prefix: &str,
    opts: &WalkOptions,
    wanted: &dyn Fn(&str) -> bool,
    seen: &mut Vec<(u64, u64)>,
    out: &mut Vec<Source>,
) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| Error::io(dir.display(), e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(dir.display(), e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Some(meta) = stat(&path, opts.follow_symlinks)? else {
            continue;
        };
        let name = format!("{prefix}/{}", base_name(&path)?);
        if meta.is_dir() {
            let id = (meta.dev(), meta.ino());
            if seen.contains(&id) {
                continue; // a symlink loop
            }
            seen.push(id);
            walk(&path, &name, opts, wanted, seen, out)?;
            seen.pop();
        } else if meta.is_file() && wanted(&name) {
            out.push(Source {
                path,
                name,
                size: meta.len(),
            });
        }
    }
    Ok(())
}

/// The metadata of `path`; `None` for a symlink that is not followed or a dangling one.
fn stat(path: &Path, follow: bool) -> Result<Option<fs::Metadata>> {
    let meta = fs::symlink_metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::new(
            ErrorKind::NotFound,
            format!("{}: no such file or directory", path.display()),
        ),
        _ => Error::io(path.display(), e),
    })?;
    if !meta.file_type().is_symlink() {
        return Ok(Some(meta));
    }
    Ok(if follow {
        fs::metadata(path).ok()
    } else {
        None
    })
}

fn base_name(path: &Path) -> Result<String> {
    let owned;
    let p = match path.file_name() {
        Some(_) => path,
        None => {
            owned = fs::canonicalize(path).map_err(|e| Error::io(path.display(), e))?;
            &owned
        }
    };
    p.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| Error::invalid(format!("{}: name is not UTF-8", path.display())))
}
