//! What the WAF parsers share: reading ModSecurity alert text (`Warning. … [id "942100"] [msg
//! "…"] [severity "CRITICAL"]`), mapping OWASP CRS rule ids, tags and vendor labels to an
//! attack class, ranking severities, and building the WAF [`Event`].

use std::borrow::Cow;

use ecir_model::{Event, EventDetail, SourceKind, Timestamp, WafAction, WafClass};

/// Most rule ids / messages one WAF event keeps (attacker-controlled counts stay bounded).
pub const MAX_RULES: usize = 32;
/// Longest message text kept per rule.
pub const MAX_MESSAGE: usize = 256;

/// The fields of one ModSecurity alert message.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Alert {
    /// `Access denied …` / `Access allowed …` / `Warning.`
    pub disruptive: bool,
    pub allowed: bool,
    /// Status of an `Access denied with code N`.
    pub code: Option<u16>,
    pub id: Option<String>,
    pub msg: Option<String>,
    pub severity: Option<String>,
    pub tags: Vec<String>,
    pub uri: Option<String>,
    pub hostname: Option<String>,
    pub unique_id: Option<String>,
    /// `[client 1.2.3.4]` inside the message.
    pub client: Option<String>,
}

/// Parses a ModSecurity alert (with or without a `ModSecurity: ` / `Message: ` prefix).
/// Never fails: unknown text yields an empty alert.
pub fn parse_alert(text: &str) -> Alert {
    let mut a = Alert::default();
    let body = match text.find("ModSecurity: ") {
        Some(i) => &text[i + 13..],
        None => text.trim_start().strip_prefix("Message: ").unwrap_or(text),
    };
    let head = body.trim_start();
    if let Some(rest) = head.strip_prefix("Access denied") {
        a.disruptive = true;
        if let Some(r) = rest.trim_start().strip_prefix("with code ") {
            let n: String = r.chars().take_while(|c| c.is_ascii_digit()).collect();
            a.code = n.parse().ok();
        }
    } else if head.starts_with("Access allowed") {
        a.allowed = true;
    }
    // [key "value"] groups; values escape `"` as `\"`.
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'[', &b[i..]) {
        let start = i + off + 1;
        let key_end = b[start..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
            .map(|p| start + p);
        let Some(ke) = key_end else { break };
        let key = &text[start..ke];
        if key.is_empty() {
            i = start;
            continue;
        }
        // [client 1.2.3.4] (no quotes)
        if key == "client" && b.get(ke) == Some(&b' ') && b.get(ke + 1) != Some(&b'"') {
            if let Some(close) = memchr::memchr(b']', &b[ke..]) {
                let v = text[ke + 1..ke + close].trim();
                if a.client.is_none() {
                    a.client = Some(v.to_string());
                }
                i = ke + close;
                continue;
            }
        }
        if b.get(ke) != Some(&b' ') || b.get(ke + 1) != Some(&b'"') {
            i = start;
            continue;
        }
        let vs = ke + 2;
        let mut j = vs;
        let mut esc = false;
        while j < b.len() {
            match b[j] {
                b'\\' if !esc => esc = true,
                b'"' if !esc => break,
                _ => esc = false,
            }
            j += 1;
        }
        if j >= b.len() {
            break;
        }
        let v = &text[vs..j];
        let v = || truncate(&v.replace("\\\"", "\""), MAX_MESSAGE);
        match key {
            "id" if a.id.is_none() => a.id = Some(v()),
            "msg" if a.msg.is_none() => a.msg = Some(v()),
            "severity" if a.severity.is_none() => a.severity = Some(v()),
            "tag" if a.tags.len() < MAX_RULES => a.tags.push(v()),
            "uri" if a.uri.is_none() => a.uri = Some(v()),
            "hostname" if a.hostname.is_none() => a.hostname = Some(v()),
            "unique_id" if a.unique_id.is_none() => a.unique_id = Some(v()),
            _ => {}
        }
        i = j;
    }
    a
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut e = max;
    while !s.is_char_boundary(e) {
        e -= 1;
    }
    s[..e].to_string()
}

/// Attack class of an OWASP CRS (v3/v4) rule id; `None` for scoring/correlation rules.
pub fn crs_class(id: &str) -> Option<WafClass> {
    WafClass::of_crs_id(id)
}

/// Attack class from a CRS tag (`attack-sqli`, `OWASP_CRS/WEB_ATTACK/XSS`) or from free text
/// (rule messages, vendor labels such as `AWSManagedRulesSQLiRuleSet`, `CrossSiteScripting_BODY`,
/// SiteGuard signature names `xss-tag-1`).
pub fn text_class(text: &str) -> Option<WafClass> {
    let l = text.to_ascii_lowercase();
    let has = |n: &str| l.contains(n);
    Some(
        if has("sqli") || has("sql injection") || has("sql_injection") || has("sqldatabase") {
            WafClass::Sqli
        } else if has("xss") || has("cross-site scripting") || has("crosssitescripting") {
            WafClass::Xss
        } else if has("lfi")
            || has("local file inclusion")
            || has("path traversal")
            || has("traversal")
        {
            WafClass::Lfi
        } else if has("rfi") || has("remote file inclusion") {
            WafClass::Rfi
        } else if has("injection-php") || has("php injection") || has("phphighrisk") || has("php-")
        {
            WafClass::Php
        } else if has("rce")
            || has("remote command execution")
            || has("command injection")
            || has("unixshell")
            || has("windowsshell")
            || has("cmd-")
            || has("os-command")
        {
            WafClass::Rce
        } else if has("log4j") || has("java") || has("jndi") {
            WafClass::Java
        } else if has("ssrf") || has("metadata") {
            WafClass::Ssrf
        } else if has("scanner") || has("reputation-scanner") || has("scan") {
            WafClass::Scanner
        } else if has("bot") {
            WafClass::Bot
        } else if has("rate") || has("ddos") || has("dos") {
            WafClass::RateLimit
        } else if has("adminprotection")
            || has("admin-protection")
            || has("ipreputation")
            || has("ip-reputation")
        {
            WafClass::AccessControl
        } else if has("protocol") {
            WafClass::Protocol
        } else {
            return None;
        },
    )
}

/// Specificity when several classes match one request: injections first, then the rest.
fn rank(c: WafClass) -> u8 {
    match c {
        WafClass::Rce => 0,
        WafClass::Php => 1,
        WafClass::Java => 2,
        WafClass::Sqli => 3,
        WafClass::Xss => 4,
        WafClass::Rfi => 5,
        WafClass::Lfi => 6,
        WafClass::Ssrf => 7,
        WafClass::Session => 8,
        WafClass::Leakage => 9,
        WafClass::Scanner => 10,
        WafClass::Bot => 11,
        WafClass::AccessControl => 12,
        WafClass::RateLimit => 13,
        WafClass::Protocol => 14,
        WafClass::Generic => 15,
    }
}

/// Keeps the more specific of two classes.
pub fn better(a: Option<WafClass>, b: Option<WafClass>) -> Option<WafClass> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if rank(y) < rank(x) { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Class of one alert: its rule id, else its tags, else its message.
pub fn alert_class(a: &Alert) -> Option<WafClass> {
    let msg_class = a.msg.as_deref().and_then(text_class);
    if let Some(c) = a.id.as_deref().and_then(crs_class) {
        // CRS 2 reused 950xxx-959xxx for injections; its message says which.
        return Some(match msg_class {
            Some(m) if m.is_injection() && !c.is_injection() => m,
            _ => c,
        });
    }
    let mut best = None;
    for t in &a.tags {
        if t.starts_with("attack-") || t.contains("WEB_ATTACK") || t.contains("AUTOMATION") {
            best = better(best, text_class(t));
        }
    }
    best.or_else(|| a.msg.as_deref().and_then(text_class))
}

/// Severity rank, 0 (emergency) … 7 (debug), of a ModSecurity severity (text or number), or
/// of vendor words (`High`, `Critical`); `None` when not recognised.
pub fn severity_rank(s: &str) -> Option<u8> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u8>() {
        return (n <= 7).then_some(n);
    }
    Some(match t.to_ascii_uppercase().as_str() {
        "EMERGENCY" => 0,
        "ALERT" => 1,
        "CRITICAL" => 2,
        "ERROR" | "HIGH" => 3,
        "WARNING" | "MEDIUM" => 4,
        "NOTICE" | "LOW" => 5,
        "INFO" | "INFORMATIONAL" => 6,
        "DEBUG" => 7,
        _ => return None,
    })
}

/// Keeps the more severe of two severity texts.
pub fn worse<'a>(a: Option<Cow<'a, str>>, b: Option<Cow<'a, str>>) -> Option<Cow<'a, str>> {
    match (a, b) {
        (Some(x), Some(y)) => {
            let rx = severity_rank(&x).unwrap_or(u8::MAX);
            let ry = severity_rank(&y).unwrap_or(u8::MAX);
            Some(if ry < rx { y } else { x })
        }
        (x, None) => x,
        (None, y) => y,
    }
}

/// Accumulates the rules of one WAF record.
#[derive(Default, Debug)]
pub struct Rules {
    pub ids: Vec<Cow<'static, str>>,
    pub messages: Vec<Cow<'static, str>>,
    pub severity: Option<Cow<'static, str>>,
    pub attack: Option<WafClass>,
}

impl Rules {
    /// Adds one matched rule (deduplicated by id, bounded).
    pub fn add(
        &mut self,
        id: Option<&str>,
        msg: Option<&str>,
        severity: Option<&str>,
        class: Option<WafClass>,
    ) {
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            if self.ids.len() < MAX_RULES && !self.ids.iter().any(|x| x == id) {
                self.ids.push(Cow::Owned(truncate(id, MAX_MESSAGE)));
                self.messages.push(Cow::Owned(
                    msg.map(|m| truncate(m, MAX_MESSAGE)).unwrap_or_default(),
                ));
            }
        } else if let Some(m) = msg.filter(|s| !s.is_empty()) {
            if self.messages.len() < MAX_RULES && self.ids.is_empty() {
                self.messages.push(Cow::Owned(truncate(m, MAX_MESSAGE)));
            }
        }
        self.severity = worse(
            self.severity.take(),
            severity
                .filter(|s| !s.is_empty())
                .map(|s| Cow::Owned(s.to_string())),
        );
        self.attack = better(self.attack, class);
    }

    pub fn add_alert(&mut self, a: &Alert) {
        self.add(
            a.id.as_deref(),
            a.msg.as_deref(),
            a.severity.as_deref(),
            alert_class(a),
        );
    }
}

/// Splits `GET /x?y HTTP/1.1` into method, target, protocol.
pub fn split_request(r: &str) -> (Option<String>, Option<String>, Option<String>) {
    let r = r.trim();
    let mut parts = r.splitn(2, ' ');
    let method = parts.next().filter(|m| !m.is_empty()).map(str::to_string);
    let Some(rest) = parts.next() else {
        return (method, None, None);
    };
    match rest.rsplit_once(' ') {
        Some((t, p)) if p.starts_with("HTTP/") => {
            (method, Some(t.to_string()), Some(p.to_string()))
        }
        _ => (method, Some(rest.to_string()), None),
    }
}

/// The fields of a WAF event before it is handed to the sink.
#[derive(Default, Debug)]
pub struct WafRecord {
    pub ts: Option<Timestamp>,
    pub client_ip: Option<std::net::IpAddr>,
    pub method: Option<String>,
    pub target: Option<String>,
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub user_agent: Option<String>,
    pub status: Option<u16>,
    pub rules: Rules,
    pub action: Option<WafAction>,
    pub detection_only: bool,
    /// Rules that only counted (see `EventDetail::Waf::counted_by`).
    pub counted_by: Vec<String>,
    /// The policy that judged the request (AWS `webaclId`).
    pub policy: Option<String>,
    pub engine_mode: Option<String>,
    pub transaction: Option<String>,
}

impl WafRecord {
    pub fn event(self) -> Event<'static> {
        Event {
            ts: self.ts,
            source: Some(SourceKind::Waf),
            client_ip: self.client_ip,
            method: self.method.map(Cow::Owned),
            target: self.target.map(Cow::Owned),
            protocol: self.protocol.map(Cow::Owned),
            status: self.status,
            host: self.host.map(Cow::Owned),
            user_agent: self.user_agent.map(Cow::Owned),
            detail: EventDetail::Waf {
                rule_ids: self.rules.ids,
                messages: self.rules.messages,
                action: self.action.unwrap_or(WafAction::Unknown),
                severity: self.rules.severity,
                detection_only: self.detection_only,
                counted_by: self.counted_by.into_iter().map(Cow::Owned).collect(),
                policy: self.policy.map(Cow::Owned),
                attack: self.rules.attack,
                engine_mode: self.engine_mode.map(Cow::Owned),
                transaction: self.transaction.map(Cow::Owned),
            },
            ..Default::default()
        }
    }
}

/// Engine-mode text that means "detect but do not block".
pub fn is_detection_mode(s: &str) -> bool {
    let l = s.to_ascii_lowercase().replace(['_', '-', ' '], "");
    l == "detectiononly" || l == "detection" || l == "monitor"
}

/// Format detection for JSON-lines WAF logs: the share of sample lines that are JSON objects
/// `is_kind` recognises (variant 0).
pub(crate) fn detect_json_lines(
    sample: &[&[u8]],
    is_kind: fn(&serde_json::Map<String, serde_json::Value>) -> bool,
) -> Option<(usize, f64)> {
    let n = sample
        .iter()
        .filter(|l| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(l)
                .is_ok_and(|m| is_kind(&m))
        })
        .count();
    (n > 0).then(|| (0, n as f64 / sample.len() as f64))
}

/// Maps one JSON record of a WAF log to a [`WafRecord`], or says why it cannot.
pub(crate) type JsonRecordFn = fn(
    &serde_json::Map<String, serde_json::Value>,
    &crate::ParseContext,
) -> Result<WafRecord, &'static str>;

/// The parser every JSON-lines WAF format shares: one JSON object per line, mapped by the
/// format's `parse` function; blank, NUL-holding and non-JSON lines are skipped with reasons.
pub(crate) struct JsonLinesParser {
    pub ctx: crate::ParseContext,
    pub parse: JsonRecordFn,
}

impl crate::Parser for JsonLinesParser {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn crate::EventSink) {
        if let Some(reason) = crate::precheck(bytes) {
            return sink.skip(line, reason, bytes);
        }
        // JSON escapes control characters: a raw CR separates records.
        if crate::has_bare_cr(bytes) {
            return crate::feed_split_at_cr(line, bytes, sink, &mut |record, sink| {
                self.feed(line, record, sink)
            });
        }
        let m: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(bytes) {
            Ok(m) => m,
            Err(_) => return sink.skip(line, crate::skip::UNPARSEABLE, bytes),
        };
        match (self.parse)(&m, &self.ctx) {
            Ok(r) => sink.event(&r.event(), line, bytes),
            Err(reason) => sink.skip(line, reason, bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_fields_and_class() {
        let a = parse_alert(
            r#"[client 172.24.0.1] ModSecurity: Access denied with code 403 (phase 2). Operator GE matched 5 at TX:x. [file "/r/REQUEST-949.conf"] [line "233"] [id "949110"] [msg "Inbound Anomaly Score Exceeded (Total Score: 10)"] [tag "a\"b"] [hostname "localhost"] [uri "/"] [unique_id "Zn0"]"#,
        );
        assert!(a.disruptive);
        assert_eq!(a.code, Some(403));
        assert_eq!(a.id.as_deref(), Some("949110"));
        assert_eq!(a.tags, vec!["a\"b".to_string()]);
        assert_eq!(a.client.as_deref(), Some("172.24.0.1"));
        assert_eq!(alert_class(&a), None);
        let w = parse_alert(
            r#"Warning. detected XSS using libinjection. [id "941100"] [severity "CRITICAL"]"#,
        );
        assert!(!w.disruptive);
        assert_eq!(alert_class(&w), Some(WafClass::Xss));
        assert_eq!(severity_rank("2"), severity_rank("CRITICAL"));
        // Unterminated value: no panic, what came before is kept.
        let bad = parse_alert(r#"Warning. [id "1"] [msg "oops"#);
        assert_eq!(bad.id.as_deref(), Some("1"));
        assert_eq!(bad.msg, None);
    }

    #[test]
    fn classes() {
        assert_eq!(crs_class("942100"), Some(WafClass::Sqli));
        assert_eq!(crs_class("930120"), Some(WafClass::Lfi));
        assert_eq!(crs_class("949110"), None);
        assert_eq!(
            text_class("AWSManagedRulesSQLiRuleSet"),
            Some(WafClass::Sqli)
        );
        assert_eq!(
            text_class("CrossSiteScripting_QUERYARGUMENTS"),
            Some(WafClass::Xss)
        );
        assert_eq!(text_class("GenericLFI_URIPATH"), Some(WafClass::Lfi));
        assert_eq!(text_class("Log4JRCE"), Some(WafClass::Rce));
        assert_eq!(
            better(Some(WafClass::Protocol), Some(WafClass::Sqli)),
            Some(WafClass::Sqli)
        );
    }
}
