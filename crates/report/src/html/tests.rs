//! Tests of the HTML report: structure snapshots, escaping of hostile text, CSP, languages.

use std::collections::BTreeMap;
use std::sync::Arc;

use ecir_model::report::{Tool, TopIp};
use ecir_model::{
    ActivityBucket, Category, Evidence, Exposure, Finding, InputSummary, Report, Severity, Stats,
    Timestamp,
};

use super::*;
use crate::lang::{EN, JA};

const HOSTILE_UA: &str = "Mozilla\u{202e}gpj.exe <script>alert(1)</script>";
const HOSTILE_PATH: &str = "/\"><img src=x onerror=alert(1)>?u=javascript:alert(2)";

fn t(h: i64, m: i64) -> Timestamp {
    // 2024-05-01T00:00:00+09:00
    Timestamp::from_secs(1_714_489_200 + h * 3600 + m * 60, 9 * 3600)
}

fn fixture() -> Report {
    let file: Arc<str> = Arc::from("logs/<b>access</b>.log");
    let mut high = Finding::new("webshell.command_param", Category::Webshell, Severity::High);
    high.id = "F0001".into();
    high.title = "Commands sent to /upload/x.php".into();
    high.summary = format!("UA {HOSTILE_UA}");
    high.first_seen = Some(t(2, 5));
    high.last_seen = Some(t(3, 40));
    high.ips = vec!["203.0.113.9".into()];
    high.paths = vec![HOSTILE_PATH.into()];
    high.count = 3;
    high.playbook = Some("ecir case new --playbook webshell".into());
    high.evidence = vec![Evidence {
        file: file.clone(),
        line: 42,
        ts: Some(t(2, 5)),
        text: format!("203.0.113.9 - - \"GET {HOSTILE_PATH}\" 200 \"{HOSTILE_UA}\""),
        weight: 1,
    }];
    let mut low = Finding::new("recon.scanner_ua", Category::Recon, Severity::Low);
    low.id = "F0002".into();
    low.title = "Scanner".into();
    low.first_seen = Some(t(1, 0));
    low.last_seen = Some(t(1, 10));
    low.ips = vec!["198.51.100.7".into()];
    low.count = 10;
    let input = InputSummary {
        path: file.to_string(),
        sha256: "ab".repeat(32),
        bytes: 1000,
        bytes_read: 1000,
        compression: "none".into(),
        format: "combined".into(),
        format_confidence: 1.0,
        format_basis: "detected".into(),
        source: "web".into(),
        lines: 100,
        parsed: 99,
        skipped: 1,
        skipped_by_reason: BTreeMap::from([("unparseable".to_string(), 1)]),
        skipped_samples: vec![ecir_model::SkippedSample {
            line: 7,
            reason: "unparseable".into(),
            text: "<svg onload=alert(3)>".into(),
        }],
        first_ts: Some(t(0, 0)),
        last_ts: Some(t(4, 0)),
        errors: vec!["gzip: damaged at byte 10".into()],
        ..Default::default()
    };
    Report {
        schema: ecir_model::REPORT_SCHEMA.into(),
        tool: Tool {
            name: "ecir".into(),
            version: "0.1.0".into(),
        },
        generated_at: t(10, 0),
        options: BTreeMap::new(),
        inputs: vec![input],
        findings: vec![high, low],
        exposure: Some(Exposure {
            start: t(2, 5),
            end: t(4, 0),
            basis: vec!["F0001".into()],
            completed_orders: 12,
            distinct_customer_ips: 9,
            extra: BTreeMap::from([
                (
                    "per_day".to_string(),
                    serde_json::json!([
                        {"date": "2026-11-02", "completed_orders": 5, "distinct_customer_ips": 4},
                        {"date": "<b>2026-11-03</b>", "completed_orders": 1234, "distinct_customer_ips": 5}
                    ]),
                ),
                (
                    "counting".to_string(),
                    serde_json::json!(
                        "One order per checkout session <img src=x onerror=alert(2)>."
                    ),
                ),
                (
                    "limits".to_string(),
                    serde_json::json!([
                        "No session cookie in access logs.",
                        "Orders not logged are not counted.\u{202e}"
                    ]),
                ),
            ]),
        }),
        warnings: vec!["Access logs hold no request bodies".into()],
        errors: Vec::new(),
        top_ips: vec![TopIp {
            ip: "203.0.113.9".into(),
            findings: 1,
            max_severity: Severity::High,
            requests: 321,
            first_seen: None,
            last_seen: None,
        }],
        stats: Stats::default(),
        waf_summary: None,
        activity: (0..5)
            .flat_map(|h| {
                [
                    ActivityBucket {
                        source: "web".into(),
                        hour: t(h, 0),
                        events: 10 + h as u64 * 5,
                    },
                    ActivityBucket {
                        source: "waf".into(),
                        hour: t(h, 0),
                        events: 3,
                    },
                ]
            })
            .collect(),
    }
}

/// The element skeleton of a page: one line per element with an id or class, indented by
/// depth, so a snapshot shows structure without the data.
fn skeleton(html: &str) -> String {
    let mut out = String::new();
    let mut depth: usize = 0;
    let void = [
        "meta", "br", "line", "circle", "rect", "polyline", "img", "link", "input", "hr",
    ];
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').expect("tag closes");
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let _ = name;
            depth = depth.saturating_sub(1);
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let attr = |a: &str| {
            tag.find(&format!(" {a}=\""))
                .map(|p| {
                    let v = &tag[p + a.len() + 3..];
                    v[..v.find('"').unwrap_or(0)].to_string()
                })
                .unwrap_or_default()
        };
        let (id, class) = (attr("id"), attr("class"));
        let structural = matches!(
            name.as_str(),
            "header"
                | "section"
                | "h1"
                | "h2"
                | "h3"
                | "table"
                | "svg"
                | "figure"
                | "article"
                | "dl"
                | "ul"
                | "details"
        );
        if structural || !id.is_empty() || !class.is_empty() {
            let mut line = format!("{}{}", "  ".repeat(depth), name);
            if !id.is_empty() {
                line.push_str(&format!("#{id}"));
            }
            for c in class.split_whitespace() {
                line.push_str(&format!(".{c}"));
            }
            out.push_str(&line);
            out.push('\n');
        }
        if !void.contains(&name.as_str()) && !tag.ends_with('/') {
            depth += 1;
        }
    }
    out
}

#[test]
fn structure_snapshot_en() {
    let html = render_html(&fixture(), Lang::En);
    insta::assert_snapshot!("html_structure_en", skeleton(&html));
}

#[test]
fn structure_snapshot_no_findings() {
    let mut r = fixture();
    r.findings.clear();
    r.exposure = None;
    r.activity.clear();
    r.inputs[0].errors.clear();
    r.inputs[0].skipped = 0;
    r.warnings.clear();
    let html = render_html(&r, Lang::En);
    insta::assert_snapshot!("html_structure_empty", skeleton(&html));
    assert!(html.contains(EN.verdict_none));
    assert!(html.contains(EN.chart_empty));
    assert!(html.contains(EN.nothing_to_report));
}

#[test]
fn hostile_text_is_escaped_everywhere() {
    let html = render_html(&fixture(), Lang::En);
    assert!(!html.contains("<script"), "no script element at all");
    assert!(!html.contains("<img"));
    assert!(!html.contains("<svg onload"));
    assert!(!html.contains("<b>access"));
    assert!(
        !html.contains('\u{202e}'),
        "bidi override must not reach the page raw"
    );
    assert!(
        html.contains("\\u{202e}"),
        "bidi override is shown as a visible escape"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;img src&#61;x onerror&#61;alert(1)&gt;"));
    assert!(html.contains("logs/&lt;b&gt;access&lt;/b&gt;.log:42"));
    // The exposure window's detail is escaped too.
    assert!(html.contains("<td>&lt;b&gt;2026-11-03&lt;/b&gt;</td>"));
    assert!(html.contains("&lt;img src&#61;x onerror&#61;alert(2)&gt;"));
    // Attribute context: a quote from a log cannot close an attribute.
    for attr_start in html.match_indices("=\"").map(|(i, _)| i + 2) {
        let v = &html[attr_start..];
        let end = v.find('"').expect("attribute closes");
        assert!(
            !v[..end].contains('<'),
            "raw < inside an attribute: {}",
            &v[..end]
        );
    }
}

#[test]
fn csp_forbids_scripts_and_matches_the_style() {
    let html = render_html(&fixture(), Lang::En);
    let csp = content_security_policy();
    assert!(csp.contains("default-src 'none'"));
    assert!(
        !csp.contains("script-src"),
        "default-src 'none' covers scripts"
    );
    assert!(!csp.contains("unsafe-inline"));
    assert!(html.contains(&format!("content=\"{csp}\"")));
    // The style hash is the base64 SHA-256 of the style element's content.
    let start = html.find("<style>").unwrap() + 7;
    let end = html.find("</style>").unwrap();
    let digest = base64(&Sha256::digest(&html.as_bytes()[start..end]));
    assert!(csp.contains(&format!("'sha256-{digest}'")));
    assert!(
        !html.contains(" style=\""),
        "inline style attributes would be blocked"
    );
    assert!(!html.contains("src=\"http"), "no external assets");
}

#[test]
fn base64_matches_known_values() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}

#[test]
fn chart_draws_series_and_marks() {
    let html = render_html(&fixture(), Lang::En);
    assert_eq!(html.matches("<polyline class=\"series\"").count(), 2);
    assert!(html.contains("data-source=\"web\""));
    assert!(html.contains("data-finding=\"F0001\""));
    assert!(html.contains("data-finding=\"F0002\""));
    // Severity colours: high orange, low blue.
    let f1 = &html[html.find("data-finding=\"F0001\"").unwrap()..];
    assert!(f1[..f1.find("</g>").unwrap()].contains("#e65100"));
    // The web series peaks at 30 events (hour 4), which is the top gridline.
    assert!(html.contains(">30</text>"));
}

#[test]
fn header_and_per_ip_view() {
    let html = render_html(&fixture(), Lang::En);
    assert!(html.contains(EN.verdict_high));
    assert!(html.contains("12 completed orders"));
    assert!(html.contains(&"ab".repeat(32)));
    let ips = &html[html.find("id=\"ips\"").unwrap()..html.find("id=\"quality\"").unwrap()];
    assert!(ips.contains("203.0.113.9"));
    assert!(ips.contains("321"), "requests from top_ips");
    assert!(
        !ips.contains("198.51.100.7"),
        "low findings are not in the per-IP view"
    );
    let q = &html[html.find("id=\"quality\"").unwrap()..];
    assert!(q.contains("gzip: damaged at byte 10"));
    assert!(q.contains("unparseable 1"));
    assert!(q.contains("Access logs hold no request bodies"));
}

#[test]
fn japanese_labels() {
    let html = render_html(&fixture(), Lang::Ja);
    assert!(html.contains("<html lang=\"ja\">"));
    assert!(html.contains(JA.verdict_high));
    assert!(html.contains(JA.per_ip));
    assert!(html.contains(">高</span>"));
    assert!(!html.contains(EN.verdict_high));
}

#[test]
fn wide_spans_are_binned() {
    let mut r = fixture();
    r.activity.push(ActivityBucket {
        source: "web".into(),
        hour: t(24 * 90, 0),
        events: 1,
    });
    let html = render_html(&r, Lang::En);
    let pts = html.find("points=\"").unwrap();
    let n = html[pts + 8..]
        .split('"')
        .next()
        .unwrap()
        .split(' ')
        .count();
    assert!(n as i64 <= MAX_BINS, "{n} points");
    assert!(html.contains("h/bin"));
}

#[test]
fn exposure_window_shows_days_counting_and_limits() {
    let html = render_html(&fixture(), Lang::En);
    assert!(html.contains("id=\"exposure-days\""));
    assert!(
        html.contains("<tr><td>2026-11-02</td><td class=\"n\">5</td><td class=\"n\">4</td></tr>")
    );
    assert!(html.contains("1,234"), "grouped like the other counts");
    assert!(html.contains("<li>No session cookie in access logs.</li>"));
    assert!(html.contains("id=\"exposure-counting\""));
    // Without per-day data, counting or limits there is no empty section.
    let mut r = fixture();
    r.exposure.as_mut().unwrap().extra.clear();
    let html = render_html(&r, Lang::En);
    assert!(!html.contains("exposure-days") && !html.contains("exposure-limits"));
    assert!(html.contains("id=\"exposure\""));
    // Japanese labels.
    let ja = render_html(&fixture(), Lang::Ja);
    assert!(ja.contains("件数の限界"));
}

#[test]
fn paths_not_read_are_listed_escaped_and_input_errors_not_twice() {
    let mut r = fixture();
    let damaged = r.inputs[0].clone();
    r.errors = vec![
        ecir_model::RunError {
            path: "/logs/<b>gone</b>".into(),
            message: "no such file or directory".into(),
            hint: Some("check the path".into()),
        },
        ecir_model::RunError {
            path: damaged.path.clone(),
            message: "DAMAGE-MESSAGE-ONCE".into(),
            hint: None,
        },
    ];
    let html = render_html(&r, Lang::En);
    assert!(html.contains(EN.not_read));
    assert!(html.contains("<code>/logs/&lt;b&gt;gone&lt;/b&gt;</code>: no such file or directory"));
    assert!(html.contains("(check the path)"));
    // An input's error is shown with the damaged inputs, not again as a path not read.
    assert!(!html.contains("DAMAGE-MESSAGE-ONCE"));
    let ja = render_html(&r, Lang::Ja);
    assert!(ja.contains(crate::lang::Lang::Ja.labels().not_read));
}
