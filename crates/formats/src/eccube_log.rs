//! EC-CUBE application logs, as [`EventDetail::App`] events, with admin login lines as
//! [`EventDetail::Login`] (source `app`, so a login seen here and in the login history or the
//! access log is joined as one, citing each).
//!
//! - EC-CUBE 4 (`var/log/prod/admin-YYYY-MM-DD.log`, `front-…`, `site-…`): Monolog
//!   `[datetime] channel.LEVEL [session] [uid] [user_id] [class:function:line] - message context
//!   [METHOD, URL, IP, REFERER, UA]`. Monolog 1 writes `2021-05-10 12:00:00` (local time, read
//!   in `--tz`), Monolog 2 `2024-03-12T10:02:11.532114+09:00` (offset kept).
//! - EC-CUBE 3 (`app/log/admin_site_YYYY-MM-DD.log`, …): the same layout with
//!   `2016-10-01 12:12:12,132` times; 3.0.x before the UA field writes `[URL, IP, REFERER]`.
//! - EC-CUBE 2 (`data/logs/admin.log`, `gfPrintLog`): `YYYY/MM/DD HH:MM:SS [SCRIPT_NAME] message
//!   from IP`, local time without zone (read in `--tz`). In debug mode a record continues on
//!   further lines (`login_id = …`, backtrace): they are absorbed into the record's event.
//!
//! Admin logins: EC-CUBE 2 `login: user=ID(n) …` (success) and `ID password incorrect.`
//! (failure); EC-CUBE 3/4 Symfony security messages (`Authenticator successful!`,
//! `Authenticator failed.`, `Authentication request failed.`, `User has been authenticated
//! successfully.`) on a login URL outside the customer pages. The request trailer is found as
//! the first `[METHOD, URL, IP` group after the context (`]` or `}`) whose URL and IP parse:
//! attacker text in the context could imitate one, so the trailer is a best reading, kept as
//! written in the evidence line.

use std::borrow::Cow;

use ecir_model::{Event, EventDetail, LoginOutcome, SourceKind, Timestamp};

use crate::context::parse_ip;
use crate::time::iso8601;
use crate::{precheck, skip, EventSink, Format, ParseContext, Parser};

pub struct EccubeLog;

const VARIANTS: &[(&str, &str)] = &[
    (
        "eccube4-log",
        "EC-CUBE 4 app log (var/log/prod/admin-/front-/site-YYYY-MM-DD.log, Monolog)",
    ),
    (
        "eccube3-log",
        "EC-CUBE 3 app log (app/log/admin_site_YYYY-MM-DD.log, Monolog)",
    ),
    (
        "eccube2-log",
        "EC-CUBE 2 app log (data/logs/admin.log, site.log: gfPrintLog)",
    ),
];

/// Which header a line starts with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Head {
    Monolog4,
    Monolog3,
    Gf2,
}

fn is_digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

/// Recognises a record header by its leading timestamp.
fn head(b: &[u8]) -> Option<Head> {
    if b.len() >= 22 && b[0] == b'[' && b[5] == b'-' && b[8] == b'-' && is_digits(&b[1..5]) {
        if !(b[11] == b' ' || b[11] == b'T') || b[14] != b':' || b[17] != b':' {
            return None;
        }
        return match b[20] {
            b']' | b'.' | b'+' | b'-' | b'Z' => Some(Head::Monolog4),
            b',' => Some(Head::Monolog3),
            _ => None,
        };
    }
    if gf2_stamp(b) && !nginx_error_line(b) {
        return Some(Head::Gf2);
    }
    None
}

/// Whether a line starts `YYYY/MM/DD HH:MM:SS [`.
fn gf2_stamp(b: &[u8]) -> bool {
    b.len() >= 22
        && b[4] == b'/'
        && b[7] == b'/'
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b' '
        && b[20] == b'['
        && is_digits(&b[0..4])
}

/// nginx's error-log levels, which it writes in the bracket where EC-CUBE 2 writes the
/// script path.
const NGINX_LEVELS: &[&[u8]] = &[
    b"debug", b"info", b"notice", b"warn", b"error", b"crit", b"alert", b"emerg",
];

/// Whether a `YYYY/MM/DD HH:MM:SS [` line is an nginx `error.log` line (`[error] 1234#1234: *5
/// … client: 192.0.2.1, server: …`), not an EC-CUBE 2 `gfPrintLog` one: the bracket holds a
/// level word, or it holds no script path and `pid#tid:` or a `client:` field follows it. Both share the timestamp, and without this an nginx error log (with a few
/// ModSecurity lines in it) would be read as an EC-CUBE log.
fn nginx_error_line(b: &[u8]) -> bool {
    if !gf2_stamp(b) {
        return false;
    }
    let rest = &b[21..];
    let Some(end) = memchr::memchr(b']', rest) else {
        return false;
    };
    let bracket = &rest[..end];
    if NGINX_LEVELS.contains(&bracket) {
        return true;
    }
    if bracket.starts_with(b"/") {
        // A script path: EC-CUBE 2, whatever its (free) message looks like.
        return false;
    }
    let after = rest.get(end + 1..).unwrap_or_default();
    let after = after.strip_prefix(b" ").unwrap_or(after);
    let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
    let pid = digits(after);
    if pid > 0 && after.get(pid) == Some(&b'#') {
        let tid = digits(&after[pid + 1..]);
        if tid > 0 && after.get(pid + 1 + tid) == Some(&b':') {
            return true;
        }
    }
    memchr::memmem::find(after, b", client: ").is_some()
}

impl Format for EccubeLog {
    fn variants(&self) -> &'static [(&'static str, &'static str)] {
        VARIANTS
    }

    fn source(&self) -> SourceKind {
        SourceKind::App
    }

    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)> {
        let mut counts = [0usize; 3];
        let mut recognised = 0usize;
        let mut in_record = false;
        for l in sample {
            match head(l) {
                // An nginx error-log line ends any record and is not recognised.
                None if nginx_error_line(l) => in_record = false,
                Some(h) => {
                    let ok = match h {
                        Head::Gf2 => true,
                        _ => std::str::from_utf8(l).ok().and_then(monolog).is_some(),
                    };
                    if ok {
                        counts[h as usize] += 1;
                        recognised += 1;
                        in_record = true;
                    } else {
                        in_record = false;
                    }
                }
                // Continuation lines of an EC-CUBE 2 debug record count as recognised.
                None if in_record && counts[Head::Gf2 as usize] > 0 => recognised += 1,
                None => {}
            }
        }
        let (variant, &n) = counts
            .iter()
            .enumerate()
            .max_by_key(|(i, n)| (**n, 3 - i))?;
        if n == 0 || head(sample.first()?).is_none() {
            return None;
        }
        Some((variant, recognised as f64 / sample.len() as f64))
    }

    fn parser(&self, _variant: usize, ctx: &ParseContext) -> Box<dyn Parser> {
        Box::new(EccubeParser {
            ctx: ctx.clone(),
            in_record: false,
        })
    }

    fn is_record_start(&self, line: &[u8]) -> bool {
        head(line).is_some() || nginx_error_line(line)
    }
}

/// The parts of a Monolog line.
struct Mono<'a> {
    time: &'a str,
    channel: &'a str,
    level: &'a str,
    user_id: Option<&'a str>,
    message: &'a str,
    method: Option<&'a str>,
    url: Option<&'a str>,
    ip: Option<&'a str>,
    referer: Option<&'a str>,
    ua: Option<&'a str>,
}

fn monolog(line: &str) -> Option<Mono<'_>> {
    let close = line.find(']')?;
    let time = &line[1..close];
    let rest = line[close + 1..].strip_prefix(' ')?;
    let (chan_level, mut rest) = rest.split_once(' ')?;
    let (channel, level) = chan_level.rsplit_once('.')?;
    if level.is_empty() || !level.bytes().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let mut groups: Vec<&str> = Vec::with_capacity(4);
    while let Some(r) = rest.strip_prefix('[') {
        if groups.len() >= 6 {
            return None;
        }
        let end = r.find("] ")?;
        groups.push(&r[..end]);
        rest = &r[end + 2..];
    }
    let body = rest.strip_prefix("- ").or_else(|| rest.strip_prefix('-'))?;
    if groups.len() < 3 {
        return None;
    }
    let user_id = (groups.len() >= 4)
        .then(|| groups[2])
        .filter(|u| !u.is_empty() && *u != "N/A");
    let mut m = Mono {
        time,
        channel,
        level,
        user_id,
        message: body.trim_end(),
        method: None,
        url: None,
        ip: None,
        referer: None,
        ua: None,
    };
    // The request trailer: the first ` [` after a context end (`]`, `}`) whose fields parse;
    // without one (3.0.x writes no context), the last ` [` whose fields parse.
    let mut fallback = None;
    let mut chosen = None;
    let mut from = 0;
    while let Some(i) = body[from..].find(" [") {
        let at = from + i;
        from = at + 2;
        let Some(t) = trailer(&body[at + 2..]) else {
            continue;
        };
        let before = body[..at].trim_end();
        if before.ends_with(']') || before.ends_with('}') {
            chosen = Some((before, t));
            break;
        }
        fallback = Some((before, t));
    }
    if let Some((before, t)) = chosen.or(fallback) {
        m.message = before;
        m.method = t.0;
        m.url = Some(t.1);
        m.ip = Some(t.2);
        m.referer = t.3.filter(|s| !s.is_empty());
        m.ua = t.4.filter(|s| !s.is_empty());
    }
    Some(m)
}

/// (method, url, ip, referer, user agent) of a request trailer without its `[`.
type Trailer<'a> = (
    Option<&'a str>,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
);

fn trailer(s: &str) -> Option<Trailer<'_>> {
    let inner = s.trim_end().strip_suffix(']')?;
    let mut parts = inner.splitn(5, ", ");
    let first = parts.next()?;
    let is_method =
        !first.is_empty() && first.len() <= 10 && first.bytes().all(|c| c.is_ascii_uppercase());
    let t = if is_method {
        (
            Some(first),
            parts.next()?,
            parts.next()?,
            parts.next(),
            parts.next(),
        )
    } else {
        // 3.0.x: [URL, IP, REFERER]
        let mut v = inner.splitn(3, ", ");
        (None, v.next()?, v.next()?, v.next(), None)
    };
    let url_ok = t.1.starts_with('/') || t.1.starts_with("http");
    let ip_ok = t.2.is_empty() || parse_ip(t.2).is_some();
    (url_ok && ip_ok).then_some(t)
}

/// A Monolog time: `2021-05-10 12:00:00` and `2016-10-01 12:12:12,132` local to `--tz`,
/// `2024-03-12T10:02:11.532114+09:00` with its offset.
fn monolog_time(t: &str, ctx: &ParseContext) -> Option<Timestamp> {
    if t.len() > 40 {
        return None;
    }
    let mut buf = [0u8; 40];
    let b = &mut buf[..t.len()];
    b.copy_from_slice(t.as_bytes());
    if b.len() > 19 && b[19] == b',' {
        b[19] = b'.';
    }
    iso8601(b, ctx)
}

/// The path of a request URI (absolute URLs reduced to their path).
fn path_of(url: &str) -> &str {
    let u = match url.find("://") {
        Some(i) => url[i + 3..].find('/').map_or("/", |j| &url[i + 3 + j..]),
        None => url,
    };
    u.split(['?', '#']).next().unwrap_or(u)
}

/// Whether a path is an admin login endpoint (`/{admin}/login`, `/{admin}/login_check`), not
/// the customer one (`/mypage/login`, `/login_check`, `/shopping/login`).
fn admin_login_path(path: &str) -> bool {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    segs.len() >= 2
        && matches!(segs[segs.len() - 1], "login" | "login_check")
        && !matches!(segs[0], "mypage" | "shopping" | "entry" | "forgot")
}

fn security_outcome(message: &str) -> Option<LoginOutcome> {
    const OK: &[&str] = &[
        "Authenticator successful",
        "User has been authenticated successfully",
        "Authentication success",
    ];
    const FAIL: &[&str] = &[
        "Authenticator failed",
        "Authentication request failed",
        "Authentication failure",
    ];
    if OK.iter().any(|p| message.starts_with(p)) {
        Some(LoginOutcome::Success)
    } else if FAIL.iter().any(|p| message.starts_with(p)) {
        Some(LoginOutcome::Failure)
    } else {
        None
    }
}

struct EccubeParser {
    ctx: ParseContext,
    in_record: bool,
}

impl EccubeParser {
    fn monolog_line(&mut self, line: u64, text: &str, raw: &[u8], sink: &mut dyn EventSink) {
        let Some(m) = monolog(text) else {
            self.in_record = false;
            return sink.skip(line, skip::UNPARSEABLE, raw);
        };
        let Some(ts) = monolog_time(m.time, &self.ctx) else {
            self.in_record = false;
            return sink.skip(line, skip::BAD_TIMESTAMP, raw);
        };
        let login = m
            .url
            .filter(|u| admin_login_path(path_of(u)))
            .and_then(|_| security_outcome(m.message));
        let detail = match login {
            Some(outcome) => EventDetail::Login {
                user: None,
                outcome,
            },
            None => EventDetail::App {
                level: Cow::Borrowed(m.level),
                channel: Some(Cow::Borrowed(m.channel)),
                message: Cow::Borrowed(m.message),
            },
        };
        let ev = Event {
            ts: Some(ts),
            source: Some(SourceKind::App),
            client_ip: m.ip.and_then(parse_ip),
            method: m.method.map(Cow::Borrowed),
            target: m.url.map(|u| Cow::Borrowed(path_and_query(u))),
            referer: m.referer.map(Cow::Borrowed),
            user_agent: m.ua.map(Cow::Borrowed),
            user: m.user_id.map(Cow::Borrowed),
            detail,
            ..Default::default()
        };
        self.in_record = true;
        sink.event(&ev, line, raw);
    }

    fn gf2_line(&mut self, line: u64, text: &str, raw: &[u8], sink: &mut dyn EventSink) {
        let num = |r: std::ops::Range<usize>| text.get(r).and_then(|s| s.parse::<u32>().ok());
        let ts = (|| {
            let y = num(0..4)? as i32;
            let (mo, d, h, mi, s) = (
                num(5..7)?,
                num(8..10)?,
                num(11..13)?,
                num(14..16)?,
                num(17..19)?,
            );
            self.ctx.local_parts(y, mo, d, h, mi, s, 0)
        })();
        let Some(ts) = ts else {
            self.in_record = false;
            return sink.skip(line, skip::BAD_TIMESTAMP, raw);
        };
        let rest = &text[21..];
        let Some(end) = rest
            .find("] ")
            .or_else(|| rest.strip_suffix(']').map(|r| r.len()))
        else {
            self.in_record = false;
            return sink.skip(line, skip::UNPARSEABLE, raw);
        };
        let script = &rest[..end];
        let mut msg = rest.get(end + 2..).unwrap_or("").trim_end();
        let mut ip = None;
        if let Some((m, addr)) = msg.rsplit_once(" from ") {
            if let Some(a) = parse_ip(addr) {
                ip = Some(a);
                msg = m;
            }
        } else if let Some(addr) = msg.strip_prefix("from ") {
            if let Some(a) = parse_ip(addr) {
                ip = Some(a);
                msg = "";
            }
        }
        let login = if let Some(r) = msg.strip_prefix("login: user=") {
            let user = r.split([' ', '(']).next().unwrap_or("");
            Some((Some(user).filter(|u| !u.is_empty()), LoginOutcome::Success))
        } else {
            msg.strip_suffix(" password incorrect.")
                .map(|u| (Some(u).filter(|u| !u.is_empty()), LoginOutcome::Failure))
        };
        let detail = match login {
            Some((user, outcome)) => EventDetail::Login {
                user: user.map(Cow::Borrowed),
                outcome,
            },
            None => EventDetail::App {
                level: Cow::Borrowed("INFO"),
                channel: None,
                message: Cow::Borrowed(msg),
            },
        };
        let ev = Event {
            ts: Some(ts),
            source: Some(SourceKind::App),
            client_ip: ip,
            method: login.map(|_| Cow::Borrowed("POST")),
            target: Some(Cow::Borrowed(script)),
            user: login.and_then(|(u, _)| u).map(Cow::Borrowed),
            detail,
            ..Default::default()
        };
        self.in_record = true;
        sink.event(&ev, line, raw);
    }
}

/// The path and query of a request URI (absolute URLs reduced).
fn path_and_query(url: &str) -> &str {
    match url.find("://") {
        Some(i) => url[i + 3..].find('/').map_or("/", |j| &url[i + 3 + j..]),
        None => url,
    }
}

impl Parser for EccubeParser {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink) {
        let h = head(bytes);
        if h.is_none() && nginx_error_line(bytes) {
            // An nginx error.log line (forced `--format eccube2-log`, or a mixed file): its own
            // line of another log, never a continuation of the record before it.
            self.in_record = false;
            return sink.skip(line, skip::OTHER_LOG_TYPE, bytes);
        }
        if h.is_none() && self.in_record && !bytes.is_empty() && memchr::memchr(0, bytes).is_none()
        {
            // A continuation line of the record just emitted (debug-mode details).
            return sink.absorbed(1);
        }
        if let Some(reason) = precheck(bytes) {
            self.in_record = false;
            return sink.skip(line, reason, bytes);
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            // Japanese shops may log in Shift_JIS / EUC-JP: read lossily, keep the raw line.
            let owned = String::from_utf8_lossy(bytes).into_owned();
            return self.dispatch(h, line, &owned, bytes, sink);
        };
        self.dispatch(h, line, text, bytes, sink)
    }
}

impl EccubeParser {
    fn dispatch(
        &mut self,
        h: Option<Head>,
        line: u64,
        text: &str,
        raw: &[u8],
        sink: &mut dyn EventSink,
    ) {
        match h {
            Some(Head::Gf2) => self.gf2_line(line, text, raw, sink),
            Some(_) => self.monolog_line(line, text, raw, sink),
            None => {
                self.in_record = false;
                sink.skip(line, skip::CONTINUATION, raw)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::parse_all;
    use crate::{by_name, Chosen};

    fn ctx() -> ParseContext {
        ParseContext {
            tz: "Asia/Tokyo".parse().unwrap(),
            ..Default::default()
        }
    }

    fn chosen(text: &str) -> Chosen {
        let lines: Vec<&[u8]> = text.lines().map(str::as_bytes).collect();
        crate::detect(&lines).expect("detected")
    }

    // Reference sample lines (eccube-logs.md): verbatim plugin-test line, constructed 4.3 lines.
    const V4: &str = "[2025-01-10 10:01:00] admin.INFO [a1b2c3d4] [uid123] [1] [TestClass::testMethod:101] - Info message {} [GET, /admin, 127.0.0.1, http://example.com, Mozilla/5.0]
[2024-03-12T10:02:11.532114+09:00] front.INFO [3f9a1c0e] [8d2e4a1] [N/A] [Eccube\\Controller\\ShoppingController:checkout:447] - [注文完了] 試行回数制限を超過しました(IPベース) [] [POST, /shopping/checkout, 198.51.100.23, https://shop.example.jp/shopping/confirm, Mozilla/5.0]
[2024-03-12T10:02:12.004512+09:00] front.ERROR [3f9a1c0e] [a1c33b2] [N/A] [Eccube\\Controller\\ShoppingController:checkout:483] - [注文処理] 購入エラーが発生しました. [\"(payment plugin message)\"] [POST, /shopping/checkout, 198.51.100.23, https://shop.example.jp/shopping/confirm, Mozilla/5.0]
[2024-03-12T03:14:15.101010+09:00] security.INFO [9b1d22aa] [4c1f0a9] [N/A] [Symfony\\Component\\Security\\Http\\Authentication\\AuthenticatorManager:executeAuthenticator:...] - Authenticator failed. {\"exception\":\"...BadCredentialsException...\",\"authenticator\":\"Symfony\\\\Component\\\\Security\\\\Http\\\\Authenticator\\\\FormLoginAuthenticator\"} [POST, /admin/login, 203.0.113.7, https://shop.example.jp/admin/login, Mozilla/5.0]";

    #[test]
    fn eccube4_reference_lines() {
        let c = chosen(V4);
        assert_eq!(c.name(), "eccube4-log");
        let out = parse_all(c, &ctx(), V4);
        assert!(out.skips.is_empty(), "{:?}", out.skips);
        assert_eq!(out.events.len(), 4);
        let (_, e0) = &out.events[0];
        // Monolog 1 form: local time in --tz.
        assert_eq!(e0.ts.unwrap().to_rfc3339(), "2025-01-10T10:01:00+09:00");
        assert_eq!(e0.client_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(e0.user.as_deref(), Some("1"));
        assert_eq!(e0.target.as_deref(), Some("/admin"));
        assert!(
            matches!(&out.details[0], EventDetail::App { message, .. } if message == "Info message {}")
        );
        let (_, e1) = &out.events[1];
        assert_eq!(e1.ts.unwrap().to_rfc3339(), "2024-03-12T10:02:11.532+09:00");
        assert_eq!(e1.user, None);
        assert_eq!(e1.method.as_deref(), Some("POST"));
        assert_eq!(
            e1.referer.as_deref(),
            Some("https://shop.example.jp/shopping/confirm")
        );
        assert_eq!(e1.source, Some(SourceKind::App));
        let (_, e3) = &out.events[3];
        assert_eq!(e3.source, Some(SourceKind::App));
        assert_eq!(e3.client_ip, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(
            out.details[3],
            EventDetail::Login {
                user: None,
                outcome: LoginOutcome::Failure
            }
        );
    }

    #[test]
    fn customer_login_is_not_an_admin_login() {
        let t = "[2024-03-12T03:14:15.101010+09:00] security.INFO [9b1d22aa] [4c1f0a9] [N/A] [X:y:1] - Authenticator failed. {} [POST, /mypage/login, 203.0.113.7, , Mozilla/5.0]\n\
                 [2024-03-12T03:14:16+09:00] security.INFO [9b1d22aa] [4c1f0a9] [2] [X:y:1] - Authenticator successful! {} [POST, /mgr_9x/login, 203.0.113.8, , Mozilla/5.0]";
        let out = parse_all(chosen(t), &ctx(), t);
        assert!(matches!(out.details[0], EventDetail::App { .. }));
        assert!(matches!(
            out.details[1],
            EventDetail::Login {
                outcome: LoginOutcome::Success,
                ..
            }
        ));
        assert_eq!(out.events[0].1.referer, None);
    }

    #[test]
    fn eccube3_reference_line_and_forged_trailer() {
        let t = "[2016-10-01 12:12:12,132] front.INFO [83fdklt8] [1484] [TopController:index:34] - 処理を開始しました。 [/, 127.0.0.1, http://localhost]\n\
                 [2016-10-01 12:12:13,500] admin.INFO [83fdklt8] [1485] [7] [A:b:1] - 検索 {\"q\":\"x [GET, /, 10.9.9.9, a, b]\"} [] [GET, /admin/product?q=1, 192.0.2.4, , curl/8]";
        let c = chosen(t);
        assert_eq!(c.name(), "eccube3-log");
        let out = parse_all(c, &ctx(), t);
        assert!(out.skips.is_empty(), "{:?}", out.skips);
        let e0 = &out.events[0].1;
        assert_eq!(e0.ts.unwrap().to_rfc3339(), "2016-10-01T12:12:12.132+09:00");
        assert_eq!(e0.client_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(e0.method, None);
        // The address inside the JSON string is not the client.
        let e1 = &out.events[1].1;
        assert_eq!(e1.client_ip, Some("192.0.2.4".parse().unwrap()));
        assert_eq!(e1.target.as_deref(), Some("/admin/product?q=1"));
        assert_eq!(e1.user.as_deref(), Some("7"));
    }

    #[test]
    fn eccube2_logins_and_debug_records() {
        let t = "2024/03/12 03:14:15 [/mgr_x9k2/index.php] admin password incorrect. from 203.0.113.7\n\
                 login_id = (0)[8c1e0e7b]\n\
                 #0 /var/www/data/class/pages/admin/LC_Page_Admin_Index.php(120)\n\
                 2024/03/12 03:14:22 [/mgr_x9k2/index.php] login: user=admin(2) auth=0 lastlogin=2024-03-01 09:12:44 sid=8c1e0e7b5a9d4f3e2b1a0c9d8e7f6a5b from 203.0.113.7\n\
                 2024/03/12 03:20:01 [/mgr_x9k2/ownersstore/index.php] 解凍: /tmp/x.tar.gz -> /var/www/data/downloads/plugin/ from 203.0.113.7\n\
                 2024/13/12 03:20:01 [/x.php] bad month\n\
                 stray continuation";
        let c = chosen(t);
        assert_eq!(c.name(), "eccube2-log");
        let out = parse_all(c, &ctx(), t);
        assert_eq!(out.events.len(), 3);
        assert_eq!(out.absorbed, 2);
        assert_eq!(
            out.skips,
            vec![(6, skip::BAD_TIMESTAMP), (7, skip::CONTINUATION)]
        );
        // Every line accounted for.
        assert_eq!(
            out.events.len() as u64 + out.absorbed + out.skips.len() as u64,
            7
        );
        let (l0, e0) = &out.events[0];
        assert_eq!(*l0, 1);
        assert_eq!(e0.ts.unwrap().to_rfc3339(), "2024-03-12T03:14:15+09:00");
        assert_eq!(e0.client_ip, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(
            out.details[0],
            EventDetail::Login {
                user: Some("admin".into()),
                outcome: LoginOutcome::Failure
            }
        );
        assert_eq!(
            out.details[1],
            EventDetail::Login {
                user: Some("admin".into()),
                outcome: LoginOutcome::Success
            }
        );
        assert_eq!(
            out.events[1].1.target.as_deref(),
            Some("/mgr_x9k2/index.php")
        );
        assert!(
            matches!(&out.details[2], EventDetail::App { message, .. } if message.starts_with("解凍"))
        );
        // Continuation lines never start a chunk.
        assert!(!EccubeLog.is_record_start(b"login_id = (0)[8c1e0e7b]"));
        assert!(EccubeLog.is_record_start(b"2024/03/12 03:14:15 [/a.php] x"));
    }

    #[test]
    fn other_formats_are_not_taken() {
        let clf =
            "203.0.113.7 - - [12/Mar/2024:03:14:15 +0900] \"GET / HTTP/1.1\" 200 5 \"-\" \"x\"";
        assert!(EccubeLog.detect(&[clf.as_bytes()]).is_none());
        let sys = "Mar 12 03:14:15 host sshd[1]: Failed password for root from 1.2.3.4 port 2 ssh2";
        assert!(EccubeLog.detect(&[sys.as_bytes()]).is_none());
    }

    /// Plain nginx error-log lines (our own values, in the shape nginx writes).
    const NGINX_ERR: &str = "2024/03/12 03:14:15 [error] 2211#2211: *17 open() \"/var/www/html/wp-login.php\" failed (2: No such file or directory), client: 192.0.2.9, server: shop.example.jp, request: \"GET /wp-login.php HTTP/1.1\", host: \"shop.example.jp\"
2024/03/12 03:14:16 [warn] 2211#0: *18 an upstream response is buffered to a temporary file, client: 198.51.100.4, server: shop.example.jp, request: \"GET /products/list HTTP/2.0\"
2024/03/12 03:14:17 [notice] 2210#2210: signal process started
2024/03/12 03:14:18 [crit] 2211#2211: *19 SSL_do_handshake() failed, client: 203.0.113.5, server: 0.0.0.0:443
2024/03/12 03:14:19 [emerg] 1#1: bind() to 0.0.0.0:80 failed (98: Address already in use)";

    #[test]
    fn nginx_error_log_is_not_an_eccube2_log() {
        let lines: Vec<&[u8]> = NGINX_ERR.lines().map(str::as_bytes).collect();
        assert!(EccubeLog.detect(&lines).is_none());
        assert!(
            crate::detect(&lines).is_none(),
            "no ModSecurity line: unknown"
        );
        // With one ModSecurity alert among many ordinary lines: the WAF format, the others
        // skipped as not WAF messages.
        let modsec = "2024/03/12 03:14:20 [error] 2211#2211: *20 [client 203.0.113.50] ModSecurity: Warning. Matched \"Operator `Rx' with parameter `union' against variable `ARGS:q' (Value: `1 union select' )\" [id \"942100\"] [msg \"SQL Injection Attack Detected\"] [uri \"/products/list\"] [unique_id \"a1\"], client: 203.0.113.50, server: shop.example.jp, request: \"GET /products/list?q=1+union+select HTTP/1.1\", host: \"shop.example.jp\"";
        let mixed = format!("{NGINX_ERR}\n{NGINX_ERR}\n{modsec}\n{NGINX_ERR}");
        let c = chosen(&mixed);
        assert_eq!(c.name(), "modsec-nginx-error");
        let out = parse_all(c, &ctx(), &mixed);
        assert_eq!(out.events.len(), 1);
        assert_eq!(
            out.events[0].1.client_ip,
            Some("203.0.113.50".parse().unwrap())
        );
        assert_eq!(out.skips.len(), 15);
        assert!(out.skips.iter().all(|(_, r)| *r == skip::NOT_WAF));
        // Forced as an EC-CUBE 2 log, or inside one, an nginx line is its own skipped line,
        // never a continuation of the record before it.
        let t = format!("2024/03/12 03:14:15 [/mgr_x9k2/index.php] admin password incorrect. from 203.0.113.7\n{NGINX_ERR}");
        let gf2 = by_name("eccube2-log").unwrap();
        let out = parse_all(gf2, &ctx(), &t);
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.absorbed, 0);
        assert_eq!(out.skips.len(), 5);
        assert!(out.skips.iter().all(|(_, r)| *r == skip::OTHER_LOG_TYPE));
        assert!(EccubeLog.is_record_start(NGINX_ERR.as_bytes()));
        // A script path is still an EC-CUBE 2 record, whatever the message says.
        assert!(
            head(b"2024/03/12 03:14:15 [/error.php] 12#3: x, client: 1 from 192.0.2.1").is_some()
        );
    }

    #[test]
    fn hostile_lines_do_not_panic() {
        let p = &mut EccubeLog.parser(0, &ctx());
        let mut c = crate::testing::Collect::default();
        for (i, l) in [
            "[2024-03-12 03:14:15] a.B [",
            "[2024-03-12 03:14:15] a.B [x] [y] [z] - m [",
            "[2024-03-12 03:14:15] a.B [x] [y] [z] - m {} [GET, ",
            "[2024-03-12 03:14:15] a.B [x] [y] [z] - m {} [GET, /, 1.2.3.4, é",
            "2024/03/12 03:14:15 [",
            "2024/03/12 03:14:15 [/a] from ",
            "[9999-99-99 99:99:99] a.B [x] [y] [z] - m",
        ]
        .iter()
        .enumerate()
        {
            p.feed(i as u64 + 1, l.as_bytes(), &mut c);
        }
        assert_eq!(c.events.len() + c.skips.len() + c.absorbed as usize, 7);
    }
}
