//! ModSecurity alerts inside web-server error logs: Apache 2.2/2.4 `error_log` (`[Thu Jun 27
//! 08:56:59.851916 2024] [security2:error] … [client IP] ModSecurity: …`) and nginx `error.log`
//! with the libmodsecurity connector (`2021/04/13 06:56:45 [error] …: *38 [client IP]
//! ModSecurity: … , client: IP, server: …, request: "GET / HTTP/1.1", host: "…"`).
//!
//! One alert line is one event (one matched rule); other error-log lines are skipped as
//! `not-a-waf-message`. `Access denied` is a block; `Warning.` is logged only, and a `Warning`
//! from the CRS blocking-evaluation rules (949110, 959100) means the engine ran in
//! DetectionOnly, since in blocking mode those rules deny.

use std::borrow::Cow;

use ecir_model::{Event, EventDetail, SourceKind, WafAction};

use crate::context::ParseContext;
use crate::modsec_json::asctime;
use crate::time::iso8601;
use crate::waf_common::{parse_alert, split_request, WafRecord};
use crate::{skip, EventSink, Format, Parser};

pub struct ModsecErrorLog;

const VARIANTS: &[(&str, &str)] = &[
    (
        "modsec-apache-error",
        "ModSecurity messages in an Apache httpd error log (2.2 and 2.4 prefixes)",
    ),
    (
        "modsec-nginx-error",
        "ModSecurity messages in an nginx error log (libmodsecurity connector)",
    ),
];

/// Which error-log shape a line has: 0 Apache, 1 nginx.
fn shape(l: &[u8]) -> Option<usize> {
    if l.len() > 26 && l[0] == b'[' && l[1].is_ascii_uppercase() && l[4] == b' ' {
        Some(0)
    } else if l.len() > 20
        && l[4] == b'/'
        && l[7] == b'/'
        && l[10] == b' '
        && l[..4].iter().all(u8::is_ascii_digit)
    {
        Some(1)
    } else {
        None
    }
}

const MARK: &[u8] = b"ModSecurity: ";

impl Format for ModsecErrorLog {
    fn variants(&self) -> &'static [(&'static str, &'static str)] {
        VARIANTS
    }

    fn source(&self) -> SourceKind {
        SourceKind::Waf
    }

    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)> {
        let mut counts = [0usize; 2];
        let mut modsec = 0;
        for l in sample {
            if let Some(v) = shape(l) {
                counts[v] += 1;
                if memchr::memmem::find(l, MARK).is_some() {
                    modsec += 1;
                }
            }
        }
        if modsec == 0 {
            return None;
        }
        let (v, n) = if counts[1] > counts[0] {
            (1, counts[1])
        } else {
            (0, counts[0])
        };
        Some((v, n as f64 / sample.len() as f64))
    }

    fn parser(&self, _variant: usize, ctx: &ParseContext) -> Box<dyn Parser> {
        Box::new(ErrParser { ctx: ctx.clone() })
    }
}

struct ErrParser {
    ctx: ParseContext,
}

impl Parser for ErrParser {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink) {
        if let Some(reason) = crate::precheck(bytes) {
            return sink.skip(line, reason, bytes);
        }
        let Some(shape) = shape(bytes) else {
            return sink.skip(line, skip::UNPARSEABLE, bytes);
        };
        if memchr::memmem::find(bytes, MARK).is_none() {
            return sink.skip(line, skip::NOT_WAF, bytes);
        }
        let text = String::from_utf8_lossy(bytes);
        match parse(&text, shape, &self.ctx) {
            Ok(e) => sink.event(&e, line, bytes),
            Err(reason) => sink.skip(line, reason, bytes),
        }
    }
}

/// Channel of the [`EventDetail::App`] event a ModSecurity `Audit log: …` failure becomes
/// (`Failed writing`, `Failed to lock global mutex`, …): the WAF could not record what it saw.
pub const AUDIT_FAILURE_CHANNEL: &str = "modsecurity-audit-log";

fn parse(text: &str, shape: usize, ctx: &ParseContext) -> Result<Event<'static>, &'static str> {
    let ts = if shape == 0 {
        let end = text.find(']').ok_or(skip::UNPARSEABLE)?;
        asctime(&text[1..end], ctx)
    } else {
        // `2026/11/10 03:37:00`, read as bytes: a character may straddle any position.
        let b = text.as_bytes();
        let mut t: Vec<u8> = b[..10]
            .iter()
            .map(|&c| if c == b'/' { b'-' } else { c })
            .collect();
        t.push(b' ');
        t.extend_from_slice(&b[11..19.min(b.len())]);
        iso8601(&t, ctx)
    }
    .ok_or(skip::BAD_TIMESTAMP)?;
    let mark = text.find("ModSecurity: ").ok_or(skip::NOT_WAF)?;
    let alert_text = &text[mark..];
    let prefix = &text[..mark];
    // nginx appends `, client: …, server: …, request: "…", host: "…"` after the alert.
    let (alert_part, tail) = if shape == 1 {
        match alert_text.rfind(", client: ") {
            Some(i) => (&alert_text[..i], Some(&alert_text[i..])),
            None => (alert_text, None),
        }
    } else {
        (alert_text, None)
    };
    if let Some(msg) = alert_part.strip_prefix("ModSecurity: Audit log: ") {
        // The audit log itself failed: no alert, but evidence that records went missing.
        let pre = parse_alert(prefix);
        let end = msg.find(" [").unwrap_or(msg.len());
        return Ok(Event {
            ts: Some(ts),
            source: Some(SourceKind::Waf),
            client_ip: client_ip(pre.client.as_deref(), ctx),
            detail: EventDetail::App {
                level: Cow::Borrowed("error"),
                channel: Some(Cow::Borrowed(AUDIT_FAILURE_CHANNEL)),
                message: Cow::Owned(format!(
                    "Audit log: {}",
                    crate::waf_common::truncate(&msg[..end], 300)
                )),
            },
            ..Default::default()
        });
    }
    let a = parse_alert(alert_part);
    if a.id.is_none() && !a.disruptive && !alert_part.contains("Warning.") {
        // `Audit log: Failed writing …`, `Rule processing failed`, … : not an alert.
        return Err(skip::NOT_WAF);
    }
    let pre = parse_alert(prefix);
    let mut rec = WafRecord {
        ts: Some(ts),
        host: a.hostname.clone(),
        transaction: a.unique_id.clone(),
        target: a.uri.clone(),
        ..Default::default()
    };
    let mut client = pre.client.clone().or_else(|| a.client.clone());
    if let Some(tail) = tail {
        if let Some(c) = field(tail, ", client: ") {
            client = Some(c.to_string());
        }
        if let Some(h) = quoted_field(tail, ", host: \"") {
            rec.host = Some(h.to_string());
        }
        if let Some(i) = tail.find(", request: \"") {
            let r = &tail[i + 12..];
            // The request is not escaped: end at `", host: "` / `", referrer: "` from the right.
            // The request line has no raw space inside its target, so the quote after its
            // ` HTTP/x` ends it even when `, upstream: "…"` follows.
            let proto_end = r
                .find(" HTTP/")
                .and_then(|h| r[h..].find('"').map(|q| h + q));
            let end = proto_end
                .or_else(|| r.rfind("\", host: \""))
                .or_else(|| r.rfind("\", referrer: \""))
                .or_else(|| r.rfind('"'))
                .unwrap_or(r.len());
            let (m, t, p) = split_request(&r[..end]);
            rec.method = m;
            if t.is_some() {
                rec.target = t;
            }
            rec.protocol = p;
        }
    }
    rec.client_ip = client_ip(client.as_deref(), ctx)
        .or_else(|| client_ip(pre.client.as_deref(), ctx))
        .or_else(|| client_ip(a.client.as_deref(), ctx));
    rec.rules.add_alert(&a);
    let scoring = matches!(
        a.id.as_deref(),
        Some("949110" | "959100" | "949111" | "959101")
    );
    rec.detection_only = !a.disruptive && scoring;
    if rec.detection_only {
        rec.engine_mode =
            Some("DetectionOnly (inferred: blocking-evaluation rule only warned)".into());
    }
    rec.status = a.code;
    rec.action = Some(if a.disruptive {
        WafAction::Blocked
    } else if a.allowed {
        WafAction::Allowed
    } else {
        WafAction::LoggedOnly
    });
    Ok(rec.event())
}

/// A `[client …]` value: an address, `v4:port`, or an unbracketed `v6:port` (`::1:37752`,
/// which Apache 2.4 writes) whose last group is the port.
fn client_ip(c: Option<&str>, ctx: &ParseContext) -> Option<std::net::IpAddr> {
    let c = c?;
    ctx.client_ip(c, None).or_else(|| {
        let (addr, port) = c.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        ctx.client_ip(addr, None)
    })
}

/// The value after `key` up to the next `,`.
fn field<'t>(s: &'t str, key: &str) -> Option<&'t str> {
    let i = s.find(key)? + key.len();
    let rest = &s[i..];
    Some(rest.split(',').next().unwrap_or(rest).trim())
}

fn quoted_field<'t>(s: &'t str, key: &str) -> Option<&'t str> {
    let i = s.rfind(key)? + key.len();
    let rest = &s[i..];
    Some(&rest[..rest.find('"')?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect;
    use crate::testing::{parse_all, shared_dir};
    use ecir_model::{EventDetail, WafClass};

    /// Reference samples (modsecurity-error-log.md), verbatim, plus an unrelated error line.
    const APACHE: &str = r#"[Thu Jun 27 08:56:59.851916 2024] [security2:error] [pid 32:tid 140093630314176] [client 172.24.0.1:59528] [client 172.24.0.1] ModSecurity: Access denied with code 403 (phase 2). Operator GE matched 5 at TX:blocking_inbound_anomaly_score. [file "/etc/modsecurity.d/owasp-crs/rules/REQUEST-949-BLOCKING-EVALUATION.conf"] [line "233"] [id "949110"] [msg "Inbound Anomaly Score Exceeded (Total Score: 10)"] [ver "OWASP_CRS/4.3.0"] [tag "modsecurity"] [tag "anomaly-evaluation"] [tag "OWASP_CRS"] [hostname "localhost"] [uri "/"] [unique_id "Zn0pW-L7yAD60VEVxI269gAAAEA"]
[Thu Nov 17 13:50:03.622441 2016] [:error] [pid 7437:tid 139966449403648] [client ::1] ModSecurity: Warning. detected XSS using libinjection. [file "/etc/modsecurity/rules/REQUEST-941-APPLICATION-ATTACK-XSS.conf"] [line "56"] [id "941100"] [rev "2"] [msg "XSS Attack Detected via libinjection"] [data "Matched Data: accept found within ARGS:param: \\x22><script>alert(1);</script>"] [severity "CRITICAL"] [ver "OWASP_CRS/3.0.0"] [maturity "1"] [accuracy "9"] [tag "application-multi"] [tag "language-multi"] [tag "platform-multi"] [tag "attack-xss"] [tag "OWASP_CRS/WEB_ATTACK/XSS"] [tag "WASCTC/WASC-8"] [tag "WASCTC/WASC-22"] [tag "OWASP_TOP_10/A3"] [tag "OWASP_AppSensor/IE1"] [tag "CAPEC-242"] [hostname "localhost"] [uri "/"] [unique_id "WC21i8CogA0AAB0N9YUAAABR"]
[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico"#;

    const NGINX: &str = r#"2021/04/13 07:24:40 [error] 5191#5191: *44 [client 192.168.4.16] ModSecurity: Access denied with code 403 (phase 2). Matched "Operator `Ge' with parameter `5' against variable `TX:ANOMALY_SCORE' (Value: `15' ) [file "/etc/nginx/modsec/coreruleset-3.3.0/rules/REQUEST-949-BLOCKING-EVALUATION.conf"] [line "80"] [id "949110"] [rev ""] [msg "Inbound Anomaly Score Exceeded (Total Score: 15)"] [data ""] [severity "2"] [ver "OWASP_CRS/3.3.0"] [maturity "0"] [accuracy "0"] [tag "application-multi"] [tag "language-multi"] [tag "platform-multi"] [tag "attack-generic"] [hostname "192.168.6.20"] [uri "/"] [unique_id "1618298680"] [ref ""], client: 192.168.4.16, server: ha3.maskott.com, request: "GET /?%3Cscript%3Ealert(warning)%3C/script%3E HTTP/1.1", host: "ha3.maskott.com"
2020/12/17 15:40:24 [error] 191#191: *650 [client 10.123.123.123] ModSecurity: Access denied with code 403 (phase 2). Matched "Operator `Ge' with parameter `5' against variable `TX:ANOMALY_SCORE' (Value: `15' ) [file "/etc/nginx/owasp-modsecurity-crs/rules/REQUEST-949-BLOCKING-EVALUATION.conf"] [line "80"] [id "949110"] [rev ""] [msg "Inbound Anomaly Score Exceeded (Total Score: 15)"] [data ""] [severity "2"] [ver "OWASP_CRS/3.3.0"] [maturity "0"] [accuracy "0"] [tag "application-multi"] [tag "language-multi"] [tag "platform-multi"] [tag "attack-generic"] [hostname "10.10.10.10"] [uri "/"] [unique_id "d2d014613a174e35e48789650559ea84"] [ref ""], client: 10.10.10.20, server: test.test.local, request: "GET /?q="><script>alert(1)</script> HTTP/2.0", host: "test.test.local"
2019/01/24 10:17:52 [warn] 22326#0: *120 [client 172.16.17.54] ModSecurity: Warning. Matched "Operator `Ge' with parameter `5' against variable `TX:ANOMALY_SCORE' (Value: `10' ) [file "/etc/nginx/modsec/owasp-modsecurity-crs-3.0.2/rules/REQUEST-949-BLOCKING-EVALUATION.conf"] [line "36"] [id "949110"] [rev ""] [msg "Inbound Anomaly Score Exceeded (Total Score: 10)"] [data ""] [severity "2"] [ver ""] [maturity "0"] [accuracy "0"] [hostname "1.2.3.4"] [uri "/api/auto-engagement/list/b107e2c8-b4e4-470a-b10d-025b11b376cd"] [unique_id "154834307287.337943"] [ref ""], client: 5.6.7.8, server: test.company.com, request: "DELETE /api/auto-engagement/list/b107e2c8-b4e4-470a-b10d-025b11b376cd HTTP/1.1", host: "test.company.com", referrer: "https://test.company.com/studio/story/d5fac22e-e0eb-49ea-8297-a0ec11ce1149""#;

    #[test]
    fn apache_reference_samples() {
        let chosen = detect(&APACHE.lines().map(str::as_bytes).collect::<Vec<_>>()).unwrap();
        assert_eq!(chosen.name(), "modsec-apache-error");
        let c = parse_all(chosen, &ParseContext::default(), APACHE);
        assert_eq!(c.events.len(), 2);
        assert_eq!(c.skips, vec![(3, skip::NOT_WAF)]);
        let e = &c.events[0].1;
        assert_eq!(e.client_ip, Some("172.24.0.1".parse().unwrap()));
        assert_eq!(e.target.as_deref(), Some("/"));
        assert_eq!(e.ts.unwrap().to_rfc3339(), "2024-06-27T08:56:59.851+00:00");
        assert!(matches!(
            &c.details[0],
            EventDetail::Waf {
                action: WafAction::Blocked,
                detection_only: false,
                ..
            }
        ));
        match &c.details[1] {
            EventDetail::Waf {
                action,
                attack,
                severity,
                rule_ids,
                transaction,
                ..
            } => {
                assert_eq!(*action, WafAction::LoggedOnly);
                assert_eq!(*attack, Some(WafClass::Xss));
                assert_eq!(severity.as_deref(), Some("CRITICAL"));
                assert_eq!(rule_ids, &["941100"]);
                assert_eq!(transaction.as_deref(), Some("WC21i8CogA0AAB0N9YUAAABR"));
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(c.events[1].1.client_ip, Some("::1".parse().unwrap()));
    }

    #[test]
    fn a_character_across_the_time_is_a_bad_timestamp_not_a_panic() {
        // An invalid byte inside the time becomes U+FFFD (three bytes) when read as text,
        // so byte 19 is inside a character.
        let mut line = b"2026/11/10 03:".to_vec();
        line.extend_from_slice(b"\xff\xff\xff37:00 [error] 2210#2210: *304 [client 203.0.113.104] ModSecurity: Access denied with code 403 (phase 1). [id \"913100\"]");
        let chosen = crate::by_name("modsec-nginx-error").unwrap();
        let mut p = chosen
            .format
            .parser(chosen.variant, &ParseContext::default());
        let mut c = crate::testing::Collect::default();
        p.feed(1, &line, &mut c);
        assert_eq!(c.skips, vec![(1, skip::BAD_TIMESTAMP)]);
    }

    #[test]
    fn nginx_reference_samples() {
        let chosen = detect(&NGINX.lines().map(str::as_bytes).collect::<Vec<_>>()).unwrap();
        assert_eq!(chosen.name(), "modsec-nginx-error");
        let c = parse_all(chosen, &ParseContext::default(), NGINX);
        assert_eq!(c.events.len(), 3);
        let e = &c.events[1].1;
        assert_eq!(e.client_ip, Some("10.10.10.20".parse().unwrap()));
        assert_eq!(
            e.target.as_deref(),
            Some("/?q=\"><script>alert(1)</script>")
        );
        assert_eq!(e.host.as_deref(), Some("test.test.local"));
        assert_eq!(e.method.as_deref(), Some("GET"));
        let w = &c.events[2].1;
        assert_eq!(w.method.as_deref(), Some("DELETE"));
        assert!(matches!(
            &c.details[2],
            EventDetail::Waf {
                action: WafAction::LoggedOnly,
                detection_only: true,
                ..
            }
        ));
        assert!(matches!(
            &c.details[0],
            EventDetail::Waf {
                action: WafAction::Blocked,
                detection_only: false,
                ..
            }
        ));
    }

    /// fail2ban's `apache-modsecurity` cases: every `match: true` line yields an event for the
    /// labelled host at the labelled time.
    #[test]
    fn fail2ban_corpus_agrees() {
        let Some(dir) = shared_dir() else {
            eprintln!("skipping: ../shared not present");
            return;
        };
        let Ok(text) =
            std::fs::read_to_string(dir.join("corpus/fail2ban-test-logs/logs/apache-modsecurity"))
        else {
            eprintln!("skipping: fail2ban corpus not present");
            return;
        };
        let chosen = crate::by_name("modsec-apache-error").unwrap();
        let mut labelled = 0;
        let mut agree = 0;
        let mut label: Option<serde_json::Value> = None;
        for l in text.lines() {
            if let Some(j) = l.strip_prefix("# failJSON: ") {
                label = serde_json::from_str(j).ok();
                continue;
            }
            if l.trim().is_empty() || l.starts_with('#') {
                continue;
            }
            let Some(lab) = label.take() else { continue };
            if lab["match"] != serde_json::Value::Bool(true) {
                continue;
            }
            labelled += 1;
            let c = parse_all(chosen, &ParseContext::default(), l);
            if let Some((_, e)) = c.events.first() {
                let ip_ok = lab["host"].as_str().and_then(|h| h.parse().ok()) == e.client_ip;
                let t = e.ts.unwrap().to_rfc3339();
                let t_ok = lab["time"].as_str().is_some_and(|lt| t.starts_with(lt));
                if ip_ok && t_ok {
                    agree += 1;
                }
            }
        }
        eprintln!("fail2ban apache-modsecurity: {agree}/{labelled} labelled matches agree");
        assert!(labelled > 0);
        assert_eq!(agree, labelled);
    }

    /// crowdsec's ModSecurity error-log tests: every ModSecurity line parses with an IP.
    #[test]
    fn crowdsec_corpus_parses() {
        let Some(dir) = shared_dir() else {
            eprintln!("skipping: ../shared not present");
            return;
        };
        for name in [
            "modsecurity",
            "modsecurity-logs",
            "modsecurity-nginx",
            "modsecurity-logs-nginx",
        ] {
            let p = dir.join(format!("corpus/crowdsec-hub-tests/tests/{name}/{name}.log"));
            let Ok(text) = std::fs::read_to_string(&p) else {
                eprintln!("skipping: {} not present", p.display());
                continue;
            };
            let lines: Vec<&[u8]> = text.lines().map(str::as_bytes).collect();
            let chosen = detect(&lines).unwrap();
            let c = parse_all(chosen, &ParseContext::default(), &text);
            let modsec = text.lines().filter(|l| l.contains("ModSecurity: ")).count();
            eprintln!(
                "crowdsec {name}: {} events of {modsec} ModSecurity lines ({} skips: {:?})",
                c.events.len(),
                c.skips.len(),
                c.skips
            );
            assert!(
                c.events.len() + c.skips.len()
                    == text.lines().filter(|l| !l.trim().is_empty()).count()
                    || !c
                        .skips
                        .iter()
                        .any(|s| s.1 != skip::NOT_WAF && s.1 != skip::EMPTY)
            );
            assert!(c.events.iter().all(|(_, e)| e.ts.is_some()));
            assert!(c.events.len() * 10 >= modsec * 9, "{name}");
        }
    }

    /// Wazuh's ModSecurity cases (`modsecurity.ini`): rule 30401 (warnings) must come out as
    /// logged-only alerts, 30411 (rejected a query) as blocked, 30403 (`Audit log:` failures)
    /// as audit-log failure events, not as alerts.
    #[test]
    fn wazuh_corpus_agrees() {
        let Some(dir) = shared_dir() else {
            eprintln!("skipping: ../shared not present");
            return;
        };
        let p = dir.join("corpus/wazuh-ruleset-tests/tests/modsecurity.ini");
        let Ok(text) = std::fs::read_to_string(&p) else {
            eprintln!("skipping: {} not present", p.display());
            return;
        };
        let chosen = crate::by_name("modsec-apache-error").unwrap();
        let (mut total, mut agree) = (0, 0);
        for case in crate::testing::wazuh_cases(&text) {
            for (pass, l) in &case.logs {
                total += 1;
                let c = parse_all(chosen, &ParseContext::default(), l);
                let got = match c.details.first() {
                    Some(EventDetail::Waf { action, .. }) => match action {
                        WafAction::Blocked => "30411",
                        _ => "30401",
                    },
                    Some(EventDetail::App { channel, .. })
                        if channel.as_deref() == Some(AUDIT_FAILURE_CHANNEL) =>
                    {
                        "30403"
                    }
                    _ => "none",
                };
                let ok = (got == case.rule) == *pass;
                if !ok {
                    eprintln!("disagree: want {} got {got}: {l}", case.rule);
                }
                agree += usize::from(ok);
            }
        }
        eprintln!("wazuh modsecurity: {agree}/{total} lines agree with the expected rule");
        assert!(total >= 6);
        assert_eq!(agree, total);
    }

    /// crowdsec's parser assertions for ModSecurity error logs (Apache and nginx): for every
    /// line crowdsec parsed, the rule id, client and URI path agree with ecir's.
    #[test]
    fn crowdsec_parser_labels_agree() {
        let Some(dir) = shared_dir() else {
            eprintln!("skipping: ../shared not present");
            return;
        };
        let (mut labelled, mut agree) = (0, 0);
        for name in ["modsecurity-logs", "modsecurity-logs-nginx"] {
            let base = dir.join(format!("corpus/crowdsec-hub-tests/tests/{name}"));
            let (Ok(log), Ok(asserts)) = (
                std::fs::read_to_string(base.join(format!("{name}.log"))),
                std::fs::read_to_string(base.join("parser.assert")),
            ) else {
                eprintln!("skipping: {} not present", base.display());
                continue;
            };
            // results["s01-parse"]["crowdsecurity/modsecurity"][N].Evt.Parsed["key"] == "value"
            let mut labels: std::collections::BTreeMap<usize, Vec<(String, String)>> =
                Default::default();
            let prefix = r#"results["s01-parse"]["crowdsecurity/modsecurity"]["#;
            for a in asserts.lines() {
                let Some(rest) = a.strip_prefix(prefix) else {
                    continue;
                };
                let Some((n, rest)) = rest.split_once(']') else {
                    continue;
                };
                let Some(rest) = rest.strip_prefix(".Evt.Parsed[\"") else {
                    continue;
                };
                let Some((k, v)) = rest.split_once("\"] == ") else {
                    continue;
                };
                let (Ok(n), Ok(v)) = (n.parse(), serde_json::from_str::<String>(v)) else {
                    continue;
                };
                labels.entry(n).or_default().push((k.to_string(), v));
            }
            let lines: Vec<&str> = log.lines().collect();
            let chosen = crate::by_name(if name.ends_with("nginx") {
                "modsec-nginx-error"
            } else {
                "modsec-apache-error"
            })
            .unwrap();
            for (n, kv) in &labels {
                if !kv.iter().any(|(k, _)| k == "ruleid") {
                    continue;
                }
                labelled += 1;
                let c = parse_all(chosen, &ParseContext::default(), lines[*n]);
                let (Some((_, e)), Some(EventDetail::Waf { rule_ids, .. })) =
                    (c.events.first(), c.details.first())
                else {
                    continue;
                };
                let ok = kv.iter().all(|(k, v)| match k.as_str() {
                    "ruleid" => rule_ids.first().map(|r| r.as_ref()) == Some(v.as_str()),
                    "sourcehost" => e.client_ip == v.parse().ok(),
                    "targeturi" => e.path() == v,
                    _ => true,
                });
                if !ok {
                    eprintln!(
                        "disagree: {:?} vs {:?} {:?} {rule_ids:?}",
                        kv.iter()
                            .filter(|(k, _)| matches!(
                                k.as_str(),
                                "ruleid" | "sourcehost" | "targeturi"
                            ))
                            .collect::<Vec<_>>(),
                        e.client_ip,
                        e.path()
                    );
                }
                agree += usize::from(ok);
            }
        }
        eprintln!("crowdsec modsecurity parser labels: {agree}/{labelled} lines agree (rule id, client, URI)");
        if labelled > 0 {
            assert_eq!(agree, labelled);
        }
    }
}
