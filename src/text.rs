//! The one place that makes text safe to print: names, reasons and identities that came from
//! the network (or from a file system) go through [`printable`] before they reach a terminal or
//! a log, as OpenSSH's `stravis` does, so that no peer can forge a log line or move the cursor.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every character a terminal or a log reader could misread replaced by an escape:
/// C0 and C1 control characters and DEL (`\n`, `\r`, `\t`, `\x1b`, `\u{85}`, …), the
/// bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069) and marks (U+200E,
/// U+200F, U+061C), and the line and paragraph separators (U+2028, U+2029). Text without any of
/// them is returned as it is, without a copy.
///
/// The result holds none of those characters, so escaping it again changes nothing: a message
/// built from already escaped parts can be escaped whole. A backslash is left as it is (the
/// protocol refuses it in names), which is what keeps the escaping idempotent.
///
/// ```
/// assert_eq!(knsock::printable("x\nreceived FORGED"), "x\\nreceived FORGED");
/// assert_eq!(knsock::printable("a\u{202e}txt.exe"), "a\\u{202e}txt.exe");
/// assert_eq!(knsock::printable("report.pdf"), "report.pdf");
/// ```
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_char(&mut out, c);
    }
    Cow::Owned(out)
}

/// [`printable`] for bytes that may not be UTF-8 (a name as it came off the wire, a path):
/// each byte of an invalid sequence becomes `\xNN`.
///
/// ```
/// assert_eq!(knsock::printable_bytes(b"caf\xe9\n"), "caf\\xe9\\n");
/// ```
pub fn printable_bytes(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => printable(text),
        Err(_) => {
            let mut out = String::with_capacity(bytes.len() + 8);
            for chunk in bytes.utf8_chunks() {
                chunk.valid().chars().for_each(|c| push_char(&mut out, c));
                for b in chunk.invalid() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            Cow::Owned(out)
        }
    }
}

/// Whether `c` must be escaped before it is printed.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{061C}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 && unsafe_char(c) => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if unsafe_char(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_bidi_are_escaped() {
        let cases = [
            (
                "x\nreceived alice/FORGED (1 bytes)",
                "x\\nreceived alice/FORGED (1 bytes)",
            ),
            ("a\rb", "a\\rb"),
            ("\x1b[2Jclear", "\\x1b[2Jclear"),
            ("del\x7f", "del\\x7f"),
            ("nul\0", "nul\\x00"),
            ("c1\u{85}\u{9b}", "c1\\u{85}\\u{9b}"),
            ("evil\u{202e}fdp.exe", "evil\\u{202e}fdp.exe"),
            ("iso\u{2066}x\u{2069}", "iso\\u{2066}x\\u{2069}"),
            ("line\u{2028}sep", "line\\u{2028}sep"),
            ("tab\there", "tab\\there"),
        ];
        for (raw, want) in cases {
            assert_eq!(printable(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn plain_text_is_borrowed_and_kept() {
        for s in ["report.pdf", "dir/süß 文件.txt", "a\\b", ""] {
            assert!(matches!(printable(s), Cow::Borrowed(t) if t == s), "{s:?}");
        }
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        for s in ["x\ny", "\u{202e}", "\x1b[31m", "a\\nb", "\u{9b}"] {
            let once = printable(s).into_owned();
            assert_eq!(printable(&once), once, "{s:?}");
        }
    }

    #[test]
    fn invalid_utf8_bytes_are_shown_as_hex() {
        assert_eq!(printable_bytes(b"ok"), "ok");
        assert_eq!(printable_bytes(b"a\xffb\n"), "a\\xffb\\n");
        assert_eq!(printable_bytes(b"\xe2\x80"), "\\xe2\\x80");
        assert_eq!(printable_bytes("é\u{202e}".as_bytes()), "é\\u{202e}");
    }
}
