//! The terminal summary: inputs, findings by severity, the IPs behind them, and how much was
//! read versus cited. Every string that came from a log is passed through
//! [`escape_controls`] so a hostile path or user agent cannot drive the terminal.

use std::fmt::Write as _;

use ecir_model::text::escape_controls;
use ecir_model::{Report, Severity};

/// Styles text; the CLI implements it with ANSI colours on a TTY.
pub trait Painter {
    fn severity(&self, s: Severity, text: &str) -> String;
    fn heading(&self, text: &str) -> String;
    fn dim(&self, text: &str) -> String;
}

/// No styling.
pub struct Plain;

impl Painter for Plain {
    fn severity(&self, _s: Severity, text: &str) -> String {
        text.to_string()
    }
    fn heading(&self, text: &str) -> String {
        text.to_string()
    }
    fn dim(&self, text: &str) -> String {
        text.to_string()
    }
}

fn safe(s: &str, max: usize) -> String {
    escape_controls(s, max)
}

/// Thousands separators for counts.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn short_time(t: &Option<ecir_model::Timestamp>) -> String {
    t.map(|t| {
        let s = t.to_rfc3339();
        s.get(..16).map(|x| x.replace('T', " ")).unwrap_or(s)
    })
    .unwrap_or_else(|| "-".into())
}

/// Cuts `s` to at most `w` characters, marking a cut with `…`.
pub fn fit(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    let mut out: String = s.chars().take(w.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// What to do next, when a high or critical finding names a playbook.
pub fn next_step(report: &Report) -> Option<String> {
    let f = report
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::High)
        .find(|f| f.playbook.is_some())?;
    let pb = safe(f.playbook.as_deref()?, 80);
    Some(format!(
        "start the {pb} playbook: ecir case new CASE_DIR --playbook {pb} --discovered \"YYYY-MM-DD HH:MM\""
    ))
}

/// Critical and high findings listed in the terminal summary, at most, each: all of them
/// in any real case; a scanner probing a catch-all site can raise hundreds of thousands,
/// and a terminal page of them helps nobody (all are in the reports).
const MAX_HIGH_ROWS: usize = 200;
/// Medium findings listed, at most.
const MAX_MEDIUM_ROWS: usize = 30;
/// Findings named as the exposure window's basis, at most.
const MAX_BASIS_IDS: usize = 20;
/// Low and info findings listed, at most.
const MAX_LOW_ROWS: usize = 15;
/// Input warnings (unknown format, records split at CRs) printed under the inputs, at most.
const MAX_INPUT_WARNINGS: usize = 20;
/// Client IPs listed under "Top IPs", at most.
const MAX_IP_ROWS: usize = 20;

/// Renders the summary. `width` is the terminal width (80 when unknown).
pub fn render_summary(report: &Report, p: &dyn Painter, width: usize) -> String {
    let width = width.clamp(60, 200);
    let mut o = String::new();
    let st = &report.stats;
    let _ = writeln!(
        o,
        "{} {} scanned {} input(s): {} lines, {} parsed, {} skipped",
        p.heading("ecir"),
        report.tool.version,
        report.inputs.len(),
        group(st.lines),
        group(st.parsed),
        group(st.skipped)
    );
    if let Some(e) = &report.exposure {
        render_exposure(&mut o, e, p);
    }
    // Inputs
    let _ = writeln!(o, "\n{}", p.heading("Inputs"));
    let path_w = report
        .inputs
        .iter()
        .map(|i| i.path.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, width.saturating_sub(60).max(20));
    let mut warnings_shown = 0usize;
    for i in &report.inputs {
        let mut path = safe(&i.path, 4096);
        if path.chars().count() > path_w {
            let skip = path.chars().count() - path_w + 1;
            path = format!("…{}", path.chars().skip(skip).collect::<String>());
        }
        let fmt = if i.format == "unknown" {
            "unknown".to_string()
        } else {
            format!("{} {:.0}%", i.format, i.format_confidence * 100.0)
        };
        let _ = writeln!(
            o,
            "  {:<path_w$}  {:<20} {:>10} lines {:>8} skipped  {} → {}",
            path,
            fmt,
            group(i.lines),
            group(i.skipped),
            short_time(&i.first_ts),
            short_time(&i.last_ts),
        );
        for e in &i.errors {
            let _ = writeln!(
                o,
                "      {} {}",
                p.severity(Severity::High, "error:"),
                safe(e, 300)
            );
        }
        for w in &i.warnings {
            warnings_shown += 1;
            if warnings_shown > MAX_INPUT_WARNINGS {
                continue;
            }
            let _ = writeln!(
                o,
                "      {} {}",
                p.severity(Severity::Medium, "warning:"),
                safe(w, 400)
            );
        }
    }
    if warnings_shown > MAX_INPUT_WARNINGS {
        let _ = writeln!(
            o,
            "  {}",
            p.dim(&format!(
                "… and {} more input warning(s): see --json or --html",
                warnings_shown - MAX_INPUT_WARNINGS
            ))
        );
    }
    // Findings
    let counts: Vec<String> = Severity::ALL
        .iter()
        .map(|s| {
            (
                s,
                report.findings.iter().filter(|f| f.severity == *s).count(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| p.severity(*s, &format!("{n} {s}")))
        .collect();
    let _ = writeln!(
        o,
        "\n{} {}",
        p.heading("Findings:"),
        if counts.is_empty() {
            "none".to_string()
        } else {
            counts.join(", ")
        }
    );
    // Columns: "  SEVERITY F0001 rule  title", the title cut to fit the width.
    let rule_w = report
        .findings
        .iter()
        .map(|f| f.rule.chars().count())
        .max()
        .unwrap_or(4)
        .min(32);
    let id_w = report
        .findings
        .iter()
        .map(|f| f.id.chars().count())
        .max()
        .unwrap_or(5);
    let title_w = width
        .saturating_sub(2 + 8 + 1 + id_w + 1 + rule_w + 1)
        .max(20);
    // Critical and high findings are listed up to a large budget, medium and below up to a
    // small one, so a noisy log does not bury the page (the JSON and HTML reports list them
    // all).
    let mut shown: std::collections::BTreeMap<Severity, usize> = Default::default();
    let mut hidden: std::collections::BTreeMap<Severity, usize> = Default::default();
    for f in &report.findings {
        let budget = match f.severity {
            Severity::Critical | Severity::High => MAX_HIGH_ROWS,
            Severity::Medium => MAX_MEDIUM_ROWS,
            _ => MAX_LOW_ROWS,
        };
        let n = shown.entry(f.severity).or_default();
        if *n >= budget {
            *hidden.entry(f.severity).or_default() += 1;
            continue;
        }
        *n += 1;
        let sev = p.severity(
            f.severity,
            &format!("{:<8}", f.severity.as_str().to_uppercase()),
        );
        let _ = writeln!(
            o,
            "  {sev} {:<id_w$} {:<rule_w$} {}",
            f.id,
            fit(&f.rule, rule_w),
            fit(&safe(&f.title, 4096), title_w)
        );
        let mut subj = Vec::new();
        if !f.ips.is_empty() {
            let more = if f.ips.len() > 3 {
                format!(" +{}", f.ips.len() - 3)
            } else {
                String::new()
            };
            subj.push(format!(
                "ip {}{more}",
                f.ips.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if !f.users.is_empty() {
            subj.push(format!("user {}", safe(&f.users.join(", "), 80)));
        }
        if let Some(path) = f.paths.first() {
            subj.push(format!("path {}", safe(path, 80)));
        }
        subj.push(format!(
            "{} → {}",
            short_time(&f.first_seen),
            short_time(&f.last_seen)
        ));
        let _ = writeln!(o, "           {}", p.dim(&subj.join("  ·  ")));
    }
    if !hidden.is_empty() {
        let parts: Vec<String> = hidden
            .iter()
            .rev()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        let _ = writeln!(
            o,
            "  {}",
            p.dim(&format!(
                "… more findings not listed here: {} (see --json, --ndjson or --html)",
                parts.join(", ")
            ))
        );
    }
    if !report.top_ips.is_empty() {
        let _ = writeln!(o, "\n{}", p.heading("Top IPs behind findings"));
        for t in report.top_ips.iter().take(MAX_IP_ROWS) {
            let _ = writeln!(
                o,
                "  {:<40} {} {:>3} finding(s) {:>10} requests",
                t.ip,
                p.severity(t.max_severity, &format!("{:<8}", t.max_severity.as_str())),
                t.findings,
                group(t.requests)
            );
        }
    }
    if report.top_ips.len() > MAX_IP_ROWS {
        let _ = writeln!(
            o,
            "  {}",
            p.dim(&format!(
                "… and {} more IP(s): see --json or --html",
                report.top_ips.len() - MAX_IP_ROWS
            ))
        );
    }
    if let Some(w) = &report.waf_summary {
        render_waf(&mut o, w, p);
    }
    if let Some(step) = next_step(report) {
        let _ = writeln!(o, "\n{} {}", p.heading("Next step:"), step);
    }
    if !report.warnings.is_empty() {
        let _ = writeln!(o, "\n{}", p.heading("Caveats"));
        for w in &report.warnings {
            let _ = writeln!(o, "  - {}", safe(w, 1000));
        }
    }
    let _ = writeln!(
        o,
        "\nData reduction: {} events analysed, {} cited as evidence ({} ms, {} thread(s))",
        group(st.events_analyzed),
        group(st.events_cited),
        group(st.elapsed_ms),
        st.threads
    );
    o
}

/// The exposure window, first: the figure the notification playbook asks for.
fn render_exposure(o: &mut String, e: &ecir_model::Exposure, p: &dyn Painter) {
    let _ = writeln!(
        o,
        "\n{} {} → {}: {} completed order(s), {} customer IP(s)",
        p.heading("Exposure window:"),
        e.start,
        e.end,
        group(e.completed_orders),
        group(e.distinct_customer_ips)
    );
    let start = match e.extra.get("start_basis").and_then(|v| v.as_str()) {
        Some("compromise") => "start: the earliest compromise that could have changed the payment flow (no direct evidence of tampering)",
        _ => "start: the earliest evidence the payment flow was tampered with",
    };
    let end = match e.extra.get("end_basis").and_then(|v| v.as_str()) {
        Some("contained-at") => "end: --contained-at",
        _ => "end: the end of the logs (give --contained-at when the skimmer was removed)",
    };
    let _ = writeln!(
        o,
        "  {} ({}); {}; orders = completion-page hits, one per client IP + user agent session",
        p.dim(&format!(
            "basis {}{}",
            e.basis
                .iter()
                .take(MAX_BASIS_IDS)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            if e.basis.len() > MAX_BASIS_IDS {
                format!(" and {} more", e.basis.len() - MAX_BASIS_IDS)
            } else {
                String::new()
            }
        )),
        start,
        end,
    );
    if let Some(days) = e.extra.get("per_day").and_then(|v| v.as_array()) {
        let cells: Vec<String> = days
            .iter()
            .map(|d| {
                format!(
                    "{} {}",
                    d["date"].as_str().unwrap_or("?").get(5..).unwrap_or("?"),
                    d["completed_orders"].as_u64().unwrap_or(0)
                )
            })
            .collect();
        if !cells.is_empty() {
            let _ = writeln!(o, "  per day: {}", safe(&cells.join(" · "), 2000));
        }
    }
}

/// The WAF section: totals by action, then the busiest rules and clients.
fn render_waf(o: &mut String, w: &ecir_model::WafSummary, p: &dyn Painter) {
    let _ = writeln!(
        o,
        "\n{} {} record(s): {} blocked, {} logged only, {} allowed, {} in detection-only/count mode  ({} → {})",
        p.heading("WAF activity:"),
        group(w.events),
        group(w.blocked),
        group(w.logged_only),
        group(w.allowed),
        group(w.detection_only),
        short_time(&w.first_ts),
        short_time(&w.last_ts)
    );
    if !w.rules.is_empty() {
        let _ = writeln!(
            o,
            "  {}",
            p.dim("rule          matches  blocked  passed  IPs  class     message")
        );
        for r in &w.rules {
            let _ = writeln!(
                o,
                "  {:<12} {:>8} {:>8} {:>7} {:>4}  {:<9} {}",
                safe(&r.rule_id, 40),
                group(r.matches),
                group(r.blocked),
                group(r.not_blocked),
                r.distinct_ips,
                r.attack.as_deref().unwrap_or("-"),
                safe(r.message.as_deref().unwrap_or(""), 60)
            );
        }
    }
    if !w.ips.is_empty() {
        let _ = writeln!(
            o,
            "  {}",
            p.dim("client                                    records  blocked  passed  classes")
        );
        for r in &w.ips {
            let _ = writeln!(
                o,
                "  {:<40} {:>8} {:>8} {:>7}  {}",
                r.ip,
                group(r.events),
                group(r.blocked),
                group(r.not_blocked),
                r.attacks.join(",")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report with no input and no finding.
    fn empty_report() -> Report {
        serde_json::from_value(serde_json::json!({
            "schema": "ecir.report/1", "tool": {"name": "ecir", "version": "0"},
            "generated_at": "2024-05-01T00:00:00+00:00", "options": {}, "inputs": [],
            "findings": [], "stats": {"bytes": 0, "lines": 0, "parsed": 0, "skipped": 0,
            "events_analyzed": 0, "events_cited": 0, "elapsed_ms": 0, "threads": 1}
        }))
        .unwrap()
    }

    #[test]
    fn fits_columns_and_names_next_step() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        let mut r = empty_report();
        assert_eq!(next_step(&r), None);
        let mut f = ecir_model::Finding::new(
            "webshell.command_param",
            ecir_model::Category::Webshell,
            Severity::High,
        );
        f.id = "F0001".into();
        f.title = "x".repeat(300);
        f.playbook = Some("web-shell".into());
        r.findings.push(f);
        let step = next_step(&r).unwrap();
        assert!(step.contains("web-shell playbook"), "{step}");
        for width in [60, 80, 120] {
            let text = render_summary(&r, &Plain, width);
            for line in text.lines().filter(|l| l.trim_start().starts_with("HIGH")) {
                assert!(line.chars().count() <= width, "{width}: {line}");
            }
            assert!(text.contains("Next step: start the web-shell playbook"));
        }
        r.findings[0].severity = Severity::Medium;
        assert_eq!(next_step(&r), None);
    }

    #[test]
    fn input_warnings_are_shown_escaped_and_capped() {
        let mut r = empty_report();
        for i in 0..MAX_INPUT_WARNINGS + 3 {
            r.inputs.push(ecir_model::InputSummary {
                path: format!("/logs/f{i}.log"),
                format: "unknown".into(),
                warnings: vec![format!("format not recognised \x1b[2J{i}")],
                ..Default::default()
            });
        }
        let text = render_summary(&r, &Plain, 100);
        assert_eq!(
            text.matches("warning: format not recognised").count(),
            MAX_INPUT_WARNINGS
        );
        assert!(text.contains("… and 3 more input warning(s)"), "{text}");
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn lists_high_findings_up_to_a_large_budget_and_caps_the_rest() {
        let mut r = empty_report();
        for (sev, n) in [
            (Severity::Critical, 40),
            (Severity::High, MAX_HIGH_ROWS + 7),
            (Severity::Medium, 45),
            (Severity::Low, 20),
        ] {
            for i in 0..n {
                let mut f =
                    ecir_model::Finding::new("web.sqli", ecir_model::Category::WebAttack, sev);
                f.id = format!("{sev}-{i}");
                f.title = format!("t{i}");
                r.findings.push(f);
            }
        }
        let text = render_summary(&r, &Plain, 100);
        let count = |tag: &str| {
            text.lines()
                .filter(|l| l.trim_start().starts_with(tag))
                .count()
        };
        assert_eq!(
            count("CRITICAL"),
            40,
            "every critical finding under the budget"
        );
        assert_eq!(count("HIGH"), MAX_HIGH_ROWS);
        assert_eq!(count("MEDIUM"), MAX_MEDIUM_ROWS);
        assert_eq!(count("LOW"), MAX_LOW_ROWS);
        assert!(
            text.contains("not listed here: 7 high, 15 medium, 5 low"),
            "{}",
            text.lines()
                .filter(|l| l.contains("more"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    #[test]
    fn exposure_basis_names_at_most_twenty_findings() {
        let t = ecir_model::Timestamp::from_secs(1_700_000_000, 0);
        let e = ecir_model::Exposure {
            start: t,
            end: t,
            basis: (1..=25).map(|i| format!("F{i:04}")).collect(),
            completed_orders: 3,
            distinct_customer_ips: 2,
            extra: Default::default(),
        };
        let mut o = String::new();
        render_exposure(&mut o, &e, &Plain);
        assert!(o.contains("F0020 and 5 more"), "{o}");
        assert!(!o.contains("F0021"), "{o}");
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(group(100), "100");
    }

    #[test]
    fn waf_section_rows() {
        let w = ecir_model::WafSummary {
            events: 3,
            blocked: 2,
            logged_only: 1,
            rules: vec![ecir_model::report::WafRuleRow {
                rule_id: "942100".into(),
                message: Some("SQL Injection\x1b[31m".into()),
                attack: Some("sqli".into()),
                matches: 3,
                blocked: 2,
                not_blocked: 1,
                distinct_ips: 2,
            }],
            ips: vec![ecir_model::report::WafIpRow {
                ip: "192.0.2.1".into(),
                events: 2,
                blocked: 1,
                not_blocked: 1,
                attacks: vec!["sqli".into()],
            }],
            ..Default::default()
        };
        let mut o = String::new();
        render_waf(&mut o, &w, &Plain);
        assert!(o.contains("WAF activity: 3 record(s): 2 blocked, 1 logged only"));
        assert!(o.contains("942100"));
        assert!(o.contains("192.0.2.1"));
        // Log text cannot drive the terminal.
        assert!(!o.contains('\x1b'));
    }
}
