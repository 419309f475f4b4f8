//! A CSV/TSV export of EC-CUBE 4's `dtb_login_history` (admin login successes and failures) as
//! [`EventDetail::Login`] events, source `admin-login`.
//!
//! The header row names the columns (any order; extra columns ignored): time `create_date`
//! (or `login_date`, `date`, `日時`, `ログイン日時`, `作成日時`), user `user_name` (`login_id`,
//! `ユーザー名`, `ログインID`), address `client_ip` (`ip`, `IPアドレス`), outcome
//! `login_history_status_id` (0 failure, 1 success) or a status name column (`status`,
//! `ステータス`, `結果`: `成功`/`失敗`, `success`/`failure`). Delimiter `,`, tab or `;` as the header
//! uses; fields may be quoted (`""` escapes); a UTF-8 BOM is ignored.
//!
//! EC-CUBE 4 stores DB times in UTC (Doctrine `datetimetz` as UTC), so a time without an offset
//! in this export is UTC, not `--tz`; a time with an offset (`+09`, `+09:00`, `Z`) keeps it.
//! The header has to be seen first, so a file is never split into chunks except at a header.

use std::borrow::Cow;

use ecir_model::{Event, EventDetail, LoginOutcome, SourceKind};

use crate::context::parse_ip;
use crate::time::iso8601;
use crate::{precheck, skip, EventSink, Format, ParseContext, Parser};

pub struct LoginHistory;

const VARIANTS: &[(&str, &str)] = &[(
    "eccube-login-history",
    "EC-CUBE 4 dtb_login_history export (CSV/TSV with header; times without offset are UTC)",
)];

/// Column roles found in a header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Columns {
    delim: u8,
    time: usize,
    user: usize,
    ip: usize,
    status: usize,
    /// Whether `status` holds a name (`成功`) rather than the numeric id.
    status_named: bool,
}

fn norm(name: &str) -> String {
    name.trim()
        .trim_matches('"')
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '-'], "_")
}

fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)
}

/// Reads a header row, if `b` is one.
fn header(b: &[u8]) -> Option<Columns> {
    let text = std::str::from_utf8(strip_bom(b)).ok()?;
    let delim = [b'\t', b',', b';']
        .into_iter()
        .max_by_key(|d| text.bytes().filter(|c| c == d).count())?;
    let mut cols = [None::<usize>; 4];
    let mut named = false;
    for (i, f) in split(text, delim, 64).iter().enumerate() {
        let n = norm(f);
        let role = match n.as_str() {
            "create_date" | "login_date" | "date" | "datetime" | "created_at" | "日時"
            | "ログイン日時" | "作成日時" | "日付" => 0,
            "user_name" | "login_id" | "username" | "user" | "ユーザー名" | "ログインid"
            | "ユーザー" => 1,
            "client_ip" | "ip" | "ip_address" | "ipアドレス" | "接続元ip" => 2,
            "login_history_status_id" | "status_id" => 3,
            "status" | "ステータス" | "結果" | "login_history_status" => {
                if cols[3].is_none() {
                    named = true;
                    3
                } else {
                    continue;
                }
            }
            _ => continue,
        };
        if role == 3 && n.ends_with("_id") {
            named = false;
        }
        if cols[role].is_none() || role == 3 {
            cols[role] = Some(i);
        }
    }
    Some(Columns {
        delim,
        time: cols[0]?,
        user: cols[1]?,
        ip: cols[2]?,
        status: cols[3]?,
        status_named: named,
    })
}

/// Splits a delimited row, honouring double quotes; at most `max` fields.
fn split(line: &str, delim: u8, max: usize) -> Vec<Cow<'_, str>> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i <= b.len() && out.len() < max {
        if b.get(i) == Some(&b'"') {
            let mut s = String::new();
            let mut j = i + 1;
            let mut start = j;
            loop {
                match memchr::memchr(b'"', &b[j..]) {
                    Some(k) => {
                        let q = j + k;
                        if b.get(q + 1) == Some(&b'"') {
                            s.push_str(&line[start..=q]);
                            j = q + 2;
                            start = j;
                        } else {
                            s.push_str(&line[start..q]);
                            j = q + 1;
                            break;
                        }
                    }
                    None => {
                        s.push_str(&line[start..]);
                        j = b.len();
                        break;
                    }
                }
            }
            out.push(Cow::Owned(s));
            // Skip to the next delimiter.
            match memchr::memchr(delim, &b[j.min(b.len())..]) {
                Some(k) => i = j + k + 1,
                None => break,
            }
        } else {
            match memchr::memchr(delim, &b[i..]) {
                Some(k) => {
                    out.push(Cow::Borrowed(&line[i..i + k]));
                    i += k + 1;
                }
                None => {
                    out.push(Cow::Borrowed(&line[i..]));
                    break;
                }
            }
        }
    }
    out
}

fn outcome(v: &str, named: bool) -> Option<LoginOutcome> {
    let v = v.trim();
    match v {
        "1" if !named => Some(LoginOutcome::Success),
        "0" if !named => Some(LoginOutcome::Failure),
        "成功" => Some(LoginOutcome::Success),
        "失敗" => Some(LoginOutcome::Failure),
        _ => match v.to_ascii_lowercase().as_str() {
            "success" | "succeeded" | "ok" | "true" => Some(LoginOutcome::Success),
            "failure" | "failed" | "fail" | "false" | "ng" => Some(LoginOutcome::Failure),
            "1" => Some(LoginOutcome::Success),
            "0" => Some(LoginOutcome::Failure),
            _ => None,
        },
    }
}

impl Format for LoginHistory {
    fn variants(&self) -> &'static [(&'static str, &'static str)] {
        VARIANTS
    }

    fn source(&self) -> SourceKind {
        SourceKind::AdminLogin
    }

    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)> {
        let cols = header(sample.first()?)?;
        let rows = &sample[1..];
        if rows.is_empty() {
            return Some((0, 1.0));
        }
        let ok = rows
            .iter()
            .filter(|r| std::str::from_utf8(r).is_ok_and(|t| row(t, &cols, &utc()).is_ok()))
            .count();
        Some((0, (ok + 1) as f64 / sample.len() as f64))
    }

    fn parser(&self, _variant: usize, ctx: &ParseContext) -> Box<dyn Parser> {
        Box::new(HistoryParser {
            cols: None,
            ctx: ParseContext {
                tz: chrono_tz::Tz::UTC,
                ..ctx.clone()
            },
        })
    }

    fn is_record_start(&self, line: &[u8]) -> bool {
        header(line).is_some()
    }
}

fn utc() -> ParseContext {
    ParseContext::default()
}

/// One data row as an event, or the skip reason.
fn row<'a>(text: &'a str, cols: &Columns, ctx: &ParseContext) -> Result<Event<'a>, &'static str> {
    let max = cols.time.max(cols.user).max(cols.ip).max(cols.status) + 1;
    let f = split(text, cols.delim, max);
    if f.len() < max {
        return Err(skip::UNPARSEABLE);
    }
    let t = f[cols.time].trim().replace('/', "-");
    let ts = iso8601(t.as_bytes(), ctx).ok_or(skip::BAD_TIMESTAMP)?;
    let outcome = outcome(&f[cols.status], cols.status_named).ok_or(skip::UNPARSEABLE)?;
    let ip = f[cols.ip].trim();
    let client_ip = parse_ip(ip);
    if client_ip.is_none() && !ip.is_empty() {
        return Err(skip::UNPARSEABLE);
    }
    let user = f[cols.user].trim();
    let user = (!user.is_empty()).then(|| Cow::Owned(user.to_string()));
    Ok(Event {
        ts: Some(ts),
        source: Some(SourceKind::AdminLogin),
        client_ip,
        user: user.clone(),
        detail: EventDetail::Login { user, outcome },
        ..Default::default()
    })
}

struct HistoryParser {
    cols: Option<Columns>,
    /// The run's context with the zone set to UTC (DB times).
    ctx: ParseContext,
}

impl Parser for HistoryParser {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink) {
        if let Some(reason) = precheck(bytes) {
            return sink.skip(line, reason, bytes);
        }
        if let Some(c) = header(bytes) {
            self.cols = Some(c);
            return sink.skip(line, skip::HEADER, bytes);
        }
        let Some(cols) = self.cols else {
            return sink.skip(line, skip::CONTINUATION, bytes);
        };
        let text = String::from_utf8_lossy(bytes);
        match row(&text, &cols, &self.ctx) {
            Ok(ev) => sink.event(&ev, line, bytes),
            Err(reason) => sink.skip(line, reason, bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::parse_all;

    fn ctx() -> ParseContext {
        ParseContext {
            tz: "Asia/Tokyo".parse().unwrap(),
            ..Default::default()
        }
    }

    fn run(t: &str) -> crate::testing::Collect {
        let lines: Vec<&[u8]> = t.lines().map(str::as_bytes).collect();
        let c = crate::detect(&lines).expect("detected");
        assert_eq!(c.name(), "eccube-login-history");
        parse_all(c, &ctx(), t)
    }

    #[test]
    fn sql_export_times_are_utc_unless_offset() {
        // The reference query's column order.
        let t = "\u{feff}create_date,user_name,client_ip,login_history_status_id,member_id\n\
                 2024-03-11 18:14:15,admin,203.0.113.7,0,\n\
                 \"2024-03-11 18:14:22\",\"admin\",\"203.0.113.7\",\"1\",\"2\"\n\
                 2024-03-12 03:15:00+09,\"ad,\"\"min\",2001:db8::1,1,2\n\
                 2024-03-12 03:15:00+09,x,not-an-ip,1,2\n\
                 garbage,x,1.2.3.4,1,2";
        let out = run(t);
        assert_eq!(out.events.len(), 3);
        assert_eq!(
            out.skips,
            vec![
                (1, skip::HEADER),
                (5, skip::UNPARSEABLE),
                (6, skip::BAD_TIMESTAMP)
            ]
        );
        let e = &out.events[0].1;
        // UTC, not --tz.
        assert_eq!(e.ts.unwrap().to_rfc3339(), "2024-03-11T18:14:15+00:00");
        assert_eq!(e.client_ip, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(
            out.details[0],
            EventDetail::Login {
                user: Some("admin".into()),
                outcome: LoginOutcome::Failure
            }
        );
        assert!(matches!(
            out.details[1],
            EventDetail::Login {
                outcome: LoginOutcome::Success,
                ..
            }
        ));
        let e2 = &out.events[2].1;
        assert_eq!(e2.ts.unwrap().to_rfc3339(), "2024-03-12T03:15:00+09:00");
        assert_eq!(e2.user.as_deref(), Some("ad,\"min"));
    }

    #[test]
    fn tsv_full_table_and_japanese_headers() {
        let t = "id\tuser_name\tclient_ip\tlogin_history_status_id\tmember_id\tcreate_date\tupdate_date\tdiscriminator_type\n\
                 7\tshop\t192.0.2.9\t1\t3\t2024-03-12 00:00:01\t2024-03-12 00:00:01\tloginhistory";
        let out = run(t);
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].1.user.as_deref(), Some("shop"));
        assert_eq!(
            out.events[0].1.ts.unwrap().to_rfc3339(),
            "2024-03-12T00:00:01+00:00"
        );
        let j = "日時,ログインID,IPアドレス,結果\n2024/03/12 00:00:02,admin,192.0.2.1,失敗\n2024/03/12 00:00:03,admin,192.0.2.1,成功";
        let out = run(j);
        assert_eq!(out.events.len(), 2);
        assert!(matches!(
            out.details[0],
            EventDetail::Login {
                outcome: LoginOutcome::Failure,
                ..
            }
        ));
        assert!(matches!(
            out.details[1],
            EventDetail::Login {
                outcome: LoginOutcome::Success,
                ..
            }
        ));
    }

    #[test]
    fn not_taken_for_other_csv_and_rows_never_start_chunks() {
        assert!(LoginHistory.detect(&[b"a,b,c", b"1,2,3"]).is_none());
        assert!(!LoginHistory.is_record_start(b"2024-03-11 18:14:15,admin,203.0.113.7,0,"));
        assert!(LoginHistory
            .is_record_start(b"create_date,user_name,client_ip,login_history_status_id"));
        // A row before any header is not guessed at.
        let mut p = LoginHistory.parser(0, &ctx());
        let mut c = crate::testing::Collect::default();
        p.feed(1, b"2024-03-11 18:14:15,admin,203.0.113.7,0,", &mut c);
        assert_eq!(c.skips, vec![(1, skip::CONTINUATION)]);
        // Hostile quoting does not panic.
        for l in ["\"", "\"\"\"", "a,\"b", ",,,,,,", "\"x\"y,\"z"] {
            let _ = split(l, b',', 8);
        }
    }
}
