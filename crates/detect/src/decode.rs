//! Decoding request targets the way a server would before matching attack patterns:
//! percent-decoding (twice, to see through double encoding), `+` as space in queries,
//! Apache's `\xHH` / `\"` log escapes, and ASCII lower-casing.

/// Decodes `target` into `out` (cleared first). Returns `true` when anything was decoded.
pub fn decode_target(target: &str, out: &mut Vec<u8>) -> bool {
    decode(target, out, true)
}

/// [`decode_target`] without the lower-casing: the path as the server's file system sees
/// it, for naming a file (on Linux `Shell.PHP` and `shell.php` are two files). The bytes
/// differ from [`decode_target`]'s only in letter case, so positions are the same.
pub fn decode_target_keep_case(target: &str, out: &mut Vec<u8>) -> bool {
    decode(target, out, false)
}

fn decode(target: &str, out: &mut Vec<u8>, lower: bool) -> bool {
    out.clear();
    let b = target.as_bytes();
    if memchr::memchr3(b'%', b'\\', b'+', b).is_none() {
        // Nothing to decode (the usual case): lower-casing is all there is.
        out.extend_from_slice(b);
        if lower {
            out.make_ascii_lowercase();
        }
        return false;
    }
    let mut changed = false;
    let qpos = memchr::memchr(b'?', b).unwrap_or(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'%' if hex2(b.get(i + 1), b.get(i + 2)).is_some() => {
                out.push(hex2(b.get(i + 1), b.get(i + 2)).unwrap_or(b'%'));
                i += 3;
                changed = true;
                continue;
            }
            b'%' if (b.get(i + 1) == Some(&b'u') || b.get(i + 1) == Some(&b'U'))
                && i + 5 < b.len()
                && hex2(b.get(i + 2), b.get(i + 3)) == Some(0)
                && hex2(b.get(i + 4), b.get(i + 5)).is_some() =>
            {
                // IIS-style %u00XX
                out.push(hex2(b.get(i + 4), b.get(i + 5)).unwrap_or(b'%'));
                i += 6;
                changed = true;
                continue;
            }
            b'\\' if b.get(i + 1) == Some(&b'x') && hex2(b.get(i + 2), b.get(i + 3)).is_some() => {
                out.push(hex2(b.get(i + 2), b.get(i + 3)).unwrap_or(b'\\'));
                i += 4;
                changed = true;
                continue;
            }
            b'\\' if matches!(b.get(i + 1), Some(b'"') | Some(b'\\')) => {
                out.push(b[i + 1]);
                i += 2;
                changed = true;
                continue;
            }
            b'+' if i > qpos => {
                out.push(b' ');
                changed = true;
            }
            _ => out.push(if lower { c.to_ascii_lowercase() } else { c }),
        }
        i += 1;
    }
    // A second round of percent-decoding for double-encoded payloads (%252e → %2e → .).
    if changed && memchr::memchr(b'%', out).is_some() {
        let mut second = Vec::with_capacity(out.len());
        let mut j = 0;
        while j < out.len() {
            if out[j] == b'%' {
                if let Some(v) = hex2(out.get(j + 1), out.get(j + 2)) {
                    second.push(v);
                    j += 3;
                    continue;
                }
            }
            second.push(out[j]);
            j += 1;
        }
        *out = second;
    }
    if lower {
        out.make_ascii_lowercase();
    }
    changed
}

fn hex(c: Option<&u8>) -> Option<u8> {
    match c? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn hex2(a: Option<&u8>, b: Option<&u8>) -> Option<u8> {
    Some(hex(a)? << 4 | hex(b)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        let mut v = Vec::new();
        decode_target(s, &mut v);
        String::from_utf8_lossy(&v).into_owned()
    }

    #[test]
    fn keeping_case_differs_only_in_case() {
        // The web-shell detector lower-cases the case-kept decoding instead of decoding twice.
        for t in [
            "/A/Shell.PHP?Cmd=ID",
            "/x%2EPhP?a=B+C",
            "/%252E%252E/Etc",
            "/x\\x2EpHp",
            "/%u0041dmin/%41.php",
            "/a+b?c+D=%2B",
        ] {
            let (mut lower, mut cased) = (Vec::new(), Vec::new());
            assert_eq!(
                decode_target(t, &mut lower),
                decode_target_keep_case(t, &mut cased)
            );
            cased.make_ascii_lowercase();
            assert_eq!(lower, cased, "{t}");
        }
    }

    #[test]
    fn decodes_layers() {
        assert_eq!(d("/a?q=%27%20OR%201=1"), "/a?q=' or 1=1");
        assert_eq!(d("/%252e%252e/etc"), "/../etc");
        assert_eq!(d("/x?a=b+c"), "/x?a=b c");
        assert_eq!(d("/a+b"), "/a+b");
        assert_eq!(d(r"/x?q=\x22<SCRIPT>"), "/x?q=\"<script>");
        assert_eq!(d("/%u002e%u002e/"), "/../");
        assert_eq!(d("/bad%zz%"), "/bad%zz%");
    }
}
