//! The Common Log Format family written by Apache httpd and nginx: `common`, `combined`,
//! `vhost-combined` (a `host[:port]` prefix) and `combined-extra` (combined followed by extra
//! fields such as request time, upstream time, host and X-Forwarded-For).
//!
//! One tolerant parser reads every variant, so a file mixing them (a 408 line without
//! referer in a combined log) loses nothing; detection only names the variant most lines use.
//! Fields are located around the `[time]` bracket: what precedes it is
//! `[vhost] client ident user`, what follows is `"request" status bytes` and optional quoted
//! or bare fields. A status written as `-` (traefik, no response) reads as unknown.

use std::borrow::Cow;

use ecir_model::{Event, SourceKind};

use crate::context::{parse_ip, IpCache, ParseContext};
use crate::time::TimeCache;
use crate::{skip, EventSink, Format, Parser};

pub struct Clf;

const VARIANTS: &[(&str, &str)] = &[
    ("common", "Apache/nginx Common Log Format: %h %l %u %t \"%r\" %>s %b"),
    ("combined", "Apache/nginx combined: common plus \"Referer\" \"User-Agent\""),
    ("vhost-combined", "Apache vhost_combined / nginx $host-prefixed combined: %v:%p before %h"),
    (
        "combined-extra",
        "combined followed by extra fields (request time, upstream time, \"host\", \"X-Forwarded-For\"; unknown extras ignored)",
    ),
];

const COMMON: usize = 0;
const COMBINED: usize = 1;
const VHOST: usize = 2;
const EXTRA: usize = 3;

impl Format for Clf {
    fn variants(&self) -> &'static [(&'static str, &'static str)] {
        VARIANTS
    }

    fn source(&self) -> SourceKind {
        SourceKind::Web
    }

    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)> {
        let ctx = ParseContext::default();
        let mut times = TimeCache::default();
        let mut counts = [0usize; 4];
        let mut ok = 0usize;
        for line in sample {
            // Read as the parser reads (invalid UTF-8 replaced, e.g. a Latin-1 user agent),
            // so a sample is judged on the lines the parser would take.
            let Ok(s) = crate::line_text(line) else {
                continue;
            };
            if let Ok(p) = parse_line(&s, &ctx, &mut times, &mut IpCache::default()) {
                ok += 1;
                counts[p.variant] += 1;
            }
        }
        if ok == 0 {
            return None;
        }
        let variant = (0..4)
            .max_by_key(|&i| (counts[i], usize::MAX - i))
            .unwrap_or(COMBINED);
        Some((variant, ok as f64 / sample.len() as f64))
    }

    fn parser(&self, _variant: usize, ctx: &ParseContext) -> Box<dyn Parser> {
        Box::new(ClfParser {
            ctx: ctx.clone(),
            times: TimeCache::default(),
            ips: IpCache::default(),
        })
    }
}

struct ClfParser {
    ctx: ParseContext,
    times: TimeCache,
    ips: IpCache,
}

impl Parser for ClfParser {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink) {
        // Checks and UTF-8 reading in one pass over the usual (ASCII) line.
        let text: Cow<'_, str> = match crate::read_line(bytes) {
            crate::LineRead::Text(t) => t,
            crate::LineRead::Skip(reason) => return sink.skip(line, reason, bytes),
            // Apache and nginx escape control characters: a raw CR separates records.
            crate::LineRead::BareCr => {
                return crate::feed_split_at_cr(line, bytes, sink, &mut |record, sink| {
                    self.feed(line, record, sink)
                })
            }
        };
        // Matched by reference: the event is read where parse_line built it, not moved.
        let parsed = parse_line(&text, &self.ctx, &mut self.times, &mut self.ips);
        match &parsed {
            Ok(p) => sink.event(&p.event, line, bytes),
            Err(reason) => sink.skip(line, reason, bytes),
        }
    }
}

/// A parsed line and the variant it matched.
pub struct Parsed<'a> {
    pub event: Event<'a>,
    pub variant: usize,
}

/// Parses one line of the CLF family.
///
/// The time bracket is the first `[` followed by `dd/Mon/yyyy:` from which the whole line
/// parses: the user field before it is the client's to choose (a Basic-auth user name is
/// logged unescaped), so a fake bracket there must not hide the request. Only when no
/// bracket gives a line is the first one's reason returned.
pub fn parse_line<'a>(
    s: &'a str,
    ctx: &ParseContext,
    times: &mut TimeCache,
    ips: &mut IpCache,
) -> Result<Parsed<'a>, &'static str> {
    let b = s.as_bytes();
    let mut search = 0;
    let mut first_error = None;
    loop {
        let Some(i) = memchr::memchr(b'[', &b[search..]) else {
            return Err(first_error.unwrap_or(skip::UNPARSEABLE));
        };
        let open = i + search;
        search = open + 1;
        if !(b.len() > open + 12
            && b[open + 3] == b'/'
            && b[open + 7] == b'/'
            && b[open + 12] == b':')
        {
            continue;
        }
        match parse_at(s, open, ctx, times, ips) {
            Ok(p) => return Ok(p),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
}

/// Parses the line `s` whose time bracket opens at `open`.
fn parse_at<'a>(
    s: &'a str,
    open: usize,
    ctx: &ParseContext,
    times: &mut TimeCache,
    ips: &mut IpCache,
) -> Result<Parsed<'a>, &'static str> {
    let b = s.as_bytes();
    // The usual `[dd/Mon/yyyy:hh:mm:ss +zzzz]` closes 27 bytes on: look there first.
    let close = if b.get(open + 27) == Some(&b']')
        && !b[open..open + 27]
            .iter()
            .fold(false, |a, &c| a | (c == b']'))
    {
        open + 27
    } else {
        memchr::memchr(b']', &b[open..]).ok_or(skip::UNPARSEABLE)? + open
    };
    let ts = times.clf(&b[open + 1..close]).ok_or(skip::BAD_TIMESTAMP)?;

    // Before the bracket: [vhost] client ident user.
    let mut prefix_buf = [""; MAX_PREFIX];
    let head = trim_end(&s[..open]);
    let prefix = tokens(head, &mut prefix_buf);
    // Four tokens or more: a vhost, or a user name with spaces; read from the left where the
    // client is an address (first, or second after a vhost).
    let left = if prefix.len() >= 4 {
        left_anchored(head)
    } else {
        None
    };
    let (vhost, client, user, xff_first) = match (prefix.len(), left) {
        (0, _) => return Err(skip::UNPARSEABLE),
        (1, _) => (None, prefix[0], None, None),
        (2, _) => (None, prefix[0], Some(prefix[1]), None),
        (_, Some((vhost, client, user))) => (vhost, client, user, None),
        (n, None) => {
            let before = if n >= 4 { Some(prefix[n - 4]) } else { None };
            let (vhost, xff) = match before {
                Some(t) if t.starts_with('"') => (None, Some(t.trim_matches('"'))),
                Some(t) => (Some(t), None),
                None => (None, None),
            };
            (vhost, prefix[n - 3], Some(prefix[n - 1]), xff)
        }
    };

    // After the bracket: "request" status bytes [fields...]
    let mut rest = &s[close + 1..];
    rest = trim_start(rest);
    let (request, after) = quoted(rest).ok_or(skip::UNPARSEABLE)?;
    rest = trim_start(after);
    let (status_tok, after) = split_token(rest);
    // `-`: no response was written (traefik's CLF for a request the client abandoned or
    // the proxy dropped): the request is kept, with its status unknown.
    let status = if status_tok == "-" {
        None
    } else {
        Some(
            decimal(status_tok)
                .filter(|s| (100..=999).contains(s))
                .ok_or(skip::UNPARSEABLE)? as u16,
        )
    };
    rest = trim_start(after);
    if rest.starts_with('"') {
        // Quoted fields straight after the status: a custom layout without `%b` (`"%r" %>s
        // "%{User-Agent}i" "Referer: %{Referer}i"`), whose quoted fields are not the referer
        // and user agent combined puts there. Read as combined, the user agent would be lost.
        return Err(skip::MISSING_FIELD);
    }
    let mut bytes = None;
    if !rest.is_empty() {
        let (tok, after) = split_token(rest);
        if tok == "-" {
            // No body sent; unknown when there was no response at all.
            bytes = status.map(|_| 0);
        } else {
            bytes = Some(decimal(tok).ok_or(skip::UNPARSEABLE)?);
        }
        rest = trim_start(after);
    }

    // Trailing fields.
    let mut field_buf: [Field<'a>; MAX_FIELDS] = [Field::Bare(""); MAX_FIELDS];
    let mut n_fields = 0;
    while !rest.is_empty() && n_fields < MAX_FIELDS {
        if rest.starts_with('"') {
            match quoted(rest) {
                Some((v, after)) => {
                    field_buf[n_fields] = Field::Quoted(v);
                    n_fields += 1;
                    rest = trim_start(after);
                }
                None => return Err(skip::UNPARSEABLE),
            }
        } else {
            let (tok, after) = split_token(rest);
            field_buf[n_fields] = Field::Bare(tok);
            n_fields += 1;
            rest = trim_start(after);
        }
    }
    let fields = &field_buf[..n_fields];
    let (referer, user_agent, extras) = match fields {
        [Field::Quoted(r), Field::Quoted(u), extras @ ..] => (Some(*r), Some(*u), extras),
        _ => (None, None, fields),
    };
    let mut xff = xff_first;
    let mut host = None;
    let mut duration_ms = None;
    for f in extras {
        match f {
            Field::Quoted(v) if looks_like_ip_list(v) => xff = xff.or(Some(v)),
            Field::Quoted(v) if looks_like_host(v) => host = host.or(Some(*v)),
            Field::Bare(v) if duration_ms.is_none() => {
                if let Some(ms) = seconds_to_ms(v) {
                    duration_ms = Some(ms);
                }
            }
            _ => {}
        }
    }

    // The client field may itself be an X-Forwarded-For list (`a, b, c`).
    let (remote, xff) = if client.bytes().any(|c| c == b',') {
        let c = client.trim_matches('"');
        match c.rsplit_once(',') {
            Some((chain, last)) => (last.trim(), Some(chain)),
            None => (c, xff),
        }
    } else {
        (client, xff)
    };
    let client_ip = ctx.client_ip_cached(remote, xff.filter(|x| *x != "-"), ips);

    let (method, target, protocol) = split_request(request);
    let variant = if vhost.is_some() {
        VHOST
    } else if referer.is_none() {
        COMMON
    } else if extras.is_empty() {
        COMBINED
    } else {
        EXTRA
    };
    let dash = |v: Option<&'a str>| v.filter(|v| *v != "-" && !v.is_empty()).map(Cow::Borrowed);
    Ok(Parsed {
        event: Event {
            ts: Some(ts),
            source: Some(SourceKind::Web),
            client_ip,
            method: method.map(Cow::Borrowed),
            target: target.map(Cow::Borrowed),
            protocol: protocol.map(Cow::Borrowed),
            status,
            bytes,
            referer: dash(referer),
            user_agent: dash(user_agent),
            host: dash(vhost.or(host)),
            user: dash(user),
            duration_ms,
            detail: Default::default(),
            query_memo: Default::default(),
        },
        variant,
    })
}

/// `s.parse::<u64>().ok()`, for the few digits of a status or size without the standard
/// parser's generic setup and overflow checks: an optional `+`, then one or more ASCII
/// digits. Up to 19 digits cannot overflow; longer texts take the standard parser.
#[inline(always)]
fn decimal(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let digits = match b {
        [b'+', rest @ ..] => rest,
        _ => b,
    };
    if digits.is_empty() || digits.len() > 19 {
        return s.parse().ok();
    }
    let mut v = 0u64;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    Some(v)
}

/// Trailing fields read after the status and size, at most.
const MAX_FIELDS: usize = 16;

#[derive(Copy, Clone)]
enum Field<'a> {
    Quoted(&'a str),
    Bare(&'a str),
}

/// Splits the text before the time bracket into fields; a quoted group is one field, and
/// `a, b, c` lists (X-Forwarded-For written in place of the client) stay together.
fn tokens<'s, 'o>(s: &'s str, out: &'o mut [&'s str; MAX_PREFIX]) -> &'o [&'s str] {
    let mut n = 0;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += 1;
            }
            i = (i + 1).min(b.len());
        } else {
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            // Join "a, b" lists: a token ending in ',' continues.
            while i < b.len() && b[i - 1] == b',' {
                while i < b.len() && b[i] == b' ' {
                    i += 1;
                }
                while i < b.len() && b[i] != b' ' {
                    i += 1;
                }
            }
        }
        // Only the last fields matter (`[vhost] client ident user`): keep a sliding window.
        if n == MAX_PREFIX {
            out.copy_within(1.., 0);
            n -= 1;
        }
        out[n] = &s[start..i];
        n += 1;
    }
    &out[..n]
}

/// Fields kept from before the time bracket, at most (the last ones).
const MAX_PREFIX: usize = 8;

/// Reads a `"…"` field honouring `\"` and `\\` escapes; returns the inside and the rest.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    loop {
        // Jump to the next quote or escape (a vector search, not a byte loop).
        let j = i + memchr::memchr2(b'"', b'\\', &b[i..])?;
        if b[j] == b'"' {
            return Some((&s[1..j], &s[j + 1..]));
        }
        i = j + 2;
        if i > b.len() {
            return None;
        }
    }
}

/// Whether `c` is an ASCII byte that `char::is_whitespace` does not count as white space.
#[inline]
fn ascii_non_space(c: u8) -> bool {
    c.is_ascii() && !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `s.trim_start()`, with the usual case (a few ASCII spaces before an ASCII byte) done
/// byte by byte; anything else takes the standard (Unicode white space) way.
#[inline]
fn trim_start(s: &str) -> &str {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    match b.get(i) {
        None => "",
        Some(&c) if ascii_non_space(c) => &s[i..],
        Some(_) => s[i..].trim_start(),
    }
}

/// `s.trim_end()`, the same way as [`trim_start`].
#[inline]
fn trim_end(s: &str) -> &str {
    let b = s.as_bytes();
    let mut n = b.len();
    while n > 0 && b[n - 1] == b' ' {
        n -= 1;
    }
    match n {
        0 => "",
        _ if ascii_non_space(b[n - 1]) => &s[..n],
        _ => s[..n].trim_end(),
    }
}

/// The text up to the first space, and the rest from it.
/// `[vhost] client ident user…` read from the left: the client is the first token when it is
/// an IP address, else the second when that one is (the first being the vhost); the user is
/// everything after the ident, spaces included (neither Apache's `%u` nor nginx's
/// `$remote_user` escapes them, so counting tokens from the right would take a part of a
/// user name for the client). `None` when neither token is an address (a host name
/// logged for the client, an X-Forwarded-For list in quotes).
fn left_anchored(head: &str) -> Option<(Option<&str>, &str, Option<&str>)> {
    let is_ip = |t: &str| t.parse::<std::net::IpAddr>().is_ok();
    let (first, rest) = split_token(trim_start(head));
    if first.starts_with('"') {
        // `"X-Forwarded-For" client ident user`: read from the right.
        return None;
    }
    let (vhost, client, rest) = if is_ip(first) {
        (None, first, rest)
    } else {
        let (second, rest) = split_token(trim_start(rest));
        if !is_ip(second) {
            return None;
        }
        (Some(first), second, rest)
    };
    let (_ident, rest) = split_token(trim_start(rest));
    let user = trim_start(rest);
    Some((vhost, client, (!user.is_empty()).then_some(user)))
}

fn split_token(s: &str) -> (&str, &str) {
    match find_space(s.as_bytes()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Bytes looked at one by one before a vector search: tokens here (status, size, method)
/// are short, and a call to the vector search costs more than that.
const SHORT: usize = 16;

/// The first space of `b`.
#[inline]
fn find_space(b: &[u8]) -> Option<usize> {
    let head = b.len().min(SHORT);
    match b[..head].iter().position(|&c| c == b' ') {
        Some(i) => Some(i),
        None => memchr::memchr(b' ', &b[head..]).map(|i| head + i),
    }
}

/// The last space of `b`.
#[inline]
fn rfind_space(b: &[u8]) -> Option<usize> {
    let tail = b.len().saturating_sub(SHORT);
    match b[tail..].iter().rposition(|&c| c == b' ') {
        Some(i) => Some(tail + i),
        None => memchr::memrchr(b' ', &b[..tail]),
    }
}

/// `METHOD target PROTOCOL`, robust to spaces inside the target; `-`, empty or garbage
/// request lines give no method.
fn split_request(r: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
    if r.is_empty() || r == "-" {
        return (None, None, None);
    }
    let Some(sp) = find_space(r.as_bytes()) else {
        return (None, None, None);
    };
    let (method, rest) = (&r[..sp], &r[sp + 1..]);
    let method_ok = !method.is_empty()
        && method.len() <= 24
        && method
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c == b'_' || c == b'-');
    if !method_ok {
        return (None, None, None);
    }
    match rfind_space(rest.as_bytes()) {
        Some(sp) if rest[sp + 1..].starts_with("HTTP/") => {
            (Some(method), Some(&rest[..sp]), Some(&rest[sp + 1..]))
        }
        _ => (Some(method), Some(rest), None),
    }
}

fn looks_like_ip_list(v: &str) -> bool {
    v == "-" || v.split(',').all(|p| parse_ip(p.trim()).is_some())
}

fn looks_like_host(v: &str) -> bool {
    !v.is_empty()
        && v.len() < 256
        && v.contains('.')
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'_'))
}

fn seconds_to_ms(v: &str) -> Option<u64> {
    let f: f64 = v.parse().ok()?;
    (f.is_finite() && (0.0..1e7).contains(&f) && v.contains('.'))
        .then(|| (f * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_reads_as_the_standard_parser() {
        for t in [
            "",
            "+",
            "-",
            "0",
            "200",
            "+200",
            "-200",
            "007",
            "2 0",
            "20a",
            "a20",
            "++1",
            "65535",
            "65536",
            "9999999999999999999",
            "+9999999999999999999",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999",
            "\u{0663}",
            "1\u{0663}",
        ] {
            assert_eq!(decimal(t), t.parse::<u64>().ok(), "{t:?}");
        }
    }
    use crate::testing::parse_all;
    use crate::{by_name, detect};

    fn one(line: &str) -> Event<'static> {
        let c = parse_all(by_name("combined").unwrap(), &ParseContext::default(), line);
        assert!(c.skips.is_empty(), "skipped: {line}");
        c.events.into_iter().next().unwrap().1
    }

    #[test]
    fn status_dash_is_an_unknown_status() {
        // traefik's CLF for a request that got no response (here a scanner's).
        let e = one(
            r#"192.0.2.44 - - [28/Sep/2022:13:38:04 +0000] "GET /mobileadmin/home.cs HTTP/1.1" - - "-" "Mozilla/5.00 (Nikto/2.1.5) (Evasions:None) (Test:000001)" 7 "router@docker" "-" 0ms"#,
        );
        assert_eq!(e.client_ip, Some("192.0.2.44".parse().unwrap()));
        assert_eq!(e.target.as_deref(), Some("/mobileadmin/home.cs"));
        assert_eq!(e.status, None);
        assert_eq!(e.bytes, None);
        assert!(e.user_agent.as_deref().unwrap().contains("Nikto"));
        let e = one(r#"192.0.2.45 - - [28/Sep/2022:13:38:05 +0000] "GET / HTTP/1.1" - 0"#);
        assert_eq!((e.status, e.bytes), (None, Some(0)));
        // Only `-`: another word there is no status.
        let c = parse_all(
            by_name("combined").unwrap(),
            &ParseContext::default(),
            r#"192.0.2.45 - - [28/Sep/2022:13:38:05 +0000] "GET / HTTP/1.1" ok 0 "-" "UA""#,
        );
        assert_eq!(c.skips, vec![(1, skip::UNPARSEABLE)]);
    }

    #[test]
    fn a_layout_without_the_size_is_skipped_not_misread() {
        // A custom LogFormat (`%h %t "%r" %>s "%{User-Agent}i" "Referer: %{Referer}i"`, the
        // shape of one in the ModSecurity CRS issue tracker): read as combined, the user agent
        // would have been the referer text.
        let line = r#"192.0.2.60 [14/Apr/2019:06:29:01 +0300] "GET /faq/ HTTP/1.0" 403 "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/62.0" "Referer: -""#;
        let c = parse_all(by_name("combined").unwrap(), &ParseContext::default(), line);
        assert!(c.events.is_empty());
        assert_eq!(c.skips, vec![(1, skip::MISSING_FIELD)]);
        assert!(Clf.detect(&[line.as_bytes()]).is_none());
        // The usual layouts, with or without ident and user, still parse.
        one(r#"192.0.2.60 [14/Apr/2019:06:29:01 +0300] "GET /faq/ HTTP/1.0" 403 199 "-" "UA""#);
        one(r#"192.0.2.60 - - [14/Apr/2019:06:29:01 +0300] "GET /faq/ HTTP/1.0" 403 -"#);
    }

    #[test]
    fn reference_samples_parse() {
        // Verbatim lines from the httpd docs and beats fixtures (shared/reference/formats).
        let e = one(
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#,
        );
        assert_eq!(e.client_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(e.user.as_deref(), Some("frank"));
        assert_eq!(e.method.as_deref(), Some("GET"));
        assert_eq!(e.target.as_deref(), Some("/apache_pb.gif"));
        assert_eq!(e.status, Some(200));
        assert_eq!(e.bytes, Some(2326));
        assert_eq!(
            e.referer.as_deref(),
            Some("http://www.example.com/start.html")
        );
        assert_eq!(
            e.user_agent.as_deref(),
            Some("Mozilla/4.08 [en] (Win98; I ;Nav)")
        );
        assert_eq!(e.ts.unwrap().to_rfc3339(), "2000-10-10T13:55:36-07:00");

        let e = one(r#"::1 - - [26/Dec/2016:16:16:48 +0200] "-" 408 -"#);
        assert_eq!(e.client_ip, Some("::1".parse().unwrap()));
        assert_eq!(e.method, None);
        assert_eq!(e.status, Some(408));

        let e = one(
            r#"monitoring-server - - [29/May/2017:19:02:48 +0000] "GET /status HTTP/1.1" 200 612 "-" "Mozilla/5.0" "-""#,
        );
        assert_eq!(e.client_ip, None);
        assert_eq!(e.referer, None);

        let e = one(
            r#"vhost1.domaine.fr 123.123.123.123 - - [04/Jul/2019:09:20:46 +0200] "GET / HTTP/1.1" 200 32953 "-" "Mozilla/5.0""#,
        );
        assert_eq!(e.host.as_deref(), Some("vhost1.domaine.fr"));
        assert_eq!(e.client_ip, Some("123.123.123.123".parse().unwrap()));

        let e = one(
            r#"shop.example.jp:443 203.0.113.7 - - [12/Mar/2024:03:14:15 +0900] "POST /admin/login HTTP/1.1" 302 1043 "https://shop.example.jp/admin/login" "Mozilla/5.0 (Windows NT 10.0; Win64; x64)""#,
        );
        assert_eq!(e.host.as_deref(), Some("shop.example.jp:443"));
        assert_eq!(e.method.as_deref(), Some("POST"));

        let e = one(
            r#"10.0.0.2, 10.0.0.1, 127.0.0.1 - - [07/Dec/2016:11:05:07 +0100] "GET /ocelot HTTP/1.1" 200 571 "-" "Mozilla/5.0""#,
        );
        assert_eq!(e.client_ip, Some("127.0.0.1".parse().unwrap()));

        let e = one(
            r#""10.5.102.222, 199.96.1.1, 204.246.1.1" 10.2.1.185 - - [22/Jan/2016:13:18:29 +0000] "GET /assets/xxxx?q=100 HTTP/1.1" 200 25507 "-" "Amazon CloudFront""#,
        );
        assert_eq!(e.client_ip, Some("10.2.1.185".parse().unwrap()));
        assert_eq!(e.target.as_deref(), Some("/assets/xxxx?q=100"));

        let e = one(r#"127.0.0.1 - - [12/Apr/2018:09:48:40 +0200] "" 400 0 "-" "-""#);
        assert_eq!(e.status, Some(400));

        let e =
            one(r#"example.com:80 unix: - - [26/Feb/2019:15:39:42 +0100] "hello" 400 173 "-" "-""#);
        assert_eq!(e.client_ip, None);
        assert_eq!(e.method, None);

        let e = one(
            r#"198.51.100.23 - - [12/Mar/2024:10:02:11 +0900] "POST /shopping/checkout HTTP/2.0" 302 0 "https://shop.example.jp/shopping/confirm" "Mozilla/5.0" 1.532 1.530 "shop.example.jp" "-""#,
        );
        assert_eq!(e.duration_ms, Some(1532));
        assert_eq!(e.host.as_deref(), Some("shop.example.jp"));
    }

    #[test]
    fn trusted_proxy_uses_trailing_xff() {
        let ctx = ParseContext {
            trust_proxy: vec!["10.0.0.0/8".parse().unwrap()],
            ..Default::default()
        };
        let c = parse_all(
            by_name("combined-extra").unwrap(),
            &ctx,
            r#"10.0.0.1 - - [12/Mar/2024:10:02:11 +0900] "GET / HTTP/1.1" 200 5 "-" "UA" "203.0.113.9, 10.0.0.7""#,
        );
        assert_eq!(
            c.events[0].1.client_ip,
            Some("203.0.113.9".parse().unwrap())
        );
    }

    #[test]
    fn a_user_name_cannot_choose_the_client_or_hide_the_request() {
        let req = r#""GET /.env HTTP/1.1" 200 900 "-" "UA""#;
        let at = |prefix: &str| one(&format!("{prefix} [03/Nov/2026:01:01:00 +0900] {req}"));
        // Spaces in the user (Basic auth, logged unescaped): the client is the first token.
        let e = at("203.0.113.66 - x 192.0.2.250 - z");
        assert_eq!(e.client_ip, Some("203.0.113.66".parse().unwrap()));
        assert_eq!(e.user.as_deref(), Some("x 192.0.2.250 - z"));
        let e = at("203.0.113.66 - a b");
        assert_eq!(e.client_ip, Some("203.0.113.66".parse().unwrap()));
        assert_eq!(e.user.as_deref(), Some("a b"));
        // After a vhost, the second token.
        let e = at("shop.example.jp:443 2001:db8::7 - a b c");
        assert_eq!(e.client_ip, Some("2001:db8::7".parse().unwrap()));
        assert_eq!(e.user.as_deref(), Some("a b c"));
        // A fake time bracket in the user, closed or not: the real one is found.
        for user in ["[01/Jan/2020:00:00:00 +0000]", "[01/Jan/2020:00:00:00"] {
            let e = at(&format!("203.0.113.67 - {user}"));
            assert_eq!(e.client_ip, Some("203.0.113.67".parse().unwrap()), "{user}");
            assert_eq!(e.target.as_deref(), Some("/.env"), "{user}");
            assert_eq!(e.ts.map(|t| t.secs()), Some(1_793_635_260), "{user}");
        }
        // An X-Forwarded-For list in quotes before the client is still read from the right.
        let e = at(r#""198.51.100.9" 203.0.113.5 - -"#);
        assert_eq!(e.client_ip, Some("203.0.113.5".parse().unwrap()));
    }

    #[test]
    fn escaped_quotes_and_spaces_in_target() {
        let e = one(
            r#"1.2.3.4 - - [12/Mar/2024:10:02:11 +0900] "GET /a b?q=\"x\" HTTP/1.1" 404 5 "-" "sqlmap/1.7 \"quoted\"""#,
        );
        assert_eq!(e.target.as_deref(), Some(r#"/a b?q=\"x\""#));
        assert_eq!(e.user_agent.as_deref(), Some(r#"sqlmap/1.7 \"quoted\""#));
    }

    #[test]
    fn space_search_agrees_with_memchr() {
        for len in 0..40 {
            for a in 0..len {
                for z in a..len {
                    let mut b = vec![b'x'; len];
                    b[a] = b' ';
                    b[z] = b' ';
                    assert_eq!(find_space(&b), memchr::memchr(b' ', &b));
                    assert_eq!(rfind_space(&b), memchr::memrchr(b' ', &b));
                }
            }
            let b = vec![b'x'; len];
            assert_eq!(find_space(&b), None);
            assert_eq!(rfind_space(&b), None);
        }
    }

    #[test]
    fn time_bracket_found_whatever_its_length() {
        for line in [
            r#"1.2.3.4 - - [12/Mar/2024:10:02:11 +0900] "GET / HTTP/1.1" 200 5"#,
            r#"1.2.3.4 - - [12/Mar/2024:10:02:11 +0900]] "GET / HTTP/1.1" 200 5"#,
            r#"1.2.3.4 - - [12/Mar/2024:10:02:11.123 +0900] "GET / HTTP/1.1" 200 5"#,
            r#"1.2.3.4 - - [12/Mar/2024:10:02:11] "GET / HTTP/1.1" 200 5 "x]" "y""#,
            r#"1.2.3.4 - - [12/Mar/2024:10:02:11 +09] "GET /a]b HTTP/1.1" 200 5"#,
        ] {
            let c = parse_all(by_name("combined").unwrap(), &ParseContext::default(), line);
            assert_eq!(c.events.len() + c.skips.len(), 1, "{line}");
        }
    }

    #[test]
    fn trims_agree_with_std() {
        for t in [
            "",
            " ",
            "   ",
            "a",
            " a ",
            "  a b  ",
            "\t a",
            "a \t",
            " \u{b}a",
            "a\u{c} ",
            " \r\na",
            "a \n",
            "\u{3000}a",
            " \u{3000} a",
            "a\u{3000}",
            "a \u{a0} ",
            " \u{85}x",
            "x\u{2028} ",
            "\u{3042} ",
            " \u{3042}",
            "\u{0}",
            " \u{7f} ",
        ] {
            assert_eq!(trim_start(t), t.trim_start(), "{t:?}");
            assert_eq!(trim_end(t), t.trim_end(), "{t:?}");
        }
    }

    #[test]
    fn garbage_is_skipped_with_reason() {
        let c = parse_all(
            by_name("combined").unwrap(),
            &ParseContext::default(),
            "hello world\n1.2.3.4 - - [99/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 1\n1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" abc 1",
        );
        assert_eq!(
            c.skips,
            vec![
                (1, skip::UNPARSEABLE),
                (2, skip::BAD_TIMESTAMP),
                (3, skip::UNPARSEABLE)
            ]
        );
    }

    #[test]
    fn detects_variants() {
        let common = br#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
        let combined =
            br#"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326 "-" "UA""#;
        let vhost = br#"shop.example.jp:443 203.0.113.7 - - [12/Mar/2024:03:14:15 +0900] "GET / HTTP/1.1" 200 1 "-" "UA""#;
        let extra = br#"1.2.3.4 - - [12/Mar/2024:10:02:11 +0900] "GET / HTTP/2.0" 302 0 "-" "UA" 1.5 1.5 "shop.example.jp" "-""#;
        for (line, want) in [
            (&common[..], "common"),
            (&combined[..], "combined"),
            (&vhost[..], "vhost-combined"),
            (&extra[..], "combined-extra"),
        ] {
            let c = detect(&[line, line]).unwrap();
            assert_eq!(c.name(), want);
            assert_eq!(c.confidence, 1.0);
        }
        assert!(detect(&[b"just some text", b"more text"]).is_none());
    }

    #[test]
    fn detects_lines_with_invalid_utf8_the_parser_accepts() {
        // Latin-1 bytes in the user agent: the parser reads such lines lossily, so detection
        // must count them too.
        let latin1: &[u8] = b"192.0.2.7 - - [10/Oct/2024:13:55:36 +0000] \"GET / HTTP/1.1\" 200 12 \"-\" \"Mozilla/5.0 (caf\xe9; \xfcber)\"";
        let sample = [latin1; 4];
        let c = detect(&sample).expect("detected");
        assert_eq!(c.name(), "combined");
        assert_eq!(c.confidence, 1.0);
        let mut sink = crate::testing::Collect::default();
        c.format
            .parser(c.variant, &ParseContext::default())
            .feed(1, latin1, &mut sink);
        assert_eq!(sink.events.len(), 1, "the parser takes the line");
    }
}
