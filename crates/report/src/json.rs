//! `ecir.report/1` as pretty JSON, and findings as NDJSON.
//!
//! Both go through [`ecir_model::json`]: besides what JSON itself escapes, DEL, C1 controls
//! and bidi / zero-width characters in any string (a title or path a detector built from a
//! log field) are written as `\uXXXX`, so the document holds no raw terminal control while a
//! JSON reader gets exactly the same strings. Reports without such characters are
//! byte-identical to plain `serde_json` output.

use std::io::{self, Write};

use ecir_model::Report;

/// Writes the full report as pretty-printed JSON followed by a newline.
pub fn write_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    ecir_model::json::to_writer_pretty(&mut *out, report)?;
    out.write_all(b"\n")
}

/// Writes one finding per line, each a complete JSON object.
pub fn write_ndjson(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for f in &report.findings {
        ecir_model::json::to_writer(&mut *out, f)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecir_model::{Category, Finding, Severity};

    fn report(findings: Vec<Finding>) -> Report {
        let mut r: Report = serde_json::from_value(serde_json::json!({
            "schema": "ecir.report/1", "tool": {"name": "ecir", "version": "0"},
            "generated_at": "2024-05-01T00:00:00+00:00", "options": {}, "inputs": [],
            "findings": [], "stats": {"bytes": 0, "lines": 0, "parsed": 0, "skipped": 0,
            "events_analyzed": 0, "events_cited": 0, "elapsed_ms": 0, "threads": 1}
        }))
        .unwrap();
        r.findings = findings;
        r
    }

    /// A finding whose title, summary and subjects carry what a detector can copy out of a
    /// log field: ESC (an OSC 8 hyperlink), U+009B (a C1 CSI introducer), U+202E (a bidi
    /// override).
    fn hostile() -> Finding {
        let bad = "\u{1b}]8;;http://evil/\u{7}click\u{1b}]8;;\u{7}\u{9b}2J\u{202e}php.gpj";
        let mut f = Finding::new("webshell.upload", Category::Webshell, Severity::High);
        f.id = "F0001".into();
        f.title = format!("Web shell {bad}");
        f.summary = format!("requests to /up/{bad}");
        f.paths = vec![format!("/up/{bad}")];
        f.users = vec![format!("admin{bad}")];
        f.ips = vec!["203.0.113.9".into()];
        f
    }

    fn check(text: &str) {
        assert!(
            !text.bytes().any(|b| b < 0x20 && b != b'\n'),
            "raw C0 control in {text}"
        );
        for raw in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
            assert!(!text.contains(raw), "raw {raw:?} in {text}");
        }
        assert!(
            text.contains(
                "\\u001b]8;;http://evil/\\u0007click\\u001b]8;;\\u0007\\u009b2J\\u202ephp.gpj"
            ),
            "{text}"
        );
    }

    #[test]
    fn json_and_ndjson_escape_c1_and_bidi_and_read_back_the_same() {
        let r = report(vec![hostile()]);
        let mut json = Vec::new();
        write_json(&r, &mut json).unwrap();
        let json = String::from_utf8(json).unwrap();
        check(&json);
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back.findings[0].title, r.findings[0].title);
        assert_eq!(back.findings[0].paths, r.findings[0].paths);
        assert_eq!(back.findings[0].users, r.findings[0].users);
        assert_eq!(back.findings[0].summary, r.findings[0].summary);

        let mut nd = Vec::new();
        write_ndjson(&r, &mut nd).unwrap();
        let nd = String::from_utf8(nd).unwrap();
        assert_eq!(nd.lines().count(), 1);
        check(&nd);
        let f: Finding = serde_json::from_str(nd.trim_end()).unwrap();
        assert_eq!(f.title, r.findings[0].title);
        assert_eq!(f.paths, r.findings[0].paths);
    }

    #[test]
    fn ordinary_reports_are_byte_identical_to_serde_json() {
        let mut f = Finding::new(
            "admin.bruteforce",
            Category::AdminCompromise,
            Severity::Medium,
        );
        f.id = "F0001".into();
        f.title = "管理画面へのブルートフォース \"admin\" <script>".into();
        f.paths = vec!["/admin/login?x=\\u".into()];
        let r = report(vec![f]);
        let mut json = Vec::new();
        write_json(&r, &mut json).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            serde_json::to_string_pretty(&r).unwrap() + "\n"
        );
        let mut nd = Vec::new();
        write_ndjson(&r, &mut nd).unwrap();
        assert_eq!(
            String::from_utf8(nd).unwrap(),
            serde_json::to_string(&r.findings[0]).unwrap() + "\n"
        );
    }
}
