//! Making hostile log text safe to store and show.
//!
//! Log fields are attacker-controlled. Before any text from a log is kept in a finding or a
//! report it goes through [`evidence_text`]: invalid UTF-8 is replaced, control characters
//! (including terminal escape sequences and Unicode bidirectional overrides) are written as
//! visible escapes, and the length is capped. Views add their own escaping (HTML, CSV) on top.

use std::borrow::Cow;

/// Longest evidence text kept, in bytes (a cut is marked with `…`).
pub const MAX_EVIDENCE_TEXT: usize = 2048;

/// Lossy-decodes `bytes`, escapes control and bidi characters, and caps the length.
pub fn evidence_text(bytes: &[u8]) -> String {
    if bytes.len() <= MAX_EVIDENCE_TEXT && printable_ascii(bytes) {
        // Printable ASCII: valid UTF-8 with nothing to escape.
        if let Ok(s) = String::from_utf8(bytes.to_vec()) {
            return s;
        }
    }
    let s = String::from_utf8_lossy(bytes);
    escape_controls(&s, MAX_EVIDENCE_TEXT)
}

/// Whether every byte is printable ASCII (0x20..=0x7e). Checked 32 bytes at a time without
/// an early exit inside a block, which the compiler turns into vector instructions.
pub(crate) fn printable_ascii(b: &[u8]) -> bool {
    let bad = |c: u8| c.wrapping_sub(0x20) >= 0x5f;
    let mut blocks = b.chunks_exact(32);
    for block in &mut blocks {
        if block.iter().fold(false, |acc, &c| acc | bad(c)) {
            return false;
        }
    }
    !blocks.remainder().iter().any(|&c| bad(c))
}

/// Escapes control characters (C0, DEL, C1) and bidi/zero-width format characters as
/// `\xNN` / `\u{NNNN}` and cuts the result at about `max` bytes.
pub fn escape_controls(s: &str, max: usize) -> String {
    // Fast path: printable ASCII that fits needs no work beyond the copy.
    if s.len() <= max && printable_ascii(s.as_bytes()) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len().min(max) + 8);
    for c in s.chars() {
        if out.len() >= max {
            out.push('…');
            break;
        }
        if is_unsafe_char(c) {
            push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// [`escape_controls`] without a length cap, borrowing `s` when nothing needs escaping: the
/// form for writers that pass every field of every event through it (printable ASCII is
/// checked a block at a time and costs no allocation).
pub fn escaped(s: &str) -> Cow<'_, str> {
    if printable_ascii(s.as_bytes()) {
        return Cow::Borrowed(s);
    }
    match s.char_indices().find(|&(_, c)| is_unsafe_char(c)) {
        None => Cow::Borrowed(s),
        Some((i, _)) => {
            let mut out = String::with_capacity(s.len() + 16);
            out.push_str(&s[..i]);
            escape_into(&mut out, &s[i..], |_| false);
            Cow::Owned(out)
        }
    }
}

/// Escapes like [`escape_controls`], uncapped, but keeps line breaks (`\n`) and tabs: for a
/// multi-line document (Markdown, a terminal listing) whose own layout uses them. A carriage
/// return is escaped, so a line cannot be overwritten from its start.
pub fn escape_controls_keep_lines(s: &str) -> Cow<'_, str> {
    let keep = |c: char| c == '\n' || c == '\t';
    if !s.chars().any(|c| is_unsafe_char(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    escape_into(&mut out, s, keep);
    Cow::Owned(out)
}

/// Appends `s` to `out`, unsafe characters (those `keep` does not spare) escaped.
fn escape_into(out: &mut String, s: &str, keep: impl Fn(char) -> bool) {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if is_unsafe_char(c) && !keep(c) {
            out.push_str(&s[start..i]);
            push_escape(out, c);
            start = i + c.len_utf8();
        }
    }
    out.push_str(&s[start..]);
}

/// The visible form of one unsafe character: `\xNN` below U+0100, else `\u{NNNN}`.
fn push_escape(out: &mut String, c: char) {
    use std::fmt::Write as _;
    let n = c as u32;
    // Writing into a `String` cannot fail.
    let _ = if n < 0x100 {
        write!(out, "\\x{n:02x}")
    } else {
        write!(out, "\\u{{{n:04x}}}")
    };
}

/// Characters that must never reach a terminal or a page raw: C0/C1 controls, DEL, and
/// Unicode format characters that reorder or hide text.
pub fn is_unsafe_char(c: char) -> bool {
    let n = c as u32;
    n < 0x20
        || (0x7f..=0x9f).contains(&n)
        || matches!(
            n,
            0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x2069 | 0xfeff
        )
}

/// HTML-escapes `s` for element text and for quoted or unquoted attribute values. Every HTML
/// view of ecir (scan report, audit calendar, case record) escapes through this one function;
/// log-derived text goes through [`escape_controls`] first so controls and bidi overrides
/// are shown, not obeyed.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '`' => out.push_str("&#96;"),
            '=' => out.push_str("&#61;"),
            _ => out.push(c),
        }
    }
    out
}

/// `true` when `s` would be changed by [`escape_controls`].
pub fn needs_escape(s: &str) -> bool {
    s.chars().any(is_unsafe_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_ascii_checks_every_byte() {
        let mut line = vec![b'a'; 100];
        assert!(printable_ascii(&line));
        for pos in [0, 31, 32, 63, 64, 99] {
            for bad in [0x1f, 0x7f, 0x80, 0x00, 0xff] {
                line[pos] = bad;
                assert!(!printable_ascii(&line), "byte {bad:#x} at {pos}");
                line[pos] = b'a';
            }
        }
        assert!(printable_ascii(b" ~"));
        assert!(printable_ascii(b""));
    }

    #[test]
    fn escapes_terminal_sequences_and_bidi() {
        let s = evidence_text(b"GET /\x1b[31mred\x07 \xe2\x80\xae evil");
        assert_eq!(s, "GET /\\x1b[31mred\\x07 \\u{202e} evil");
    }

    #[test]
    fn escaped_borrows_clean_text_and_matches_escape_controls() {
        for clean in [
            "",
            "GET /a?b=c HTTP/1.1",
            "管理者 /商品/一覧",
            "a\\x1b literal",
        ] {
            assert!(matches!(escaped(clean), Cow::Borrowed(_)), "{clean:?}");
        }
        for hostile in [
            "\x1b]8;;http://evil/\x07click\x1b]8;;\x07",
            "日本\u{9b}31m\u{202e}\u{7f}\u{feff}\t\n",
            "\x00",
        ] {
            let e = escaped(hostile);
            assert!(matches!(e, Cow::Owned(_)), "{hostile:?}");
            assert_eq!(e, escape_controls(hostile, usize::MAX));
            assert!(!needs_escape(&e));
        }
    }

    #[test]
    fn keep_lines_escapes_all_but_line_breaks_and_tabs() {
        assert!(matches!(
            escape_controls_keep_lines("a\n\tb 日本"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls_keep_lines("note\n\x1b[2J\r\u{202e}x\t"),
            "note\n\\x1b[2J\\x0d\\u{202e}x\t"
        );
    }

    #[test]
    fn html_escape_covers_text_and_attributes() {
        assert_eq!(
            html_escape(r#"<a href='x' onclick="y"=`z`>&"#),
            "&lt;a href&#61;&#39;x&#39; onclick&#61;&quot;y&quot;&#61;&#96;z&#96;&gt;&amp;"
        );
    }

    #[test]
    fn replaces_invalid_utf8_and_caps() {
        let s = evidence_text(b"\xff\xfeabc");
        assert_eq!(s, "\u{fffd}\u{fffd}abc");
        let long = vec![b'a'; 10_000];
        assert!(evidence_text(&long).len() <= MAX_EVIDENCE_TEXT + 4);
    }
}
