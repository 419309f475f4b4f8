//! Tests of the timeline writers: CSV injection, quoting, BOM, the JSON field lists, and
//! terminal controls from log fields and file names written as visible escapes.

use std::collections::BTreeSet;

use ecir_model::{SourceKind, Timestamp};
use serde_json::Value;

use super::*;

fn rec(raw: &str) -> Record {
    Record {
        ts: Timestamp::new(1_714_525_200_250, 9 * 3600),
        file: 0,
        line: 12,
        source: SourceKind::Web,
        client_ip: "203.0.113.9".into(),
        user: "=cmd|' /C calc'!A0".into(),
        method: "GET".into(),
        target: "/商品/一覧?@SUM(1+1)".into(),
        status: Some(200),
        bytes: Some(512),
        user_agent: "+HYPERLINK(\"http://evil\")".into(),
        rule_ids: vec![],
        action: String::new(),
        raw: raw.into(),
    }
}

fn render(format: OutputFormat, records: &[Record], bom: bool) -> String {
    let mut w =
        TimelineWriter::new(Vec::new(), format, vec!["logs/access.log".into()], bom).unwrap();
    for r in records {
        w.write(r).unwrap();
    }
    String::from_utf8(w.finish().unwrap()).unwrap()
}

#[test]
fn csv_cells_neutralise_formulas() {
    for (input, want) in [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\r=x", "\"'\r=x\""),
        ("  =x", "'  =x"),
        ("a,b", "\"a,b\""),
        ("say \"hi\"", "\"say \"\"hi\"\"\""),
        ("plain", "plain"),
        ("日本語", "日本語"),
        ("", ""),
    ] {
        assert_eq!(csv_cell(input), want, "{input:?}");
    }
}

/// Splits one RFC 4180 record (no embedded line breaks in these tests).
fn split_csv(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    cells.push(cur);
    cells
}

#[test]
fn csv_rows_are_injection_safe_and_keep_japanese() {
    let out = render(
        OutputFormat::Csv,
        &[rec("-1+1 raw, with \"quotes\"")],
        false,
    );
    let mut lines = out.split("\r\n");
    assert_eq!(lines.next().unwrap(), CSV_COLUMNS.join(","));
    let cells = split_csv(lines.next().unwrap());
    assert_eq!(cells.len(), CSV_COLUMNS.len());
    let col = |n: &str| &cells[CSV_COLUMNS.iter().position(|c| *c == n).unwrap()];
    assert_eq!(col("user"), "'=cmd|' /C calc'!A0");
    assert_eq!(col("user_agent"), "'+HYPERLINK(\"http://evil\")");
    assert_eq!(col("raw"), "'-1+1 raw, with \"quotes\"");
    assert_eq!(col("path"), "/商品/一覧");
    assert_eq!(col("query"), "'@SUM(1+1)");
    assert_eq!(col("datetime"), "2024-05-01T10:00:00.250+09:00");
    assert_eq!(col("line"), "12");
    for c in &cells {
        assert!(
            !c.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "cell would be evaluated: {c:?}"
        );
    }
    assert!(!out.starts_with('\u{feff}'));
    assert!(render(OutputFormat::Csv, &[], true).starts_with('\u{feff}'));
}

/// Flattens nested objects into dotted keys.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

/// ECS 8.x field names the `ecs` output may use (plus our `ecir.*` namespace).
const ECS_FIELDS: &[&str] = &[
    "@timestamp",
    "ecs.version",
    "event.kind",
    "event.category",
    "event.module",
    "event.dataset",
    "event.original",
    "event.action",
    "source.ip",
    "url.original",
    "url.path",
    "url.query",
    "http.request.method",
    "http.response.status_code",
    "http.response.body.bytes",
    "user_agent.original",
    "user.name",
    "rule.id",
    "log.file.path",
    "ecir.source",
    "ecir.line",
];

#[test]
fn ecs_lines_use_only_ecs_field_names() {
    let mut waf = rec("waf raw");
    waf.source = SourceKind::Waf;
    waf.rule_ids = vec!["942100".into()];
    waf.action = "blocked".into();
    let mut bare = rec("bare");
    bare.client_ip.clear();
    bare.status = None;
    bare.bytes = None;
    bare.method.clear();
    let out = render(OutputFormat::Ecs, &[rec("r1"), waf, bare], false);
    let mut seen = BTreeSet::new();
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).expect("each line is JSON");
        let mut keys = BTreeSet::new();
        flatten("", &v, &mut keys);
        for k in &keys {
            assert!(ECS_FIELDS.contains(&k.as_str()), "not an ECS field: {k}");
        }
        for required in [
            "@timestamp",
            "ecs.version",
            "event.kind",
            "event.original",
            "log.file.path",
        ] {
            assert!(keys.contains(required), "{required} missing in {line}");
        }
        assert!(chrono_ok(v["@timestamp"].as_str().unwrap()));
        seen.extend(keys);
    }
    for k in [
        "source.ip",
        "url.path",
        "http.response.status_code",
        "user_agent.original",
        "rule.id",
        "event.action",
    ] {
        assert!(seen.contains(k), "{k} never written");
    }
    let first: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["http"]["response"]["status_code"], 200);
    assert_eq!(first["source"]["ip"], "203.0.113.9");
    assert_eq!(first["url"]["path"], "/商品/一覧");
    let bare: Value = serde_json::from_str(out.lines().nth(2).unwrap()).unwrap();
    assert!(bare.get("source").is_none() && bare.get("http").is_none());
}

fn chrono_ok(s: &str) -> bool {
    Timestamp::parse_rfc3339(s).is_some()
}

#[test]
fn timesketch_lines_have_required_and_our_fields() {
    let out = render(OutputFormat::Timesketch, &[rec("r1"), rec("r2")], false);
    let ours = [
        "source",
        "file",
        "line",
        "client_ip",
        "user",
        "method",
        "path",
        "query",
        "status",
        "bytes",
        "user_agent",
        "rule_ids",
        "action",
        "raw",
    ];
    let mut n = 0;
    for line in out.lines() {
        n += 1;
        let v: Value = serde_json::from_str(line).unwrap();
        let m = v.as_object().unwrap();
        for k in ["message", "datetime", "timestamp_desc", "timestamp"] {
            assert!(m.contains_key(k), "{k} missing");
        }
        assert!(chrono_ok(m["datetime"].as_str().unwrap()));
        assert_eq!(m["timestamp"], 1_714_525_200_250_000i64);
        assert!(!m["message"].as_str().unwrap().is_empty());
        for k in ours {
            assert!(m.contains_key(k), "{k} missing");
        }
        assert_eq!(m.len(), ours.len() + 4, "unexpected fields in {line}");
    }
    assert_eq!(n, 2);
}

#[test]
fn jsonl_keeps_every_field() {
    let out = render(OutputFormat::Jsonl, &[rec("r1")], false);
    let v: Value = serde_json::from_str(out.trim_end()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, CSV_COLUMNS);
    assert_eq!(v["raw"], "r1");
    assert_eq!(v["file"], "logs/access.log");
}

#[test]
fn ecs_direct_writer_matches_the_serde_json_tree() {
    // Every optional field present and absent, hostile text (quotes, backslashes, every
    // control character, DEL, bidi, non-ASCII), several sources and offsets.
    let hostile: String = (0u8..0x20)
        .map(char::from)
        .chain("\"\\/\u{7f}\u{202e}日本語</script>".chars())
        .collect();
    let mut records = vec![rec("r1"), rec(&hostile)];
    let mut waf = rec("waf \"raw\"");
    waf.source = SourceKind::Waf;
    waf.rule_ids = vec!["942100".into(), hostile.clone()];
    waf.action = "blocked".into();
    waf.status = None;
    records.push(waf);
    let mut login = rec("login");
    login.source = SourceKind::AdminLogin;
    login.method.clear();
    login.bytes = None;
    login.user = hostile.clone();
    login.ts = Timestamp::new(-1_000, -(3 * 3600 + 1800));
    records.push(login);
    let mut bare = rec("");
    bare.client_ip.clear();
    bare.status = None;
    bare.bytes = None;
    bare.method.clear();
    bare.target.clear();
    bare.user.clear();
    bare.user_agent.clear();
    records.push(bare);
    let mut only_status = rec("s");
    only_status.method.clear();
    only_status.bytes = Some(u64::MAX);
    only_status.target = "/?".into();
    only_status.line = 0;
    records.push(only_status);
    let mut only_method = rec("m");
    only_method.status = None;
    only_method.bytes = None;
    only_method.target = hostile.clone();
    records.push(only_method);

    let mut w =
        TimelineWriter::new(Vec::new(), OutputFormat::Ecs, vec![hostile.clone()], false).unwrap();
    for r in &records {
        let want = format!(
            "{}\n",
            ecir_model::json::to_string(&w.ecs_value(r)).unwrap()
        );
        let mut got = Vec::new();
        w.ecs(r, &mut got);
        assert_eq!(String::from_utf8(got).unwrap(), want);
    }
    // And through `write`, every line parses back to the same tree.
    let out = render(OutputFormat::Ecs, &records, false);
    assert_eq!(out.lines().count(), records.len());
    for line in out.lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }
}

/// Terminal sequences an attacker can put in a log line: SGR colour, an OSC 8 hyperlink, BEL,
/// backspace, a bidi override, a C1 CSI introducer, DEL, a zero-width space.
const HOSTILE: [&str; 8] = [
    "\x1b[31mRED\x1b[0m",
    "\x1b]8;;http://evil/\x07click\x1b]8;;\x07",
    "\x07",
    "\x08",
    "\u{202e}",
    "\u{9b}",
    "\u{7f}",
    "\u{200b}",
];

/// Whether `s` holds a character no output may carry raw (CSV row ends and JSON line ends
/// aside).
fn has_raw_control(s: &str) -> Option<char> {
    s.chars()
        .find(|&c| c != '\r' && c != '\n' && ecir_model::text::is_unsafe_char(c))
}

/// A record whose every log-derived text field carries `bad`.
fn hostile_rec(bad: &str) -> Record {
    let mut r = rec(&format!(
        "203.0.113.9 - u{bad} [01/May/2024:10:00:00 +0900] \"GET /x{bad}?q={bad} HTTP/1.1\" 200 5 \"http://r/{bad}\" \"UA {bad}\""
    ));
    r.user = format!("u{bad}");
    r.method = format!("GET{bad}");
    r.target = format!("/x{bad}?q={bad}");
    r.user_agent = format!("UA {bad}");
    r.rule_ids = vec![format!("9421{bad}")];
    r.action = format!("blocked{bad}");
    r
}

#[test]
fn every_format_escapes_controls_from_log_fields_and_file_names() {
    for bad in HOSTILE {
        let want = ecir_model::text::escape_controls(bad, usize::MAX);
        let file = format!("logs/acc{bad}ess.log");
        for format in [
            OutputFormat::Csv,
            OutputFormat::Jsonl,
            OutputFormat::Timesketch,
            OutputFormat::Ecs,
        ] {
            let mut w = TimelineWriter::new(Vec::new(), format, vec![file.clone()], false).unwrap();
            w.write(&hostile_rec(bad)).unwrap();
            let out = String::from_utf8(w.finish().unwrap()).unwrap();
            assert_eq!(has_raw_control(&out), None, "{format:?} {bad:?}: {out}");
            let row = out.lines().last().unwrap();
            let text: Vec<String> = if format == OutputFormat::Csv {
                split_csv(row.trim_end_matches('\r'))
            } else {
                let mut strings = Vec::new();
                json_strings(&serde_json::from_str(row).unwrap(), &mut strings);
                strings
            };
            // Each field comes out with the model's escape where the control was.
            for field in [
                format!("u{want}"),
                format!("UA {want}"),
                format!("logs/acc{want}ess.log"),
            ] {
                assert!(
                    text.contains(&field),
                    "{format:?}: {field:?} not in {text:?}"
                );
            }
            assert!(
                text.iter().any(|t| t.contains(&format!("/x{want}"))),
                "{format:?}: path in {text:?}"
            );
            assert!(
                text.iter()
                    .any(|t| t.contains(&format!("\"http://r/{want}\""))),
                "{format:?}: raw line in {text:?}"
            );
        }
    }
    // Formula neutralisation still applies to the escaped text.
    let mut r = hostile_rec("\x1b");
    r.user = "=\x1b[31mHYPERLINK(1)".into();
    let out = render(OutputFormat::Csv, &[r], false);
    let cells = split_csv(out.lines().nth(1).unwrap().trim_end_matches('\r'));
    assert_eq!(cells[5], "'=\\x1b[31mHYPERLINK(1)");
}

/// Every string value in a JSON document.
fn json_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| json_strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| json_strings(x, out)),
        _ => {}
    }
}

#[test]
fn clean_fields_are_written_as_before() {
    // Nothing to escape: the row is the formula-neutralised, quoted fields as they were.
    let out = render(OutputFormat::Csv, &[rec("plain \"raw\", 日本語")], false);
    assert_eq!(
        out.split("\r\n").nth(1).unwrap(),
        "2024-05-01T10:00:00.250+09:00,web,logs/access.log,12,203.0.113.9,'=cmd|' /C calc'!A0,GET,/商品/一覧,'@SUM(1+1),200,512,\"'+HYPERLINK(\"\"http://evil\"\")\",,,\"plain \"\"raw\"\", 日本語\""
    );
}

/// `cargo test --release -p ecir-timeline ecs_writer_speed -- --ignored --nocapture`:
/// the direct ECS writer against the `serde_json` tree it replaced, same records, interleaved
/// rounds (fair on a loaded machine).
#[test]
#[ignore]
fn ecs_writer_speed() {
    let n = 200_000u64;
    let records: Vec<Record> = (0..n)
        .map(|i| {
            let mut r = rec(&format!(
                "203.0.113.{} - - [01/May/2024:10:00:00 +0900] \"GET /products/detail/{i}?q=1 HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\"",
                i % 250
            ));
            r.ts = Timestamp::new(1_714_525_200_000 + (i as i64 / 20) * 1000, 9 * 3600);
            r.line = i + 1;
            r
        })
        .collect();
    let mut w = TimelineWriter::new(
        Vec::new(),
        OutputFormat::Ecs,
        vec!["logs/access.log".into()],
        false,
    )
    .unwrap();
    let (mut tree, mut direct) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    let mut sink = Vec::with_capacity(1 << 20);
    for _ in 0..3 {
        let t = std::time::Instant::now();
        for r in &records {
            sink.clear();
            serde_json::to_writer(&mut sink, &w.ecs_value(r)).unwrap();
            sink.push(b'\n');
        }
        tree += t.elapsed();
        let t = std::time::Instant::now();
        for r in &records {
            sink.clear();
            w.ecs(r, &mut sink);
        }
        direct += t.elapsed();
    }
    let per = |d: std::time::Duration| d.as_nanos() as f64 / (3 * n) as f64;
    println!(
        "ECS line: serde_json tree {:.0} ns, direct {:.0} ns ({:.1}x)",
        per(tree),
        per(direct),
        per(tree) / per(direct)
    );
    assert!(direct < tree);
}
