//! Magento 2 application logs (`var/log/system.log`, `exception.log`, `debug.log`, and the
//! CrowdSec bouncer's `crowdsec-events.log`), Monolog's default line
//! `[datetime] channel.LEVEL: message context extra`, as [`EventDetail::App`] events.
//!
//! Magento logs in UTC: a time without an offset (`2022-02-11 13:41:28`, Monolog 1) is UTC; a
//! Monolog 2 time (`2024-03-12T10:02:11.532114+00:00`) keeps its offset. A CrowdSec event whose
//! JSON message has `"type":"ADMIN_LOGIN_FAILED"` (or `ADMIN_LOGIN_SUCCESS`) is an admin login
//! ([`EventDetail::Login`]) from its `"ip"`; other event types (customer logins, payments,
//! cart) stay app events with the `ip` as client.

use std::borrow::Cow;

use ecir_model::{Event, EventDetail, LoginOutcome, SourceKind};

use crate::context::parse_ip;
use crate::time::iso8601;
use crate::{precheck, skip, EventSink, Format, ParseContext, Parser};

pub struct MagentoLog;

const VARIANTS: &[(&str, &str)] = &[(
    "magento-log",
    "Magento 2 app log (var/log/*.log, CrowdSec events; Monolog, UTC)",
)];

/// Channels Magento 2 and its common extensions log under (`main` for system, debug and
/// exception logs).
const MAGENTO_CHANNELS: &[&str] = &["main", "crowdsec-events", "report", "cron", "payment"];

struct Line<'a> {
    time: &'a str,
    channel: &'a str,
    level: &'a str,
    message: &'a str,
}

fn split(line: &str) -> Option<Line<'_>> {
    let b = line.as_bytes();
    if b.len() < 24 || b[0] != b'[' || b[5] != b'-' || b[8] != b'-' {
        return None;
    }
    let close = line.find("] ")?;
    let time = &line[1..close];
    let rest = &line[close + 2..];
    let colon = rest
        .find(": ")
        .or_else(|| rest.strip_suffix(':').map(str::len))?;
    let (channel, level) = rest[..colon].rsplit_once('.')?;
    if channel.contains(' ') || level.is_empty() || !level.bytes().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    Some(Line {
        time,
        channel,
        level,
        message: rest.get(colon + 2..).unwrap_or("").trim(),
    })
}

/// A JSON string field of a flat message, without a JSON parse of attacker-sized text.
fn json_str<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let i = msg.find(&pat)? + pat.len();
    let rest = &msg[i..];
    let end = rest.find('"')?;
    Some(&rest[..end])
}

impl Format for MagentoLog {
    fn variants(&self) -> &'static [(&'static str, &'static str)] {
        VARIANTS
    }

    fn source(&self) -> SourceKind {
        SourceKind::App
    }

    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)> {
        // Monolog's default line is common to many PHP apps: claim only Magento's channels.
        let n = sample
            .iter()
            .filter(|l| {
                std::str::from_utf8(l)
                    .ok()
                    .and_then(split)
                    .is_some_and(|l| MAGENTO_CHANNELS.contains(&l.channel))
            })
            .count();
        (n > 0).then(|| (0, n as f64 / sample.len() as f64))
    }

    fn parser(&self, _variant: usize, ctx: &ParseContext) -> Box<dyn Parser> {
        Box::new(MagentoParser {
            ctx: ParseContext {
                tz: chrono_tz::Tz::UTC,
                ..ctx.clone()
            },
        })
    }
}

struct MagentoParser {
    /// The run's context with the zone set to UTC (Magento logs in UTC).
    ctx: ParseContext,
}

impl Parser for MagentoParser {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink) {
        if let Some(reason) = precheck(bytes) {
            return sink.skip(line, reason, bytes);
        }
        let text = String::from_utf8_lossy(bytes);
        let Some(l) = split(&text) else {
            // Exception traces continue on following lines in exception.log.
            return sink.skip(line, skip::UNPARSEABLE, bytes);
        };
        let Some(ts) = iso8601(l.time.as_bytes(), &self.ctx) else {
            return sink.skip(line, skip::BAD_TIMESTAMP, bytes);
        };
        let kind = json_str(l.message, "type");
        let ip = json_str(l.message, "ip").and_then(parse_ip);
        let outcome = match kind {
            Some("ADMIN_LOGIN_FAILED") => Some(LoginOutcome::Failure),
            Some("ADMIN_LOGIN_SUCCESS") => Some(LoginOutcome::Success),
            _ => None,
        };
        let detail = match outcome {
            Some(outcome) => EventDetail::Login {
                user: None,
                outcome,
            },
            None => EventDetail::App {
                level: Cow::Borrowed(l.level),
                channel: Some(Cow::Borrowed(l.channel)),
                message: Cow::Borrowed(l.message),
            },
        };
        let ev = Event {
            ts: Some(ts),
            source: Some(SourceKind::App),
            client_ip: ip,
            detail,
            ..Default::default()
        };
        sink.event(&ev, line, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::parse_all;

    #[test]
    fn crowdsec_events_and_system_log() {
        let t = "[2022-02-11 13:41:28] crowdsec-events.INFO:  {\"type\":\"ADMIN_LOGIN_FAILED\",\"ip\":\"1.2.3.4\",\"x-forwarded-for-ip\":\"\",\"bouncer_agent\":\"Magento 2 CrowdSec Bouncer/v1.0.0\"} []\n\
                 [2022-01-28 13:13:07] crowdsec-events.INFO:  {\"type\":\"CUSTOMER_LOGIN_SUCCESS\",\"ip\":\"1.2.3.5\",\"customer_id\":\"202\"} []\n\
                 [2024-03-12T10:02:11.532114+09:00] main.CRITICAL: Payment failed {\"exception\":\"x\"} []\n\
                 #0 /var/www/vendor/magento/framework/App/Http.php(116)\n\
                 [2024-13-12 10:02:11] main.INFO: bad month [] []";
        let lines: Vec<&[u8]> = t.lines().map(str::as_bytes).collect();
        let c = crate::detect(&lines).expect("detected");
        assert_eq!(c.name(), "magento-log");
        let out = parse_all(c, &ParseContext::default(), t);
        assert_eq!(out.events.len(), 3);
        assert_eq!(
            out.skips,
            vec![(4, skip::UNPARSEABLE), (5, skip::BAD_TIMESTAMP)]
        );
        let e = &out.events[0].1;
        assert_eq!(e.ts.unwrap().to_rfc3339(), "2022-02-11T13:41:28+00:00");
        assert_eq!(e.client_ip, Some("1.2.3.4".parse().unwrap()));
        assert_eq!(
            out.details[0],
            EventDetail::Login {
                user: None,
                outcome: LoginOutcome::Failure
            }
        );
        // A customer login is not an admin login.
        assert!(matches!(out.details[1], EventDetail::App { .. }));
        assert_eq!(
            out.events[2].1.ts.unwrap().to_rfc3339(),
            "2024-03-12T10:02:11.532+09:00"
        );
    }

    #[test]
    fn eccube_clf_and_other_monolog_apps_are_not_magento() {
        let laravel = "[2026-10-01 10:00:00] production.ERROR: boom {} []";
        assert!(MagentoLog.detect(&[laravel.as_bytes()]).is_none());
        let ec = "[2025-01-10 10:01:00] admin.INFO [a1b2c3d4] [uid123] [1] [T::m:101] - Info {} [GET, /admin, 127.0.0.1, x, y]";
        assert!(MagentoLog.detect(&[ec.as_bytes()]).is_none());
        let clf = "1.2.3.4 - - [12/Mar/2024:03:14:15 +0900] \"GET / HTTP/1.1\" 200 5";
        assert!(MagentoLog.detect(&[clf.as_bytes()]).is_none());
    }
}
