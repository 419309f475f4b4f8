//! JSON text that never carries a raw terminal control or bidi character.
//!
//! `serde_json` escapes only `"`, `\` and characters below U+0020. A string can still hold DEL,
//! the C1 controls U+0080–U+009F (U+009B starts a CSI sequence on some terminals) and the
//! bidi and zero-width format characters that [`crate::text::is_unsafe_char`] names; written
//! as is they reach whoever runs `cat` or `jq` on the output. [`SafeFormatter`] writes those
//! as `\uXXXX` escapes instead. The escape is JSON's own, so a consumer decodes exactly the
//! same string; output without such characters is byte-identical to `serde_json`'s.
//!
//! Every JSON view of ecir writes through [`to_writer`] / [`to_writer_pretty`] (or, for a
//! hand-written line, [`write_str_body`], which escapes the same way).

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter, PrettyFormatter, Serializer};

/// A [`Formatter`] that delegates to `F` and additionally escapes DEL, C1 controls and bidi /
/// zero-width format characters inside strings (and object keys) as `\uXXXX`.
#[derive(Clone, Debug, Default)]
pub struct SafeFormatter<F>(pub F);

/// Forwards formatter methods that take only the writer and plain values to the inner one.
macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            #[inline]
            fn $name<W>(&mut self, writer: &mut W $(, $arg: $ty)*) -> io::Result<()>
            where
                W: ?Sized + io::Write,
            {
                self.0.$name(writer $(, $arg)*)
            }
        )*
    };
}

impl<F: Formatter> Formatter for SafeFormatter<F> {
    delegate! {
        write_null();
        write_bool(value: bool);
        write_i8(value: i8);
        write_i16(value: i16);
        write_i32(value: i32);
        write_i64(value: i64);
        write_i128(value: i128);
        write_u8(value: u8);
        write_u16(value: u16);
        write_u32(value: u32);
        write_u64(value: u64);
        write_u128(value: u128);
        write_f32(value: f32);
        write_f64(value: f64);
        write_number_str(value: &str);
        begin_string();
        end_string();
        write_char_escape(char_escape: CharEscape);
        write_byte_array(value: &[u8]);
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        end_object_key();
        begin_object_value();
        end_object_value();
        write_raw_fragment(fragment: &str);
    }

    /// `serde_json` hands over runs of a string with `"`, `\` and C0 already taken out.
    #[inline]
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        let bytes = fragment.as_bytes();
        if below_del(bytes) {
            return self.0.write_string_fragment(writer, fragment);
        }
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            match unsafe_at(bytes, i) {
                None => i += 1,
                Some((cp, len)) => {
                    self.0.write_string_fragment(writer, &fragment[start..i])?;
                    writer.write_all(&u_escape(cp))?;
                    i += len;
                    start = i;
                }
            }
        }
        self.0.write_string_fragment(writer, &fragment[start..])
    }
}

/// Whether every byte is below DEL (ASCII without DEL). Eight bytes at a time: a byte is
/// DEL or above when it, or it plus one, has its top bit set (a carry out of a byte happens
/// only from 0xff, which is caught by its own top bit).
#[inline]
fn below_del(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let mut words = b.chunks_exact(8);
    let mut acc = 0u64;
    for w in &mut words {
        let w = u64::from_le_bytes(w.try_into().expect("eight bytes"));
        acc |= w | w.wrapping_add(ONES);
    }
    acc & TOPS == 0 && words.remainder().iter().all(|&c| c < 0x7f)
}

/// If the character starting at `bytes[i]` is one the safe writers escape beyond what
/// `serde_json` does (DEL, C1, bidi / zero-width format characters), its code point and
/// UTF-8 length. `bytes` is valid UTF-8 and `i` a character boundary or a continuation byte
/// (which never matches).
#[inline]
fn unsafe_at(bytes: &[u8], i: usize) -> Option<(u32, usize)> {
    let b = bytes[i];
    if b < 0x7f {
        return None;
    }
    let at = |k: usize| bytes.get(i + k).copied().unwrap_or(0);
    match b {
        0x7f => Some((0x7f, 1)),
        // U+0080..=U+009F: C2 80..=C2 9F.
        0xc2 if (0x80..=0x9f).contains(&at(1)) => Some((u32::from(at(1)), 2)),
        // U+2000..=U+207F: E2 80..=E2 81 xx.
        0xe2 if matches!(at(1), 0x80 | 0x81) => {
            let cp = 0x2000 | (u32::from(at(1) & 0x3f) << 6) | u32::from(at(2) & 0x3f);
            let c = char::from_u32(cp)?;
            crate::text::is_unsafe_char(c).then_some((cp, 3))
        }
        0xef if at(1) == 0xbb && at(2) == 0xbf => Some((0xfeff, 3)),
        _ => None,
    }
}

/// `\uXXXX` with lower-case hex, as `serde_json` writes C0 controls.
#[inline]
fn u_escape(cp: u32) -> [u8; 6] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let h = |shift: u32| HEX[((cp >> shift) & 0xf) as usize];
    [b'\\', b'u', h(12), h(8), h(4), h(0)]
}

/// Writes `s` escaped as inside a JSON string (without the quotes), byte-identical to what
/// [`to_writer`] writes for it: `"` and `\`, the short escapes `\b \f \n \r \t`, other C0
/// controls, DEL, C1 and bidi / zero-width characters as `\uXXXX`; everything else as is.
/// For writers that build JSON lines by hand in a hot loop.
pub fn write_str_body(b: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if crate::text::printable_ascii(bytes) {
        // Nearly every log field: only quotes and backslashes to escape.
        let mut start = 0;
        for i in memchr::memchr2_iter(b'"', b'\\', bytes) {
            b.extend_from_slice(&bytes[start..i]);
            b.push(b'\\');
            b.push(bytes[i]);
            start = i + 1;
        }
        b.extend_from_slice(&bytes[start..]);
        return;
    }
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let short: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            0x20..=0x7e => {
                i += 1;
                continue;
            }
            _ => match unsafe_at(bytes, i) {
                None => {
                    i += 1;
                    continue;
                }
                Some((cp, len)) => {
                    b.extend_from_slice(&bytes[start..i]);
                    b.extend_from_slice(&u_escape(cp));
                    i += len;
                    start = i;
                    continue;
                }
            },
        };
        b.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            b.extend_from_slice(&u_escape(u32::from(c)));
        } else {
            b.extend_from_slice(short);
        }
        i += 1;
        start = i;
    }
    b.extend_from_slice(&bytes[start..]);
}

/// `serde_json::to_writer` through [`SafeFormatter`] (compact).
pub fn to_writer<W: io::Write, T: ?Sized + Serialize>(
    writer: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut ser = Serializer::with_formatter(writer, SafeFormatter(CompactFormatter));
    value.serialize(&mut ser)
}

/// `serde_json::to_writer_pretty` through [`SafeFormatter`] (two-space indent).
pub fn to_writer_pretty<W: io::Write, T: ?Sized + Serialize>(
    writer: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut ser = Serializer::with_formatter(writer, SafeFormatter(PrettyFormatter::new()));
    value.serialize(&mut ser)
}

/// `serde_json::to_string` through [`SafeFormatter`].
pub fn to_string<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<String> {
    let mut v = Vec::with_capacity(128);
    to_writer(&mut v, value)?;
    Ok(String::from_utf8(v).expect("serde_json writes UTF-8"))
}

/// `serde_json::to_string_pretty` through [`SafeFormatter`].
pub fn to_string_pretty<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<String> {
    let mut v = Vec::with_capacity(128);
    to_writer_pretty(&mut v, value)?;
    Ok(String::from_utf8(v).expect("serde_json writes UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// Every character the safe writers add an escape for, and its escape.
    fn extra_escapes() -> Vec<(char, String)> {
        (0u32..0x11_0000)
            .filter_map(char::from_u32)
            .filter(|&c| crate::text::is_unsafe_char(c) && c >= ' ')
            .map(|c| (c, format!("\\u{:04x}", c as u32)))
            .collect()
    }

    #[test]
    fn escapes_del_c1_and_bidi_and_round_trips() {
        let extra = extra_escapes();
        assert_eq!(extra.len(), 1 + 32 + 5 + 5 + 5 + 4 + 1, "{extra:?}");
        for (c, esc) in &extra {
            let s = format!("a{c}b日本{c}");
            let v = json!({ s.clone(): s });
            let text = to_string(&v).unwrap();
            assert_eq!(
                text,
                format!("{{\"a{esc}b日本{esc}\":\"a{esc}b日本{esc}\"}}")
            );
            assert!(!text.contains(*c));
            assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
            let mut body = Vec::new();
            write_str_body(&mut body, &s);
            assert_eq!(
                format!("\"{}\"", String::from_utf8(body).unwrap()),
                to_string(&s).unwrap()
            );
        }
    }

    #[test]
    fn below_del_checks_every_byte() {
        let mut b = vec![b'a'; 40];
        assert!(below_del(&b));
        for pos in [0, 7, 8, 15, 31, 32, 39] {
            for bad in [0x7f, 0x80, 0xc2, 0xff] {
                b[pos] = bad;
                assert!(!below_del(&b), "{bad:#x} at {pos}");
                b[pos] = 0x7e;
                assert!(below_del(&b));
                b[pos] = b'a';
            }
        }
        assert!(below_del(b""));
    }

    #[test]
    fn ordinary_text_is_byte_identical_to_serde_json() {
        // Every C0 control, quotes, backslashes, non-ASCII neighbours of the escaped ranges
        // (U+00A0, U+2010, U+2028, U+206F, U+FEFE) and a pretty-printed nested document.
        let mut s: String = (0u8..0x20).map(char::from).collect();
        s.push_str("\"\\/ ~\u{a0}\u{a1}\u{2010}\u{2028}\u{2070}\u{206f}\u{fefe}日本語</script>");
        let v = json!({"s": s, "n": [1, -2, 3.5, null, true], "o": {"k": "v", "e": {}, "a": []}});
        assert_eq!(to_string(&v).unwrap(), serde_json::to_string(&v).unwrap());
        assert_eq!(
            to_string_pretty(&v).unwrap(),
            serde_json::to_string_pretty(&v).unwrap()
        );
        for s in [
            s.as_str(),
            "",
            "plain",
            "say \"hi\" \\ back\\slash\\",
            "\"\\\"",
        ] {
            let mut body = Vec::new();
            write_str_body(&mut body, s);
            assert_eq!(
                format!("\"{}\"", String::from_utf8(body).unwrap()),
                serde_json::to_string(&s).unwrap()
            );
        }
    }

    #[test]
    fn terminal_sequences_leave_no_raw_control_bytes() {
        let s = "\u{1b}]8;;http://evil/\u{7}click\u{1b}]8;;\u{7} \u{9b}31m \u{202e}gpj.exe";
        let text = to_string_pretty(&json!({ "title": s })).unwrap();
        assert!(
            !text.bytes().any(|b| b < 0x20 && b != b'\n'),
            "raw C0 in {text:?}"
        );
        for raw in ["\u{9b}", "\u{202e}", "\u{7f}"] {
            assert!(!text.contains(raw), "{raw:?} in {text:?}");
        }
        assert!(text.contains("\\u009b31m \\u202egpj.exe"), "{text}");
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["title"], s);
    }
}
