//! The HTML incident report: one self-contained file (no script, no external assets, a strict
//! Content-Security-Policy) with the verdict, an inline-SVG activity chart with findings
//! marked, findings by severity, the IPs behind high findings, and data quality.
//!
//! Every string that came from a log (paths, user agents, users, evidence lines, file names)
//! goes through [`text`] (control and bidi characters made visible, then HTML-escaped for text
//! and attribute context alike). The page contains no `<script>` at all; the CSP forbids
//! scripts, so even a bug in escaping could not run attacker code.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use ecir_model::text::escape_controls;
use ecir_model::{Finding, Report, Severity, Timestamp};
use sha2::{Digest, Sha256};

use crate::lang::{Labels, Lang};
use crate::summary::group;

/// Longest log-derived string shown in one place, in bytes.
const MAX_TEXT: usize = 4096;
/// Most IPs listed in the per-IP view.
const MAX_IPS: usize = 50;
/// Most chart bins (wider spans are grouped into several hours per bin).
const MAX_BINS: i64 = 720;

const STYLE: &str = r#"
:root{--fg:#1b1b1b;--muted:#5f6368;--line:#d0d4d9;--bg:#fff}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI","Hiragino Sans","Noto Sans JP",sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;padding:1rem;max-width:72rem;line-height:1.45}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;border-bottom:2px solid var(--line);padding-bottom:.2rem;margin-top:2rem}h3{font-size:1.05rem;margin:.3rem 0}
.verdict{padding:.7rem 1rem;border-radius:6px;border-left:8px solid #757575;background:#f4f5f7;font-weight:600}
.v-critical{border-color:#b00020;background:#fdecee}.v-high{border-color:#e65100;background:#fff3e0}.v-medium{border-color:#f9a825}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border-bottom:1px solid var(--line);padding:.3rem .4rem;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.wrap{overflow-wrap:anywhere;word-break:break-word}
.scroll{overflow-x:auto}
code,pre{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:.85rem}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:.1rem 0 .4rem;background:#f6f8fa;padding:.3rem .5rem;border-radius:4px}
.finding{border:1px solid var(--line);border-left:6px solid #757575;border-radius:6px;padding:.6rem .8rem;margin:.8rem 0;break-inside:avoid}
.s-critical{border-left-color:#b00020}.s-high{border-left-color:#e65100}.s-medium{border-left-color:#f9a825}.s-low{border-left-color:#1e88e5}.s-info{border-left-color:#757575}
.badge{display:inline-block;padding:0 .4rem;border-radius:3px;color:#fff;font-size:.8rem;font-weight:700;background:#757575}
.b-critical{background:#b00020}.b-high{background:#e65100}.b-medium{background:#a06b00}.b-low{background:#1e88e5}
.muted{color:var(--muted)}
ul.ev{list-style:none;padding:0;margin:0}
svg.chart{width:100%;height:auto;max-height:22rem}
.legend svg{width:14px;height:10px;vertical-align:baseline}
.legend span{display:inline-block;margin-right:1rem;font-size:.85rem}
@media print{body{max-width:none;padding:0;font-size:10pt}h2{break-after:avoid}.scroll{overflow:visible}a{color:inherit}}
"#;

pub use ecir_model::text::html_escape as escape_html;

/// Log-derived text made safe for a page: controls and bidi overrides shown as escapes, the
/// length capped, then HTML-escaped.
pub fn text(s: &str) -> String {
    escape_html(&escape_controls(s, MAX_TEXT))
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The Content-Security-Policy of the page: nothing but the one inline style block, SVG and
/// `data:` images; no script, no connection, no form, no frame.
pub fn content_security_policy() -> String {
    let hash = base64(&Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

fn sev_class(s: Severity) -> &'static str {
    s.as_str()
}

fn sev_color(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "#b00020",
        Severity::High => "#e65100",
        Severity::Medium => "#f9a825",
        Severity::Low => "#1e88e5",
        Severity::Info => "#757575",
    }
}

fn source_color(source: &str) -> &'static str {
    match source {
        "web" => "#3949ab",
        "waf" => "#00897b",
        "admin-login" => "#8e24aa",
        "app" => "#6d4c41",
        "auth" => "#546e7a",
        _ => "#9e9e9e",
    }
}

fn time(t: &Option<Timestamp>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_else(|| "–".into())
}

/// Renders the report as one HTML document.
pub fn render_html(report: &Report, lang: Lang) -> String {
    let l = lang.labels();
    let mut o = String::with_capacity(64 * 1024);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>ecir — {}</title>\n<style>{}</style>\n</head>\n<body>\n",
        lang.code(),
        content_security_policy(),
        l.title,
        STYLE
    );
    header(&mut o, report, l);
    chart(&mut o, report, l);
    findings(&mut o, report, l);
    per_ip(&mut o, report, l);
    data_quality(&mut o, report, l);
    let _ = write!(
        o,
        "<footer class=\"muted\"><p>ecir {} · {} · {}</p></footer>\n</body>\n</html>\n",
        text(&report.tool.version),
        text(&report.schema),
        report.generated_at
    );
    o
}

fn header(o: &mut String, r: &Report, l: &Labels) {
    let top = r.findings.iter().map(|f| f.severity).max();
    let (class, verdict) = match top {
        Some(Severity::Critical) => ("v-critical", l.verdict_critical),
        Some(Severity::High) => ("v-high", l.verdict_high),
        Some(_) => ("v-medium", l.verdict_other),
        None => ("v-none", l.verdict_none),
    };
    let _ = write!(
        o,
        "<header id=\"summary\">\n<h1>ecir — {}</h1>\n<p class=\"verdict {class}\" id=\"verdict\">{}: {}</p>\n<dl class=\"facts\">\n",
        l.title, l.verdict, verdict
    );
    let counts: Vec<String> = Severity::ALL
        .iter()
        .map(|s| (s, r.findings.iter().filter(|f| f.severity == *s).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| {
            format!(
                "<span class=\"badge b-{}\">{} {}</span>",
                sev_class(*s),
                n,
                l.severity(*s)
            )
        })
        .collect();
    let _ = writeln!(
        o,
        "<dt>{}</dt><dd>{}</dd>",
        l.findings,
        if counts.is_empty() {
            l.no_findings.to_string()
        } else {
            counts.join(" ")
        }
    );
    match &r.exposure {
        Some(e) => {
            let _ = writeln!(
                o,
                "<dt>{}</dt><dd id=\"exposure\">{} → {} · {} {} · {} {}</dd>",
                l.exposure,
                e.start,
                e.end,
                group(e.completed_orders),
                l.completed_orders,
                group(e.distinct_customer_ips),
                l.customer_ips
            );
        }
        None => {
            let _ = writeln!(o, "<dt>{}</dt><dd>{}</dd>", l.exposure, l.no_exposure);
        }
    }
    let first = r.inputs.iter().filter_map(|i| i.first_ts).min();
    let last = r.inputs.iter().filter_map(|i| i.last_ts).max();
    let _ = writeln!(
        o,
        "<dt>{}</dt><dd>{} → {}</dd>\n<dt>{}</dt><dd>{}</dd>\n</dl>",
        l.input_span,
        time(&first),
        time(&last),
        l.generated,
        r.generated_at
    );
    if let Some(e) = &r.exposure {
        exposure_detail(o, e, l);
    }
    let _ = write!(
        o,
        "<h2 id=\"inputs\">{}</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>SHA-256</th></tr></thead>\n<tbody>\n",
        l.inputs, l.path, l.format, l.lines, l.skipped
    );
    for i in &r.inputs {
        let _ = writeln!(
            o,
            "<tr><td class=\"wrap\"><code>{}</code></td><td>{} <span class=\"muted\">{}</span></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"wrap\"><code>{}</code></td></tr>",
            text(&i.path),
            text(&i.format),
            text(&i.source),
            group(i.lines),
            group(i.skipped),
            text(&i.sha256)
        );
    }
    o.push_str("</tbody></table></div>\n</header>\n");
}

/// The exposure window's per-day counts, how they were counted and what the count cannot
/// show (from `Exposure::extra`; every string escaped).
fn exposure_detail(o: &mut String, e: &ecir_model::Exposure, l: &Labels) {
    let days = e.extra.get("per_day").and_then(|v| v.as_array());
    if let Some(days) = days.filter(|d| !d.is_empty()) {
        let _ = write!(
            o,
            "<h2 id=\"exposure-days\">{}</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>\n",
            l.exposure_per_day, l.date, l.completed_orders, l.customer_ips
        );
        for d in days {
            let n = |k: &str| d.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                text(d.get("date").and_then(|v| v.as_str()).unwrap_or("?")),
                group(n("completed_orders")),
                group(n("distinct_customer_ips"))
            );
        }
        o.push_str("</tbody></table></div>\n");
    }
    if let Some(c) = e.extra.get("counting").and_then(|v| v.as_str()) {
        let _ = writeln!(
            o,
            "<h3 id=\"exposure-counting\">{}</h3>\n<p>{}</p>",
            l.exposure_counting,
            text(c)
        );
    }
    let limits: Vec<&str> = e
        .extra
        .get("limits")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    if !limits.is_empty() {
        let _ = writeln!(
            o,
            "<h3 id=\"exposure-limits\">{}</h3>\n<ul>",
            l.exposure_limits
        );
        for x in limits {
            let _ = writeln!(o, "<li>{}</li>", text(x));
        }
        o.push_str("</ul>\n");
    }
}

fn chart(o: &mut String, r: &Report, l: &Labels) {
    let _ = writeln!(o, "<section id=\"activity\">\n<h2>{}</h2>", l.chart);
    let hours: Vec<i64> = r
        .activity
        .iter()
        .map(|b| b.hour.secs().div_euclid(3600))
        .collect();
    let (Some(&h0), Some(&h1)) = (hours.iter().min(), hours.iter().max()) else {
        let _ = writeln!(o, "<p class=\"muted\">{}</p>\n</section>", l.chart_empty);
        return;
    };
    let offset = r.activity[0].hour.offset_secs;
    let span = h1 - h0 + 1;
    let per_bin = (span + MAX_BINS - 1) / MAX_BINS;
    let bins = ((span + per_bin - 1) / per_bin) as usize;
    let mut series: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (b, h) in r.activity.iter().zip(&hours) {
        let v = series
            .entry(b.source.as_str())
            .or_insert_with(|| vec![0; bins]);
        v[((h - h0) / per_bin) as usize] += b.events;
    }
    let max = series
        .values()
        .flat_map(|v| v.iter())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let (w, h, left, right, top, bottom) = (1000.0, 300.0, 64.0, 12.0, 28.0, 44.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let x_of_hour = |hour: f64| left + (hour - h0 as f64) / (span as f64) * pw;
    let y_of = |n: u64| top + ph - (n as f64 / max as f64) * ph;
    let _ = writeln!(
        o,
        "<figure>\n<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        l.chart
    );
    let _ = writeln!(
        o,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"#fafafa\" stroke=\"#d0d4d9\"/>"
    );
    for (n, y) in [(max, y_of(max)), (max / 2, y_of(max / 2)), (0, y_of(0))] {
        let _ = writeln!(
            o,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e3e5e8\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5f6368\">{}</text>",
            left + pw,
            left - 6.0,
            y + 4.0,
            group(n)
        );
    }
    let bin_w = pw / bins as f64;
    for (source, v) in &series {
        let mut pts = String::new();
        for (i, n) in v.iter().enumerate() {
            let x = left + (i as f64 + 0.5) * bin_w;
            let _ = write!(pts, "{x:.1},{:.1} ", y_of(*n));
        }
        let _ = writeln!(
            o,
            "<polyline class=\"series\" data-source=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\"/>",
            text(source),
            pts.trim_end(),
            source_color(source)
        );
    }
    // Findings, lowest severity first so the most severe marks are drawn on top.
    let mut marks: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| f.first_seen.is_some())
        .collect();
    marks.sort_by(|a, b| a.severity.cmp(&b.severity).then(a.id.cmp(&b.id)));
    for f in marks {
        let Some(t) = f.first_seen else { continue };
        let hour = (t.utc_ms as f64 / 3_600_000.0).clamp(h0 as f64, (h1 + 1) as f64);
        let x = x_of_hour(hour);
        let _ = writeln!(
            o,
            "<g class=\"mark\" data-finding=\"{}\"><title>{} {} {}</title><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{}\" stroke=\"{c}\" stroke-width=\"1.5\" stroke-dasharray=\"4 2\"/><circle cx=\"{x:.1}\" cy=\"{}\" r=\"5\" fill=\"{c}\"/></g>",
            text(&f.id),
            text(&f.id),
            l.severity(f.severity),
            text(&f.title),
            top + ph,
            top - 8.0,
            c = sev_color(f.severity)
        );
    }
    let fmt_hour = |hour: i64| {
        Timestamp::from_secs(hour * 3600, offset)
            .to_datetime()
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    let _ = writeln!(
        o,
        "<text x=\"{left}\" y=\"{}\" font-size=\"11\" fill=\"#5f6368\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5f6368\">{}</text>",
        h - 24.0,
        fmt_hour(h0),
        left + pw,
        h - 24.0,
        fmt_hour(h1 + 1)
    );
    o.push_str("</svg>\n<figcaption><p class=\"legend\">");
    for source in series.keys() {
        let _ = write!(
            o,
            "<span><svg width=\"14\" height=\"10\" viewBox=\"0 0 14 10\"><rect width=\"14\" height=\"10\" fill=\"{}\"/></svg> {}</span>",
            source_color(source),
            text(source)
        );
    }
    for s in Severity::ALL {
        if r.findings.iter().any(|f| f.severity == s) {
            let _ = write!(
                o,
                "<span><svg width=\"10\" height=\"10\" viewBox=\"0 0 10 10\"><circle cx=\"5\" cy=\"5\" r=\"5\" fill=\"{}\"/></svg> {}</span>",
                sev_color(s),
                l.severity(s)
            );
        }
    }
    let _ = writeln!(
        o,
        "</p><p class=\"muted\">{}{}</p></figcaption>\n</figure>\n</section>",
        l.chart_caption,
        if per_bin > 1 {
            format!(" ({per_bin} h/bin)")
        } else {
            String::new()
        }
    );
}

fn findings(o: &mut String, r: &Report, l: &Labels) {
    let _ = writeln!(o, "<section id=\"findings\">\n<h2>{}</h2>", l.findings);
    if r.findings.is_empty() {
        let _ = writeln!(o, "<p>{}</p>", l.no_findings);
    }
    for s in Severity::ALL {
        let of: Vec<&Finding> = r.findings.iter().filter(|f| f.severity == s).collect();
        if of.is_empty() {
            continue;
        }
        let _ = writeln!(
            o,
            "<h3 class=\"sev-heading\"><span class=\"badge b-{}\">{}</span> {}</h3>",
            sev_class(s),
            l.severity(s),
            of.len()
        );
        for f in of {
            finding(o, f, l);
        }
    }
    o.push_str("</section>\n");
}

fn list(items: &[String], max: usize) -> String {
    let mut v: Vec<String> = items
        .iter()
        .take(max)
        .map(|s| format!("<code>{}</code>", text(s)))
        .collect();
    if items.len() > max {
        v.push(format!("… +{}", items.len() - max));
    }
    v.join(", ")
}

fn finding(o: &mut String, f: &Finding, l: &Labels) {
    let _ = write!(
        o,
        "<article class=\"finding s-{sc}\" id=\"{id}\">\n<h3><span class=\"badge b-{sc}\">{}</span> {id} <code>{}</code> {}</h3>\n<p class=\"wrap\">{}</p>\n<dl class=\"facts\">\n",
        l.severity(f.severity),
        text(&f.rule),
        text(&f.title),
        text(&f.summary),
        sc = sev_class(f.severity),
        id = text(&f.id),
    );
    for (label, items) in [(l.ips, &f.ips), (l.users, &f.users), (l.paths, &f.paths)] {
        if !items.is_empty() {
            let _ = writeln!(
                o,
                "<dt>{label}</dt><dd class=\"wrap\">{}</dd>",
                list(items, 20)
            );
        }
    }
    let _ = writeln!(
        o,
        "<dt>{}</dt><dd>{} → {}</dd>\n<dt>{}</dt><dd>{}</dd>",
        l.span,
        time(&f.first_seen),
        time(&f.last_seen),
        l.events,
        group(f.count)
    );
    if let Some(p) = &f.playbook {
        let _ = writeln!(
            o,
            "<dt>{}</dt><dd class=\"wrap\">{}</dd>",
            l.playbook,
            text(p)
        );
    }
    if !f.related.is_empty() {
        let links: Vec<String> = f
            .related
            .iter()
            .map(|r| format!("<a href=\"#{0}\">{0}</a>", text(r)))
            .collect();
        let _ = writeln!(o, "<dt>{}</dt><dd>{}</dd>", l.related, links.join(", "));
    }
    o.push_str("</dl>\n");
    if !f.evidence.is_empty() {
        let _ = writeln!(
            o,
            "<details open><summary>{} ({})</summary>\n<ul class=\"ev\">",
            l.evidence,
            f.evidence.len()
        );
        for e in &f.evidence {
            let _ = writeln!(
                o,
                "<li><code class=\"loc\">{}:{}</code> <span class=\"muted\">{}</span><pre class=\"line\">{}</pre></li>",
                text(&e.file),
                e.line,
                time(&e.ts),
                text(&e.text)
            );
        }
        o.push_str("</ul></details>\n");
    }
    o.push_str("</article>\n");
}

fn per_ip(o: &mut String, r: &Report, l: &Labels) {
    let _ = writeln!(o, "<section id=\"ips\">\n<h2>{}</h2>", l.per_ip);
    struct Ip<'a> {
        first: Option<Timestamp>,
        last: Option<Timestamp>,
        findings: Vec<&'a Finding>,
        max: Severity,
    }
    let mut ips: BTreeMap<&str, Ip<'_>> = BTreeMap::new();
    for f in r.findings.iter().filter(|f| f.severity >= Severity::High) {
        for ip in &f.ips {
            let e = ips.entry(ip.as_str()).or_insert(Ip {
                first: None,
                last: None,
                findings: Vec::new(),
                max: Severity::Info,
            });
            e.first = match (e.first, f.first_seen) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            e.last = e.last.max(f.last_seen);
            e.max = e.max.max(f.severity);
            e.findings.push(f);
        }
    }
    if ips.is_empty() {
        let _ = writeln!(o, "<p>{}</p>\n</section>", l.per_ip_none);
        return;
    }
    let mut rows: Vec<(&str, Ip<'_>)> = ips.into_iter().collect();
    rows.sort_by(|a, b| {
        b.1.max
            .cmp(&a.1.max)
            .then(b.1.findings.len().cmp(&a.1.findings.len()))
            .then(a.0.cmp(b.0))
    });
    // Requests and first/last seen come from the client's analysed events (`top_ips` lists
    // every IP behind a high finding); the findings' spans are the fallback.
    let traffic: BTreeMap<&str, &ecir_model::report::TopIp> =
        r.top_ips.iter().map(|t| (t.ip.as_str(), t)).collect();
    let _ = write!(
        o,
        "<div class=\"scroll\"><table>\n<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>\n",
        l.ip, l.first_seen, l.last_seen, l.requests, l.what_they_did
    );
    for (ip, d) in rows.iter().take(MAX_IPS) {
        let did: Vec<String> = d
            .findings
            .iter()
            .map(|f| {
                format!(
                    "<a href=\"#{id}\">{id}</a> <span class=\"badge b-{}\">{}</span> {}",
                    sev_class(f.severity),
                    l.severity(f.severity),
                    text(&f.title),
                    id = text(&f.id)
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "<tr class=\"ip-row\"><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"wrap\">{}</td></tr>",
            text(ip),
            time(&traffic.get(ip).and_then(|t| t.first_seen).or(d.first)),
            time(&traffic.get(ip).and_then(|t| t.last_seen).or(d.last)),
            traffic
                .get(ip)
                .map_or("–".to_string(), |t| group(t.requests)),
            did.join("<br>")
        );
    }
    let more = if rows.len() > MAX_IPS {
        format!(" (+{})", rows.len() - MAX_IPS)
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        "</tbody></table></div>\n<p class=\"muted\">{}{more}</p>\n</section>",
        l.per_ip_note
    );
}

fn data_quality(o: &mut String, r: &Report, l: &Labels) {
    let _ = writeln!(o, "<section id=\"quality\">\n<h2>{}</h2>", l.data_quality);
    let mut anything = false;
    // Run errors of paths that are no input (missing, unreadable, no file found): the
    // errors of inputs are listed with them below.
    let not_read: Vec<_> = r
        .errors
        .iter()
        .filter(|e| !r.inputs.iter().any(|i| i.path == e.path))
        .collect();
    if !not_read.is_empty() {
        anything = true;
        let _ = writeln!(o, "<h3>{}</h3>\n<ul>", l.not_read);
        for e in not_read {
            let hint = e
                .hint
                .as_deref()
                .map(|h| format!(" <span class=\"muted\">({})</span>", text(h)))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "<li class=\"wrap\"><code>{}</code>: {}{hint}</li>",
                text(&e.path),
                text(&e.message)
            );
        }
        o.push_str("</ul>\n");
    }
    let damaged: Vec<_> = r.inputs.iter().filter(|i| !i.errors.is_empty()).collect();
    if !damaged.is_empty() {
        anything = true;
        let _ = writeln!(o, "<h3>{}</h3>\n<ul>", l.damaged);
        for i in damaged {
            for e in &i.errors {
                let _ = writeln!(
                    o,
                    "<li class=\"wrap\"><code>{}</code>: {}</li>",
                    text(&i.path),
                    text(e)
                );
            }
        }
        o.push_str("</ul>\n");
    }
    let skipped: Vec<_> = r.inputs.iter().filter(|i| i.skipped > 0).collect();
    if !skipped.is_empty() {
        anything = true;
        let _ = writeln!(o, "<h3>{}</h3>\n<ul>", l.skipped_reasons);
        for i in skipped {
            let reasons: Vec<String> = i
                .skipped_by_reason
                .iter()
                .map(|(k, v)| format!("{} {}", text(k), group(*v)))
                .collect();
            let _ = writeln!(
                o,
                "<li class=\"wrap\"><code>{}</code>: {} / {} — {}",
                text(&i.path),
                group(i.skipped),
                group(i.lines),
                reasons.join(", ")
            );
            for s in &i.skipped_samples {
                let _ = writeln!(
                    o,
                    "<pre class=\"line\">{}: [{}] {}</pre>",
                    s.line,
                    text(&s.reason),
                    text(&s.text)
                );
            }
            o.push_str("</li>\n");
        }
        o.push_str("</ul>\n");
    }
    let input_warnings: BTreeSet<(&str, &str)> = r
        .inputs
        .iter()
        .flat_map(|i| {
            i.warnings
                .iter()
                .map(move |w| (i.path.as_str(), w.as_str()))
        })
        .collect();
    if !input_warnings.is_empty() {
        anything = true;
        let _ = writeln!(o, "<h3>{}</h3>\n<ul>", l.warnings);
        for (p, w) in input_warnings {
            let _ = writeln!(
                o,
                "<li class=\"wrap\"><code>{}</code>: {}</li>",
                text(p),
                text(w)
            );
        }
        o.push_str("</ul>\n");
    }
    if !r.warnings.is_empty() {
        anything = true;
        let _ = writeln!(o, "<h3>{}</h3>\n<ul>", l.caveats);
        for w in &r.warnings {
            let _ = writeln!(o, "<li class=\"wrap caveat\">{}</li>", text(w));
        }
        o.push_str("</ul>\n");
    }
    if !anything {
        let _ = writeln!(o, "<p>{}</p>", l.nothing_to_report);
    }
    o.push_str("</section>\n");
}

#[cfg(test)]
mod tests;
