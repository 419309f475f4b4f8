//! Cloudflare Logpush records (JSON lines): `firewall_events` (one security action per line:
//! `Action`, `Source`, `RuleID`, `Datetime`) and `http_requests` (every request: `Edge*`,
//! `SecurityAction(s)`, `SecurityRuleID(s)`, WAF attack scores, deprecated `WAFAction`).
//!
//! Times come as RFC 3339, unix seconds or unix nanoseconds. `block`/`challenge`-style actions
//! are blocks, `log` is logged only, `allow`/`skip`/`bypass`/`*solved` let the request through.
//! An http_requests record with no security action is an allowed request (it still shows the
//! WAF was watching, which monitoring-lapse detection needs). A WAF attack score of 1-20
//! (Cloudflare's "attack" band) sets the attack class even when nothing acted.

use ecir_model::{SourceKind, WafAction, WafClass};
use serde_json::{Map, Value};

use crate::aws_waf::any_time;
use crate::context::ParseContext;
use crate::modsec_json::{num, obj, s};
use crate::waf_common::{better, text_class, WafRecord};
use crate::{skip, Format, Parser};

pub struct Cloudflare;

const VARIANTS: &[(&str, &str)] = &[
    (
        "cloudflare-firewall",
        "Cloudflare Logpush firewall_events (JSON lines: Datetime, Action, Source, RuleID)",
    ),
    (
        "cloudflare-http",
        "Cloudflare Logpush http_requests (JSON lines: EdgeStartTimestamp, Security*/WAF* fields)",
    ),
];

fn variant_of(m: &Map<String, Value>) -> Option<usize> {
    if !m.contains_key("ClientIP") {
        return None;
    }
    if m.contains_key("Datetime") && (m.contains_key("Action") || m.contains_key("Kind")) {
        Some(0)
    } else if m.contains_key("EdgeStartTimestamp") {
        Some(1)
    } else {
        None
    }
}

impl Format for Cloudflare {
    fn variants(&self) -> &'static [(&'static str, &'static str)] {
        VARIANTS
    }

    fn source(&self) -> SourceKind {
        SourceKind::Waf
    }

    fn detect(&self, sample: &[&[u8]]) -> Option<(usize, f64)> {
        let mut counts = [0usize; 2];
        for l in sample {
            if let Ok(m) = serde_json::from_slice::<Map<String, Value>>(l) {
                if let Some(v) = variant_of(&m) {
                    counts[v] += 1;
                }
            }
        }
        let (v, n) = if counts[1] > counts[0] {
            (1, counts[1])
        } else {
            (0, counts[0])
        };
        (n > 0).then(|| (v, (counts[0] + counts[1]) as f64 / sample.len() as f64))
    }

    fn parser(&self, _variant: usize, ctx: &ParseContext) -> Box<dyn Parser> {
        Box::new(crate::waf_common::JsonLinesParser {
            ctx: ctx.clone(),
            parse,
        })
    }
}

/// Maps a Cloudflare action word.
pub fn action_of(a: &str) -> WafAction {
    let a = a.to_ascii_lowercase();
    if a.is_empty() || a == "unknown" {
        WafAction::Unknown
    } else if a == "log" {
        WafAction::LoggedOnly
    } else if a.ends_with("solved")
        || a.ends_with("bypassed")
        || a.ends_with("skipped")
        || matches!(a.as_str(), "allow" | "skip" | "bypass")
    {
        WafAction::Allowed
    } else if a.contains("block")
        || a.contains("challenge")
        || a == "connectionclose"
        || a == "drop"
    {
        WafAction::Blocked
    } else if a == "simulate" {
        WafAction::LoggedOnly
    } else {
        WafAction::Unknown
    }
}

fn parse(m: &Map<String, Value>, ctx: &ParseContext) -> Result<WafRecord, &'static str> {
    let v = variant_of(m).ok_or(skip::UNPARSEABLE)?;
    let tkey = if v == 0 {
        "Datetime"
    } else {
        "EdgeStartTimestamp"
    };
    let ts = m
        .get(tkey)
        .and_then(|t| any_time(t, ctx))
        .ok_or(skip::BAD_TIMESTAMP)?;
    let mut rec = WafRecord {
        ts: Some(ts),
        method: s(m, "ClientRequestMethod").map(str::to_string),
        protocol: s(m, "ClientRequestProtocol").map(str::to_string),
        host: s(m, "ClientRequestHost").map(str::to_string),
        user_agent: s(m, "ClientRequestUserAgent").map(str::to_string),
        transaction: s(m, "RayID").map(str::to_string),
        ..Default::default()
    };
    rec.client_ip = s(m, "ClientIP").and_then(|c| ctx.client_ip(c, None));
    rec.target = if v == 0 {
        s(m, "ClientRequestPath").map(|p| match s(m, "ClientRequestQuery") {
            Some(q) if q.starts_with('?') => format!("{p}{q}"),
            Some(q) => format!("{p}?{q}"),
            None => p.to_string(),
        })
    } else {
        s(m, "ClientRequestURI")
            .or_else(|| s(m, "ClientRequestPath"))
            .map(str::to_string)
    };
    rec.status = num(m, "EdgeResponseStatus")
        .filter(|c| *c != 0)
        .or_else(|| num(m, "OriginResponseStatus").filter(|c| *c != 0));
    let mut action = WafAction::Allowed;
    if v == 0 {
        action = action_of(s(m, "Action").unwrap_or(""));
        let source = s(m, "Source").unwrap_or("");
        let desc = s(m, "Description");
        let class = better(desc.and_then(text_class), text_class(source))
            .or_else(|| obj(m, "Metadata").and_then(|md| md.keys().find_map(|k| text_class(k))));
        rec.rules.add(
            s(m, "RuleID").or(Some(source)),
            desc.or(Some(source)),
            None,
            class,
        );
    } else {
        let sec = s(m, "SecurityAction").or_else(|| s(m, "WAFAction"));
        if let Some(a) = sec {
            let mapped = action_of(a);
            if mapped != WafAction::Unknown {
                action = mapped;
            }
        }
        let desc = s(m, "SecurityRuleDescription").or_else(|| s(m, "WAFRuleMessage"));
        let id = s(m, "SecurityRuleID").or_else(|| s(m, "WAFRuleID"));
        if id.is_some() || desc.is_some() {
            rec.rules.add(id, desc, None, desc.and_then(text_class));
        }
        for (k, c) in [
            ("WAFSQLiAttackScore", WafClass::Sqli),
            ("WAFXSSAttackScore", WafClass::Xss),
            ("WAFRCEAttackScore", WafClass::Rce),
        ] {
            if num(m, k).is_some_and(|n| (1..=20).contains(&n)) {
                rec.rules.attack = better(rec.rules.attack, Some(c));
            }
        }
        if action == WafAction::Allowed && rec.rules.attack.is_some() && rec.rules.ids.is_empty() {
            // Scored as an attack but no rule acted: the WAF saw it and let it through.
            rec.rules.add(
                Some("waf-attack-score"),
                Some("WAF attack score 1-20 (attack)"),
                None,
                None,
            );
            action = WafAction::LoggedOnly;
        }
    }
    rec.detection_only = action == WafAction::LoggedOnly;
    rec.action = Some(action);
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect;
    use crate::testing::{parse_all, shared_dir};
    use ecir_model::EventDetail;

    /// The firewall event from the reference (query strings elided there), in its three time
    /// forms, and the http_requests-shaped 4th line of the same fixture, verbatim.
    const SAMPLE: &str = r#"{"ClientRequestScheme":"https","MatchIndex":1,"ClientRefererHost":"abc.example.com","Source":"firewallrules","ClientRequestUserAgent":"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/101.0.4951.64 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)","ClientRefererPath":"/abc/checkout","Metadata":{"filter":"1ced07e066a34abf8b14f2a99593bc8d","type":"customer"},"EdgeResponseStatus":403,"ClientRequestProtocol":"HTTP/1.1","OriginatorRayID":"00","RayID":"713d477539b55c29","ClientRequestMethod":"GET","ClientIP":"175.16.199.0","ClientRequestPath":"/abc/checkout","Action":"block","Kind":"firewall","RuleID":"7dc666e026974dab84884c73b3e2afe1","ClientIPClass":"searchEngine","ClientASNDescription":"CLOUDFLARENET","ClientCountry":"us","ClientRefererQuery":"?sourcerer=...","ClientRequestQuery":"?sourcerer=...","OriginResponseStatus":0,"EdgeColoCode":"IAD","ClientRefererScheme":"referer URL scheme","Datetime":"2022-05-31T05:23:43Z","ClientRequestHost":"xyz.example.com","ClientASN":15169}
{"Source":"firewallrules","ClientIP":"175.16.199.0","ClientRequestPath":"/abc/checkout","Action":"log","Kind":"firewall","RuleID":"r1","Datetime":"1653974623","ClientRequestMethod":"GET"}
{"Source":"firewallrules","ClientIP":"175.16.199.0","ClientRequestPath":"/abc/checkout","Action":"block","Kind":"firewall","RuleID":"r1","Datetime":"1653974623000000000","ClientRequestMethod":"GET"}
{"EdgeEndTimestamp":"2024-09-11T12:57:10Z","EdgeResponseBytes":7062,"EdgeResponseStatus":200,"EdgeStartTimestamp":"2024-09-11T12:57:10Z","ContentScanObjResults":[],"ContentScanObjSizes":[],"ContentScanObjTypes":[],"Cookies":{},"LeakedCredentialCheckResult":"none","ParentRayID":"00","RayID":"abcdef1234567890","RequestHeaders":{},"ResponseHeaders":{},"SmartRouteColoID":0,"UpperTierColoID":0,"ZoneName":"nota.real.name","ClientASN":12345,"ClientCountry":"ch","ClientDeviceType":"desktop","ClientIP":"192.168.1.1","ClientIPClass":"noRecord","ClientMTLSAuthCertFingerprint":"","ClientMTLSAuthStatus":"unknown","ClientRegionCode":"ZH","ClientRequestBytes":9942,"ClientRequestHost":"logs.nota.real.name","ClientRequestMethod":"GET","ClientRequestPath":"/foo/bar","ClientRequestProtocol":"HTTP/2","ClientRequestReferer":"https://logs.nota.real.name","ClientRequestScheme":"https","ClientRequestSource":"eyeball","ClientRequestURI":"/foo/bar","ClientRequestUserAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.51 Safari/537.36","ClientSSLCipher":"AEAD-AES128-GCM-SHA256","ClientSSLProtocol":"TLSv1.3","ClientSrcPort":56450,"ClientTCPRTTMs":6,"ClientXRequestedWith":"","SecurityAction":"","SecurityActions":[],"SecurityRuleDescription":"","SecurityRuleID":"","SecurityRuleIDs":[],"SecuritySources":[],"OriginResponseDurationMs":0,"OriginResponseStatus":0,"OriginResponseTime":0}"#;

    #[test]
    fn reference_samples() {
        let chosen = detect(&SAMPLE.lines().map(str::as_bytes).collect::<Vec<_>>()).unwrap();
        assert_eq!(chosen.name(), "cloudflare-firewall");
        let c = parse_all(chosen, &ParseContext::default(), SAMPLE);
        assert_eq!(c.events.len(), 4, "{:?}", c.skips);
        let t: Vec<i64> = c
            .events
            .iter()
            .take(3)
            .map(|(_, e)| e.ts.unwrap().secs())
            .collect();
        assert_eq!(t, vec![1653974623; 3]);
        let e = &c.events[0].1;
        assert_eq!(e.target.as_deref(), Some("/abc/checkout?sourcerer=..."));
        assert_eq!(e.status, Some(403));
        let acts: Vec<WafAction> = c
            .details
            .iter()
            .map(|d| match d {
                EventDetail::Waf { action, .. } => *action,
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            acts,
            vec![
                WafAction::Blocked,
                WafAction::LoggedOnly,
                WafAction::Blocked,
                WafAction::Allowed
            ]
        );
        assert_eq!(c.events[3].1.target.as_deref(), Some("/foo/bar"));
        assert_eq!(c.events[3].1.status, Some(200));
    }

    #[test]
    fn panther_corpus() {
        let Some(dir) = shared_dir() else {
            eprintln!("skipping: ../shared not present");
            return;
        };
        let Ok(text) = std::fs::read_to_string(
            dir.join("corpus/panther-waf-cloudflare-tests/cloudflare_tests.jsonl"),
        ) else {
            eprintln!("skipping: panther corpus not present");
            return;
        };
        let (mut total, mut parsed, mut agree) = (0, 0, 0);
        for l in text.lines() {
            let case: Value = serde_json::from_str(l).unwrap();
            total += 1;
            let rec = serde_json::to_string(&case["log"]).unwrap();
            let Some(chosen) = detect(&[rec.as_bytes()]) else {
                continue;
            };
            let c = parse_all(chosen, &ParseContext::default(), &rec);
            let Some(EventDetail::Waf { action, .. }) = c.details.first() else {
                continue;
            };
            parsed += 1;
            let want = case["log"]["Action"].as_str().map(action_of);
            agree += usize::from(want.is_none_or(|w| w == *action));
        }
        eprintln!("panther cloudflare: {parsed}/{total} parsed, action agrees {agree}/{parsed}");
        assert_eq!(parsed, total);
        assert_eq!(agree, parsed);
    }

    /// Wazuh's Cloudflare cases (`cloudflare-waf.ini`, http_requests records from a real zone):
    /// every record is detected as Cloudflare and parsed, and the method or status each Wazuh
    /// rule keys on (92502 GET … 92515 internal error) is the one ecir reads.
    #[test]
    fn wazuh_corpus_agrees() {
        let Some(dir) = shared_dir() else {
            eprintln!("skipping: ../shared not present");
            return;
        };
        let p = dir.join("corpus/wazuh-ruleset-tests/tests/cloudflare-waf.ini");
        let Ok(text) = std::fs::read_to_string(&p) else {
            eprintln!("skipping: {} not present", p.display());
            return;
        };
        let (mut total, mut agree) = (0, 0);
        for case in crate::testing::wazuh_cases(&text) {
            for (_, l) in &case.logs {
                total += 1;
                let Some(chosen) = detect(&[l.as_bytes()]) else {
                    eprintln!("not detected: {l}");
                    continue;
                };
                let c = parse_all(chosen, &ParseContext::default(), l);
                let Some((_, e)) = c.events.first() else {
                    continue;
                };
                let raw: Value = serde_json::from_str(l).unwrap();
                let st = e.status.unwrap_or(0);
                let m = e.method.as_deref().unwrap_or("");
                let ok = e.client_ip == raw["ClientIP"].as_str().and_then(|i| i.parse().ok())
                    && match case.rule.as_str() {
                        "92502" => m == "GET",
                        "92503" => m == "POST",
                        "92504" => m == "PUT",
                        "92506" => st == 200,
                        "92507" | "92510" => st == 401,
                        "92508" => st >= 400,
                        "92509" => st == 400,
                        "92511" => st == 403,
                        "92512" => st == 404,
                        "92513" => st == 405,
                        "92514" => st == 413,
                        "92515" => st == 500,
                        _ => false,
                    };
                agree += usize::from(ok);
            }
        }
        eprintln!("wazuh cloudflare: {agree}/{total} records agree (client, method or status)");
        assert!(total >= 13);
        assert_eq!(agree, total);
    }
}
