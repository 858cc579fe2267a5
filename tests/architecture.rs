//! The house rules of docs/architecture.md, checked on the source itself: no import cycle
//! between modules under `src/`, and in `src/` and the CLI's `cli/src/` no file over 500 lines,
//! no function over 80 lines, and every file opening with a `//!` line that says what it owns.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 500;
const MAX_FN_LINES: usize = 80;

/// The library's source files (`src/`).
fn sources() -> Vec<PathBuf> {
    sources_in("src")
}

/// Every Rust source file of the workspace: the library's and the CLI's (`cli/src/`).
fn all_sources() -> Vec<PathBuf> {
    let mut out = sources();
    out.extend(sources_in("cli/src"));
    out
}

fn sources_in(dir: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut out);
    out.sort();
    out
}

/// `src/send/session.rs` → ["send", "session"]; `src/send/mod.rs` → ["send"]; `src/lib.rs` → [].
fn module_of(path: &Path) -> Vec<String> {
    let rel = path
        .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
        .unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file without its `#[cfg(test)]` module (tests sit at the end of a file).
fn code(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |i| &text[..i])
}

/// Every module path a file refers to: `use` statements and inline `crate::`/`super::` paths.
fn references(
    module: &[String],
    text: &str,
    modules: &BTreeSet<Vec<String>>,
) -> BTreeSet<Vec<String>> {
    let mut paths: Vec<String> = Vec::new();
    for stmt in code(text).split(';') {
        let s = stmt.trim_start();
        let Some(rest) = s
            .strip_prefix("use ")
            .or_else(|| s.strip_prefix("pub use "))
            .or_else(|| s.strip_prefix("pub(crate) use "))
        else {
            continue;
        };
        let rest: String = rest.split_whitespace().collect();
        match rest.split_once('{') {
            Some((prefix, items)) => {
                for item in items.trim_end_matches('}').split(',') {
                    paths.push(format!("{prefix}{}", item.split('{').next().unwrap()));
                }
            }
            None => paths.push(rest),
        }
    }
    for token in ["crate::", "super::"] {
        for (i, _) in code(text).match_indices(token) {
            let tail: String = text[i..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.push(tail);
        }
    }
    let mut out = BTreeSet::new();
    for p in paths {
        let segs: Vec<&str> = p.split("::").filter(|s| !s.is_empty()).collect();
        let (base, rest): (Vec<String>, &[&str]) = match segs.first() {
            Some(&"crate") => (Vec::new(), &segs[1..]),
            Some(&"super") => (
                module[..module.len().saturating_sub(1)].to_vec(),
                &segs[1..],
            ),
            Some(&"self") => (module.to_vec(), &segs[1..]),
            Some(first) if modules.contains(&[module, &[first.to_string()]].concat()) => {
                (module.to_vec(), &segs[..])
            }
            _ => continue,
        };
        // The longest module prefix the path names.
        let mut target = base.clone();
        for s in rest {
            let mut next = target.clone();
            next.push(s.to_string());
            if !modules.contains(&next) {
                break;
            }
            target = next;
        }
        // A path into the module itself is no dependency.
        if !target.is_empty() && target != module {
            out.insert(target);
        }
    }
    out
}

#[test]
fn no_import_cycles_between_modules() {
    let files = sources();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for f in &files {
        let m = module_of(f);
        let text = fs::read_to_string(f).unwrap();
        graph
            .entry(m.clone())
            .or_default()
            .extend(references(&m, &text, &modules));
    }
    // Depth-first search for a back edge.
    fn visit(
        m: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        if let Some(i) = stack.iter().position(|s| s == m) {
            return Some(stack[i..].iter().cloned().chain([m.clone()]).collect());
        }
        if !done.insert(m.clone()) {
            return None;
        }
        stack.push(m.clone());
        for next in graph.get(m).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(cycle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            let names: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
            panic!("import cycle: {}", names.join(" -> "));
        }
    }
    // The check sees the real structure: the sender's session depends on its options.
    assert!(graph[&vec!["send".to_string(), "session".to_string()]]
        .contains(&vec!["send".to_string(), "options".to_string()]));
}

#[test]
fn files_are_short_and_say_what_they_own() {
    for f in all_sources() {
        let text = fs::read_to_string(&f).unwrap();
        let lines = text.lines().count();
        assert!(lines <= MAX_FILE_LINES, "{} has {lines} lines", f.display());
        assert!(
            text.starts_with("//!"),
            "{} does not open with a //! line",
            f.display()
        );
    }
}

#[test]
fn functions_are_short() {
    let mut long = Vec::new();
    for f in all_sources() {
        let text = fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let indent = &line[..line.len() - t.len()];
            let is_fn = t.contains("fn ")
                && !t.starts_with("//")
                && (t.starts_with("fn ")
                    || t.starts_with("pub ")
                    || t.starts_with("pub(")
                    || t.starts_with("unsafe ")
                    || t.starts_with("extern ")
                    || t.starts_with("const fn")
                    || t.starts_with("async "));
            if !is_fn || t.ends_with(';') || t.ends_with('}') {
                continue;
            }
            let end = format!("{indent}}}");
            if let Some(len) = lines[i..].iter().position(|l| *l == end) {
                if len + 1 > MAX_FN_LINES {
                    long.push(format!("{}:{} ({} lines)", f.display(), i + 1, len + 1));
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines: {long:#?}"
    );
}
