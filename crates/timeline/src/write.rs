//! Timeline output formats: CSV (spreadsheet-safe), JSONL, Timesketch JSONL and ECS NDJSON.
//!
//! Attacker text is data: every text field of a record (the log line and the fields parsed
//! from it) and every file name goes through [`ecir_model::text::escaped`] before it is
//! written, in every format, so control characters (C0, DEL, C1) and bidi / zero-width format
//! characters come out as visible `\xNN` / `\u{NNNN}` escapes, as in a scan report's
//! evidence; that includes tabs and the line breaks inside a multi-line record (`\x0a`).
//! Printable ASCII, nearly every field of a real log, is checked a block at a time and written
//! without a copy. JSON is written through [`ecir_model::json`] besides.
//!
//! CSV neutralisation: a cell whose first character (after any leading spaces) is `=`, `+`,
//! `-`, `@`, a tab or a carriage return is prefixed with `'`, so a spreadsheet shows it as text
//! instead of evaluating it as a formula. This changes such cells (including raw lines that
//! begin with one of those characters) by that one leading `'`; after the escaping above only
//! the first four can still lead a cell. Cells are quoted per RFC 4180 when they hold a comma,
//! quote or line break. UTF-8 is written as is; `bom` prepends a
//! byte-order mark so Excel opens Japanese text correctly.

use std::borrow::Cow;
use std::io::{self, Write};

use ecir_model::text::escaped;
#[cfg(test)]
use serde_json::json;
use serde_json::{Map, Value};

use crate::record::Record;

/// The output format of `ecir timeline`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Csv,
    Jsonl,
    Timesketch,
    Ecs,
}

impl OutputFormat {
    pub fn parse(s: &str) -> Option<OutputFormat> {
        Some(match s {
            "csv" => OutputFormat::Csv,
            "jsonl" => OutputFormat::Jsonl,
            "timesketch" => OutputFormat::Timesketch,
            "ecs" => OutputFormat::Ecs,
            _ => return None,
        })
    }
}

/// CSV columns, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "datetime",
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

/// ECS version the `ecs` output follows.
pub const ECS_VERSION: &str = "8.11.0";

/// Neutralises a spreadsheet formula and quotes the cell when needed. (The writer escapes
/// control characters before this, see the module documentation.)
pub fn csv_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 3);
    push_csv_cell(&mut out, s);
    out
}

/// Appends `s` to `out` as one CSV cell, as [`csv_cell`] returns it.
fn push_csv_cell(out: &mut String, s: &str) {
    let first = s.trim_start_matches(' ').chars().next();
    let formula = matches!(first, Some('=' | '+' | '-' | '@' | '\t' | '\r'));
    let needs_quote = s.contains([',', '"', '\n', '\r']);
    if needs_quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    if needs_quote {
        for (i, part) in s.split('"').enumerate() {
            if i > 0 {
                out.push_str("\"\"");
            }
            out.push_str(part);
        }
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// Writes records in one format.
pub struct TimelineWriter<W: Write> {
    out: W,
    format: OutputFormat,
    /// Input file names by index, already escaped.
    files: Vec<String>,
    pub written: u64,
    /// The last (utc_ms, offset) formatted and its text: events come in bursts per second.
    last_time: (i64, i32, String),
    /// The same for ECS's millisecond `@timestamp`.
    last_ecs_time: (i64, i32, String),
    /// One ECS line, reused.
    buf: Vec<u8>,
    /// One CSV row, reused.
    row: String,
}

impl<W: Write> TimelineWriter<W> {
    /// Starts the output (CSV header, optional BOM). `files` names inputs by index.
    pub fn new(
        mut out: W,
        format: OutputFormat,
        files: Vec<String>,
        bom: bool,
    ) -> io::Result<Self> {
        if format == OutputFormat::Csv {
            if bom {
                out.write_all("\u{feff}".as_bytes())?;
            }
            out.write_all(CSV_COLUMNS.join(",").as_bytes())?;
            out.write_all(b"\r\n")?;
        }
        Ok(TimelineWriter {
            out,
            format,
            files: escape_names(files),
            written: 0,
            last_time: (i64::MIN, 0, String::new()),
            last_ecs_time: (i64::MIN, 0, String::new()),
            buf: Vec::with_capacity(4096),
            row: String::with_capacity(4096),
        })
    }

    fn file(&self, r: &Record) -> &str {
        self.files.get(r.file as usize).map_or("", String::as_str)
    }

    pub fn write(&mut self, r: &Record) -> io::Result<()> {
        self.written += 1;
        match self.format {
            OutputFormat::Csv => self.csv(r),
            OutputFormat::Jsonl => {
                let v = self.fields(r);
                self.json_line(&Value::Object(v))
            }
            OutputFormat::Timesketch => {
                let mut v = Map::new();
                let message = message(r);
                v.insert("message".into(), Value::from(escaped(&message)));
                v.insert("datetime".into(), Value::from(r.ts.to_rfc3339()));
                v.insert("timestamp".into(), Value::from(r.ts.utc_ms * 1000));
                v.insert("timestamp_desc".into(), Value::from(timestamp_desc(r)));
                for (k, x) in self.fields(r) {
                    if k != "datetime" {
                        v.insert(k, x);
                    }
                }
                self.json_line(&Value::Object(v))
            }
            OutputFormat::Ecs => {
                let mut buf = std::mem::take(&mut self.buf);
                buf.clear();
                self.ecs(r, &mut buf);
                let res = self.out.write_all(&buf);
                self.buf = buf;
                res
            }
        }
    }

    /// Names the input files by index (set by [`crate::timeline`] after discovery).
    pub fn set_files(&mut self, files: Vec<String>) {
        self.files = escape_names(files);
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    fn json_line(&mut self, v: &Value) -> io::Result<()> {
        ecir_model::json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")
    }

    /// Brings the cached RFC 3339 time up to `r`'s instant and offset.
    fn time(&mut self, r: &Record) {
        if self.last_time.0 != r.ts.utc_ms || self.last_time.1 != r.ts.offset_secs {
            self.last_time = (r.ts.utc_ms, r.ts.offset_secs, r.ts.to_rfc3339());
        }
    }

    fn csv(&mut self, r: &Record) -> io::Result<()> {
        self.time(r);
        let mut row = std::mem::take(&mut self.row);
        row.clear();
        let status = r.status.map(|s| s.to_string()).unwrap_or_default();
        let bytes = r.bytes.map(|b| b.to_string()).unwrap_or_default();
        let line = r.line.to_string();
        let rules = r.rule_ids.join(";");
        let cells: [&str; 15] = [
            &self.last_time.2,
            r.source.as_str(),
            self.file(r),
            &line,
            &r.client_ip,
            &r.user,
            &r.method,
            r.path(),
            r.query(),
            &status,
            &bytes,
            &r.user_agent,
            &rules,
            &r.action,
            &r.raw,
        ];
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                row.push(',');
            }
            push_csv_cell(&mut row, &escaped(c));
        }
        row.push_str("\r\n");
        let res = self.out.write_all(row.as_bytes());
        self.row = row;
        res
    }

    /// Our field names (the `jsonl` format; Timesketch adds its own on top).
    fn fields(&self, r: &Record) -> Map<String, Value> {
        let opt = |s: &str| {
            if s.is_empty() {
                Value::Null
            } else {
                Value::from(escaped(s))
            }
        };
        let mut m = Map::new();
        m.insert("datetime".into(), Value::from(r.ts.to_rfc3339()));
        m.insert("source".into(), Value::from(r.source.as_str()));
        m.insert("file".into(), Value::from(self.file(r)));
        m.insert("line".into(), Value::from(r.line));
        m.insert("client_ip".into(), opt(&r.client_ip));
        m.insert("user".into(), opt(&r.user));
        m.insert("method".into(), opt(&r.method));
        m.insert("path".into(), opt(r.path()));
        m.insert("query".into(), opt(r.query()));
        m.insert("status".into(), r.status.map_or(Value::Null, Value::from));
        m.insert("bytes".into(), r.bytes.map_or(Value::Null, Value::from));
        m.insert("user_agent".into(), opt(&r.user_agent));
        m.insert(
            "rule_ids".into(),
            r.rule_ids.iter().map(|id| escaped(id)).collect(),
        );
        m.insert("action".into(), opt(&r.action));
        m.insert("raw".into(), Value::from(escaped(&r.raw)));
        m
    }

    /// One ECS line, written directly (no `serde_json::Value` tree per event). Field order
    /// and escaping are those of the `serde_json` tree it replaces (`ecs_value`, kept for
    /// the equivalence test).
    fn ecs(&mut self, r: &Record, b: &mut Vec<u8>) {
        if self.last_ecs_time.0 != r.ts.utc_ms || self.last_ecs_time.1 != r.ts.offset_secs {
            self.last_ecs_time = (
                r.ts.utc_ms,
                r.ts.offset_secs,
                r.ts.to_datetime()
                    .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
                    .to_string(),
            );
        }
        let category: &[&str] = match r.source.as_str() {
            "admin-login" | "auth" => &["authentication"],
            "waf" => &["intrusion_detection", "web"],
            _ => &["web"],
        };
        let source = r.source.as_str();
        b.extend_from_slice(b"{\"@timestamp\":");
        json_str(b, &self.last_ecs_time.2);
        b.extend_from_slice(b",\"ecs\":{\"version\":");
        json_str(b, ECS_VERSION);
        b.extend_from_slice(b"},\"event\":{\"kind\":\"event\",\"category\":[");
        for (i, c) in category.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            json_str(b, c);
        }
        b.extend_from_slice(b"],\"module\":\"ecir\",\"dataset\":\"ecir.");
        json_str_body(b, source);
        b.extend_from_slice(b"\",\"original\":");
        json_str(b, &escaped(&r.raw));
        if !r.action.is_empty() {
            b.extend_from_slice(b",\"action\":");
            json_str(b, &escaped(&r.action));
        }
        b.extend_from_slice(b"},\"log\":{\"file\":{\"path\":");
        json_str(b, self.file(r));
        b.extend_from_slice(b"}},\"ecir\":{\"source\":");
        json_str(b, source);
        b.extend_from_slice(b",\"line\":");
        json_num(b, r.line);
        b.push(b'}');
        if !r.client_ip.is_empty() {
            b.extend_from_slice(b",\"source\":{\"ip\":");
            json_str(b, &escaped(&r.client_ip));
            b.push(b'}');
        }
        if !r.target.is_empty() {
            b.extend_from_slice(b",\"url\":{\"original\":");
            json_str(b, &escaped(&r.target));
            b.extend_from_slice(b",\"path\":");
            json_str(b, &escaped(r.path()));
            if !r.query().is_empty() {
                b.extend_from_slice(b",\"query\":");
                json_str(b, &escaped(r.query()));
            }
            b.push(b'}');
        }
        let response = r.status.is_some() || r.bytes.is_some();
        if !r.method.is_empty() || response {
            b.extend_from_slice(b",\"http\":{");
            if !r.method.is_empty() {
                b.extend_from_slice(b"\"request\":{\"method\":");
                json_str(b, &escaped(&r.method));
                b.push(b'}');
                if response {
                    b.push(b',');
                }
            }
            if response {
                b.extend_from_slice(b"\"response\":{");
                if let Some(st) = r.status {
                    b.extend_from_slice(b"\"status_code\":");
                    json_num(b, u64::from(st));
                    if r.bytes.is_some() {
                        b.push(b',');
                    }
                }
                if let Some(n) = r.bytes {
                    b.extend_from_slice(b"\"body\":{\"bytes\":");
                    json_num(b, n);
                    b.push(b'}');
                }
                b.push(b'}');
            }
            b.push(b'}');
        }
        if !r.user_agent.is_empty() {
            b.extend_from_slice(b",\"user_agent\":{\"original\":");
            json_str(b, &escaped(&r.user_agent));
            b.push(b'}');
        }
        if !r.user.is_empty() {
            b.extend_from_slice(b",\"user\":{\"name\":");
            json_str(b, &escaped(&r.user));
            b.push(b'}');
        }
        if !r.rule_ids.is_empty() {
            b.extend_from_slice(b",\"rule\":{\"id\":[");
            for (i, id) in r.rule_ids.iter().enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                json_str(b, &escaped(id));
            }
            b.extend_from_slice(b"]}");
        }
        b.extend_from_slice(b"}\n");
    }

    /// The ECS line as a `serde_json` tree: the reference the direct writer must match (log
    /// text escaped as the writer escapes it).
    #[cfg(test)]
    fn ecs_value(&self, r: &Record) -> Value {
        let ms =
            r.ts.to_datetime()
                .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
                .to_string();
        let category = match r.source.as_str() {
            "admin-login" | "auth" => vec!["authentication"],
            "waf" => vec!["intrusion_detection", "web"],
            _ => vec!["web"],
        };
        let mut event = json!({
            "kind": "event",
            "category": category,
            "module": "ecir",
            "dataset": format!("ecir.{}", r.source.as_str()),
            "original": escaped(&r.raw),
        });
        if !r.action.is_empty() {
            event["action"] = Value::from(escaped(&r.action));
        }
        let mut v = json!({
            "@timestamp": ms,
            "ecs": {"version": ECS_VERSION},
            "event": event,
            "log": {"file": {"path": self.file(r)}},
            "ecir": {"source": r.source.as_str(), "line": r.line},
        });
        if !r.client_ip.is_empty() {
            v["source"] = json!({"ip": escaped(&r.client_ip)});
        }
        if !r.target.is_empty() {
            let mut url = json!({"original": escaped(&r.target), "path": escaped(r.path())});
            if !r.query().is_empty() {
                url["query"] = Value::from(escaped(r.query()));
            }
            v["url"] = url;
        }
        let mut http = Map::new();
        if !r.method.is_empty() {
            http.insert("request".into(), json!({"method": escaped(&r.method)}));
        }
        let mut response = Map::new();
        if let Some(s) = r.status {
            response.insert("status_code".into(), Value::from(s));
        }
        if let Some(b) = r.bytes {
            response.insert("body".into(), json!({"bytes": b}));
        }
        if !response.is_empty() {
            http.insert("response".into(), Value::Object(response));
        }
        if !http.is_empty() {
            v["http"] = Value::Object(http);
        }
        if !r.user_agent.is_empty() {
            v["user_agent"] = json!({"original": escaped(&r.user_agent)});
        }
        if !r.user.is_empty() {
            v["user"] = json!({"name": escaped(&r.user)});
        }
        if !r.rule_ids.is_empty() {
            v["rule"] = json!({"id": r.rule_ids.iter().map(|id| escaped(id)).collect::<Vec<_>>()});
        }
        v
    }
}

/// Writes `s` as a JSON string, quoted.
fn json_str(b: &mut Vec<u8>, s: &str) {
    b.push(b'"');
    json_str_body(b, s);
    b.push(b'"');
}

/// Writes `s` escaped as inside a JSON string, byte-identical to [`ecir_model::json`]'s
/// `serde_json` writer (what the `jsonl` and `timesketch` formats use).
fn json_str_body(b: &mut Vec<u8>, s: &str) {
    ecir_model::json::write_str_body(b, s);
}

/// File names as the writer shows them: escaped once, not per record.
fn escape_names(files: Vec<String>) -> Vec<String> {
    files
        .into_iter()
        .map(|f| match escaped(&f) {
            Cow::Borrowed(_) => f,
            Cow::Owned(e) => e,
        })
        .collect()
}

fn json_num(b: &mut Vec<u8>, n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut n = n;
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    b.extend_from_slice(&tmp[i..]);
}

fn timestamp_desc(r: &Record) -> &'static str {
    match r.source.as_str() {
        "web" => "Request Time",
        "waf" => "WAF Event Time",
        "admin-login" | "auth" => "Login Time",
        _ => "Event Time",
    }
}

/// A one-line description for Timesketch's `message`.
fn message(r: &Record) -> String {
    let mut parts: Vec<String> = vec![format!("[{}]", r.source.as_str())];
    for s in [&r.client_ip, &r.user, &r.method, &r.target] {
        if !s.is_empty() {
            parts.push(s.clone());
        }
    }
    if let Some(s) = r.status {
        parts.push(s.to_string());
    }
    if !r.action.is_empty() {
        parts.push(r.action.clone());
    }
    if !r.rule_ids.is_empty() {
        parts.push(format!("rules {}", r.rule_ids.join(",")));
    }
    if parts.len() == 1 {
        parts.push(r.raw.clone());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests;
