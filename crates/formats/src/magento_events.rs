//! Magento 2 application event logs in the Monolog shape the CrowdSec bouncer module writes
//! (`var/log/crowdsec-events.log`):
//!
//! `[2022-02-11 14:44:34] crowdsec-events.INFO:  {"type":"PAYMENT_FAILED","ip":"1.2.3.4",…} []`
//!
//! Each record becomes an `app` event: the client is `ip` (or `x-forwarded-for-ip` when `ip` is
//! a trusted proxy), the message is the event `type` (`PAYMENT_FAILED`, `ADMIN_LOGIN_FAILED`,
//! `CUSTOMER_REGISTER_SUCCESS`, …) and the channel `crowdsec-events`. `ADMIN_LOGIN_FAILED` is
//! also a failed login. The time has no zone and is read in `--tz`.

use std::borrow::Cow;

use ecir_model::{Event, EventDetail, LoginOutcome, SourceKind};
use serde_json::{Map, Value};

use crate::context::ParseContext;
use crate::{skip, EventSink, Format, Parser};

pub struct MagentoEvents;

const VARIANTS: &[(&str, &str)] = &[(
    "magento-events",
    "Magento 2 event log (Monolog lines with a JSON context, CrowdSec bouncer module)",
)];

/// Splits `[time] channel.LEVEL: {json} […]` into (time, channel, level, json).
fn split(line: &[u8]) -> Option<(&[u8], &str, &str, &[u8])> {
    let rest = line.strip_prefix(b"[")?;
    let close = rest.iter().position(|&b| b == b']')?;
    let (time, rest) = (&rest[..close], &rest[close + 1..]);
    let rest = rest.strip_prefix(b" ")?;
    let colon = rest.iter().position(|&b| b == b':')?;
    let head = std::str::from_utf8(&rest[..colon]).ok()?;
    let (channel, level) = head.rsplit_once('.')?;
    if channel.is_empty() || channel.contains(' ') || level.is_empty() {
        return None;
    }
    let body = &rest[colon + 1..];
    let start = body.iter().position(|&b| b == b'{')?;
    let end = body.iter().rposition(|&b| b == b'}')?;
    if end < start {
        return None;
    }
    Some((time, channel, level, &body[start..=end]))
}

fn looks_like(line: &[u8]) -> bool {
    split(line).is_some_and(|(_, _, _, json)| {
        serde_json::from_slice::<Map<String, Value>>(json)
            .is_ok_and(|m| m.get("type").is_some_and(Value::is_string) && m.contains_key("ip"))
    })
}

impl Format for MagentoEvents {
    fn variants(&self) -> &'static [(&'static str, &'static str)] {
        VARIANTS
    }

    fn source(&self) -> SourceKind {
        SourceKind::App
    }

    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)> {
        let n = sample.iter().filter(|l| looks_like(l)).count();
        (n > 0).then(|| (0, n as f64 / sample.len() as f64))
    }

    fn parser(&self, _variant: usize, ctx: &ParseContext) -> Box<dyn Parser> {
        Box::new(EvParser { ctx: ctx.clone() })
    }
}

struct EvParser {
    ctx: ParseContext,
}

impl Parser for EvParser {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink) {
        if let Some(reason) = crate::precheck(bytes) {
            return sink.skip(line, reason, bytes);
        }
        let Some((time, channel, level, json)) = split(bytes) else {
            return sink.skip(line, skip::UNPARSEABLE, bytes);
        };
        let Some(ts) = crate::time::iso8601(time, &self.ctx) else {
            return sink.skip(line, skip::BAD_TIMESTAMP, bytes);
        };
        let Ok(m) = serde_json::from_slice::<Map<String, Value>>(json) else {
            return sink.skip(line, skip::UNPARSEABLE, bytes);
        };
        let Some(kind) = m.get("type").and_then(Value::as_str) else {
            return sink.skip(line, skip::UNPARSEABLE, bytes);
        };
        let ip = m.get("ip").and_then(Value::as_str).unwrap_or("");
        let xff = m
            .get("x-forwarded-for-ip")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let client_ip = self.ctx.client_ip(ip, xff);
        let detail = if kind == "ADMIN_LOGIN_FAILED" {
            EventDetail::Login {
                user: None,
                outcome: LoginOutcome::Failure,
            }
        } else {
            EventDetail::App {
                level: Cow::Borrowed(level),
                channel: Some(Cow::Borrowed(channel)),
                message: Cow::Borrowed(kind),
            }
        };
        let ev = Event {
            ts: Some(ts),
            source: Some(SourceKind::App),
            client_ip,
            detail,
            ..Default::default()
        };
        sink.event(&ev, line, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Vec<(Option<String>, String)>, Vec<&'static str>);
    impl EventSink for Collect {
        fn event(&mut self, ev: &Event<'_>, _line: u64, _raw: &[u8]) {
            let what = match &ev.detail {
                EventDetail::App { message, .. } => message.to_string(),
                EventDetail::Login { .. } => "login-failure".into(),
                _ => "other".into(),
            };
            self.0.push((ev.client_ip.map(|i| i.to_string()), what));
        }
        fn skip(&mut self, _line: u64, reason: &'static str, _raw: &[u8]) {
            self.1.push(reason);
        }
    }

    const PAY: &str = r#"[2022-02-11 14:44:34] crowdsec-events.INFO:  {"type":"PAYMENT_FAILED","ip":"1.2.3.4","x-forwarded-for-ip":"","bouncer_agent":"Magento 2 CrowdSec Bouncer/v1.0.0","payment_method":"braintree"} []"#;

    #[test]
    fn detects_and_parses_records() {
        let admin = r#"[2022-02-11 13:41:28] crowdsec-events.INFO:  {"type":"ADMIN_LOGIN_FAILED","ip":"1.2.3.5","x-forwarded-for-ip":""} []"#;
        let lines: Vec<&[u8]> = vec![PAY.as_bytes(), admin.as_bytes()];
        assert_eq!(MagentoEvents.detect(&lines), Some((0, 1.0)));
        let access: Vec<&[u8]> =
            vec![b"1.2.3.4 - - [11/Feb/2022:14:44:34 +0000] \"GET / HTTP/1.1\" 200 1"];
        assert_eq!(MagentoEvents.detect(&access), None);
        let mut p = MagentoEvents.parser(0, &ParseContext::default());
        let mut c = Collect(Vec::new(), Vec::new());
        p.feed(1, PAY.as_bytes(), &mut c);
        p.feed(2, admin.as_bytes(), &mut c);
        p.feed(
            3,
            b"[2022-13-45 99:00:00] x.INFO: {\"type\":\"A\",\"ip\":\"\"} []",
            &mut c,
        );
        p.feed(
            4,
            b"[2022-02-11 14:44:34] crowdsec-events.INFO: {not json} []",
            &mut c,
        );
        p.feed(5, b"garbage", &mut c);
        assert_eq!(
            c.0,
            vec![
                (Some("1.2.3.4".into()), "PAYMENT_FAILED".into()),
                (Some("1.2.3.5".into()), "login-failure".into())
            ]
        );
        assert_eq!(
            c.1,
            vec![skip::BAD_TIMESTAMP, skip::UNPARSEABLE, skip::UNPARSEABLE]
        );
    }
}
