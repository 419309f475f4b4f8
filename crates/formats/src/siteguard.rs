//! SiteGuard Lite / Server Edition (JP-Secure) `detect.log`: squid-like space-separated
//! lines `<epoch.usec> <ms> <client> TCP_MISS/000 <size> <METHOD> <URL> - DIRECT/<server>
//! <type> DETECT-STAT:WAF:<detect_name>::<str>:<str_all>: ACTION:<MONITOR|BLOCK|FILTER>:
//! JUDGE:…: SEARCH-KEY:<key>:`, optionally prefixed by a control-panel download time
//! `YYYY-MM-DD hh:mm:ss : `.
//!
//! The URL is logged raw (it may hold `<` or `"`); fields are anchored on ` DETECT-STAT:` and
//! ` ACTION:` from the right. `MONITOR` is detection only (the request passed).

use ecir_model::{SourceKind, WafAction};

use crate::context::ParseContext;
use crate::time::epoch;
use crate::waf_common::{text_class, WafRecord};
use crate::{skip, EventSink, Format, Parser};

pub struct SiteGuard;

const VARIANTS: &[(&str, &str)] = &[(
    "siteguard-detect",
    "SiteGuard Lite / Server Edition detect.log (DETECT-STAT:WAF … ACTION:…)",
)];

impl Format for SiteGuard {
    fn variants(&self) -> &'static [(&'static str, &'static str)] {
        VARIANTS
    }

    fn source(&self) -> SourceKind {
        SourceKind::Waf
    }

    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)> {
        let n = sample
            .iter()
            .filter(|l| {
                memchr::memmem::find(l, b" DETECT-STAT:").is_some()
                    && memchr::memmem::find(l, b" ACTION:").is_some()
            })
            .count();
        (n > 0).then(|| (0, n as f64 / sample.len() as f64))
    }

    fn parser(&self, _variant: usize, ctx: &ParseContext) -> Box<dyn Parser> {
        Box::new(SgParser { ctx: ctx.clone() })
    }
}

struct SgParser {
    ctx: ParseContext,
}

impl Parser for SgParser {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink) {
        if let Some(reason) = crate::precheck(bytes) {
            return sink.skip(line, reason, bytes);
        }
        let text = String::from_utf8_lossy(bytes);
        match parse(&text, &self.ctx) {
            Ok(r) => sink.event(&r.event(), line, bytes),
            Err(reason) => sink.skip(line, reason, bytes),
        }
    }
}

fn parse(text: &str, ctx: &ParseContext) -> Result<WafRecord, &'static str> {
    let mut t = text.trim();
    // Control-panel download prefix `2018-07-12 21:19:17 : `.
    // `get`: the line is attacker text, and bytes 19 and 22 need not start characters.
    if t.len() > 22 && t.as_bytes()[4] == b'-' && t.get(19..22) == Some(" : ") {
        t = &t[22..];
    }
    let ds = t.rfind(" DETECT-STAT:").ok_or(skip::UNPARSEABLE)?;
    let (head, tail) = (&t[..ds], &t[ds + 13..]);
    let mut f = head.split_ascii_whitespace();
    let ts = f
        .next()
        .and_then(|e| epoch(e.as_bytes()))
        .ok_or(skip::BAD_TIMESTAMP)?;
    let _ms = f.next();
    let client = f.next().ok_or(skip::UNPARSEABLE)?;
    let _squid = f.next();
    let _size = f.next();
    let method = f.next().ok_or(skip::UNPARSEABLE)?;
    // The URL runs to ` - DIRECT/`; it may contain spaces.
    let after_method = head
        .find(&format!(" {method} "))
        .map(|i| i + method.len() + 2)
        .ok_or(skip::UNPARSEABLE)?;
    let url_end = head
        .rfind(" - DIRECT/")
        .or_else(|| head.rfind(" - "))
        .unwrap_or(head.len());
    let url = head
        .get(after_method..url_end.max(after_method))
        .unwrap_or("")
        .trim();
    let (host, target) = match url.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => (Some(rest[..i].to_string()), rest[i..].to_string()),
            None => (Some(rest.to_string()), "/".to_string()),
        },
        None => (None, url.to_string()),
    };
    let mut rec = WafRecord {
        ts: Some(ts),
        method: Some(method.to_string()),
        target: Some(target),
        host,
        ..Default::default()
    };
    rec.client_ip = ctx.client_ip(client, None);
    // WAF:<detect_name>::<detect_str>:<detect_str_all>: ACTION:<x>: JUDGE:…: SEARCH-KEY:<k>:
    let name = tail.strip_prefix("WAF:").unwrap_or(tail);
    let name = &name[..name
        .find("::")
        .or_else(|| name.find(" ACTION:"))
        .unwrap_or(name.len())];
    let parts: Vec<&str> = name.split('/').collect();
    let (id, sig) = match parts.first().copied() {
        Some("RULE_SIG") => (parts.get(4).copied(), parts.get(5).copied()),
        Some(kind) => (Some(kind), parts.get(1).copied()),
        None => (None, None),
    };
    let class = sig
        .and_then(text_class)
        .or_else(|| match parts.first().copied() {
            Some("WAF_FILTER") => Some(ecir_model::WafClass::AccessControl),
            Some("RULE_PARAMS_NUM") | Some("RULE_URLDECODE") => {
                Some(ecir_model::WafClass::Protocol)
            }
            _ => None,
        });
    rec.rules.add(id, sig.or(Some(name)), None, class);
    let action = tail
        .rfind(" ACTION:")
        .map(|i| &tail[i + 8..])
        .and_then(|a| a.split(':').next())
        .ok_or(skip::UNPARSEABLE)?;
    rec.action = Some(match action {
        "BLOCK" | "FILTER" => WafAction::Blocked,
        "MONITOR" => WafAction::LoggedOnly,
        _ => WafAction::Unknown,
    });
    rec.detection_only = action == "MONITOR";
    if rec.detection_only {
        rec.engine_mode = Some("MONITOR".into());
    }
    rec.transaction = tail
        .rfind("SEARCH-KEY:")
        .map(|i| tail[i + 11..].trim_end_matches(':').to_string());
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect;
    use crate::testing::parse_all;
    use ecir_model::{EventDetail, WafClass};

    /// Reference samples (siteguard.md), verbatim, plus a MONITOR variant of the first.
    const SAMPLE: &str = r#"1531397957.965300      0 192.168.0.100 TCP_MISS/000 0 GET http://example.com/?p=<script>alert(%22hello%22)</script> - DIRECT/192.168.1.100 - DETECT-STAT:WAF:RULE_SIG/PART_PARAM_VALUE|PART_GET_PARAM/p/OFFICIAL/00102001/xss-tag-1::%3cscript%3e:%3cscript%3ealert(%22hello%22)%3c/script%3e: ACTION:BLOCK: JUDGE:BLOCK:0: SEARCH-KEY:1531397957.965300.76402:
1526955182.297552   6327 192.168.0.100 TCP_MISS/000 971720 POST http://example.com/ - DIRECT/192.168.1.100 multipart/form-data DETECT-STAT:WAF:RULE_PARAMS_NUM/PART_REQBODY/3000:::8416: ACTION:BLOCK: JUDGE:BLOCK:0: SEARCH-KEY:1526955182.297552.41097:
2018-07-12 21:19:17 : 1531397957.965300      0 192.168.0.100 TCP_MISS/000 0 GET http://example.com/?p=<script>alert(%22hello%22)</script> - DIRECT/10.51.100.34 - DETECT-STAT:WAF:RULE_SIG/PART_PARAM_VALUE|PART_GET_PARAM/p/OFFICIAL/00102001/xss-tag-1::%3cscript%3e:%3cscript%3ealert(%22hello%22)%3c/script%3e: ACTION:BLOCK: JUDGE:BLOCK:0: SEARCH-KEY:1531397957.965300.76402:
1555835923.548072      0 172.28.0.4 TCP_MISS/000 0 GET http://siteguard/WAF-TEST-SIGNATURE/ - DIRECT/172.28.0.3 - DETECT-STAT:WAF:RULE_SIG/PART_PATH//OFFICIAL/94001001/url-waf-test-1::/WAF-TEST-SIGNATURE:: ACTION:BLOCK: JUDGE:BLOCK:0: SEARCH-KEY:1555835923.548072.87337:
1531397957.965300      0 192.168.0.100 TCP_MISS/000 0 GET http://example.com/?p=<script>alert(%22hello%22)</script> - DIRECT/192.168.1.100 - DETECT-STAT:WAF:RULE_SIG/PART_PARAM_VALUE|PART_GET_PARAM/p/OFFICIAL/00102001/xss-tag-1::%3cscript%3e:%3cscript%3ealert(%22hello%22)%3c/script%3e: ACTION:MONITOR: JUDGE:MONITOR:0: SEARCH-KEY:1531397957.965300.76403:"#;

    #[test]
    fn a_character_across_the_panel_prefix_is_skipped_not_a_panic() {
        // `é` is bytes 18..20: byte 19 is inside it.
        let line = "2018-07-12 21:19:1\u{e9} : 1794110585.000000 0 203.0.113.88 TCP_MISS/000 0 POST http://shop.example.jp/contact - DIRECT/10.0.0.5 text/html DETECT-STAT:WAF:RULE_SIG/PART_PARAM_VALUE/contents/OFFICIAL/00102001/xss-tag-1::%3cscript%3e: ACTION:MONITOR: JUDGE:MONITOR:0: SEARCH-KEY:1.2:";
        let chosen = crate::by_name("siteguard-detect").unwrap();
        let c = parse_all(chosen, &ParseContext::default(), line);
        assert_eq!(c.events.len() + c.skips.len(), 1);
    }

    #[test]
    fn reference_samples() {
        let chosen = detect(&SAMPLE.lines().map(str::as_bytes).collect::<Vec<_>>()).unwrap();
        assert_eq!(chosen.name(), "siteguard-detect");
        let c = parse_all(chosen, &ParseContext::default(), SAMPLE);
        assert_eq!(c.events.len(), 5, "{:?}", c.skips);
        let e = &c.events[0].1;
        assert_eq!(e.ts.unwrap().secs(), 1531397957);
        assert_eq!(e.client_ip, Some("192.168.0.100".parse().unwrap()));
        assert_eq!(
            e.target.as_deref(),
            Some("/?p=<script>alert(%22hello%22)</script>")
        );
        assert_eq!(e.host.as_deref(), Some("example.com"));
        assert_eq!(c.events[2].1.ts, e.ts);
        match &c.details[0] {
            EventDetail::Waf {
                rule_ids,
                attack,
                action,
                ..
            } => {
                assert_eq!(rule_ids, &["00102001"]);
                assert_eq!(*attack, Some(WafClass::Xss));
                assert_eq!(*action, WafAction::Blocked);
            }
            d => panic!("{d:?}"),
        }
        assert!(matches!(
            &c.details[1],
            EventDetail::Waf {
                attack: Some(WafClass::Protocol),
                ..
            }
        ));
        assert!(matches!(
            &c.details[4],
            EventDetail::Waf {
                action: WafAction::LoggedOnly,
                detection_only: true,
                ..
            }
        ));
        assert_eq!(c.events[1].1.method.as_deref(), Some("POST"));
    }
}
