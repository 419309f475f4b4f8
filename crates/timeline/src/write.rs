//! Timeline output formats: CSV (spreadsheet-safe), JSONL, Timesketch JSONL and ECS NDJSON.
//!
//! CSV neutralisation: a cell whose first character (after any leading spaces) is `=`, `+`,
//! `-`, `@`, a tab or a carriage return is prefixed with `'`, so a spreadsheet shows it as text
//! instead of evaluating it as a formula. This changes such cells (including raw lines that
//! begin with one of those characters) by that one leading `'`. Cells are quoted per RFC 4180
//! when they hold a comma, quote or line break. UTF-8 is written as is; `bom` prepends a
//! byte-order mark so Excel opens Japanese text correctly.

use std::io::{self, Write};

use serde_json::{json, Map, Value};

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

/// Neutralises a spreadsheet formula and quotes the cell when needed.
pub fn csv_cell(s: &str) -> String {
    let first = s.trim_start_matches(' ').chars().next();
    let formula = matches!(first, Some('=' | '+' | '-' | '@' | '\t' | '\r'));
    let needs_quote = s.contains([',', '"', '\n', '\r']);
    let mut out = String::with_capacity(s.len() + 3);
    if needs_quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if needs_quote {
        out.push('"');
    }
    out
}

/// Writes records in one format.
pub struct TimelineWriter<W: Write> {
    out: W,
    format: OutputFormat,
    files: Vec<String>,
    pub written: u64,
    /// The last (utc_ms, offset) formatted and its text: events come in bursts per second.
    last_time: (i64, i32, String),
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
            files,
            written: 0,
            last_time: (i64::MIN, 0, String::new()),
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
                v.insert("message".into(), Value::from(message(r)));
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
                let v = self.ecs(r);
                self.json_line(&v)
            }
        }
    }

    /// Names the input files by index (set by [`crate::timeline`] after discovery).
    pub fn set_files(&mut self, files: Vec<String>) {
        self.files = files;
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    fn json_line(&mut self, v: &Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")
    }

    fn time(&mut self, r: &Record) -> String {
        if self.last_time.0 != r.ts.utc_ms || self.last_time.1 != r.ts.offset_secs {
            self.last_time = (r.ts.utc_ms, r.ts.offset_secs, r.ts.to_rfc3339());
        }
        self.last_time.2.clone()
    }

    fn csv(&mut self, r: &Record) -> io::Result<()> {
        let time = self.time(r);
        let status = r.status.map(|s| s.to_string()).unwrap_or_default();
        let bytes = r.bytes.map(|b| b.to_string()).unwrap_or_default();
        let line = r.line.to_string();
        let rules = r.rule_ids.join(";");
        let cells: [&str; 15] = [
            &time,
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
        let mut row = String::with_capacity(r.raw.len() * 2 + 128);
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                row.push(',');
            }
            row.push_str(&csv_cell(c));
        }
        row.push_str("\r\n");
        self.out.write_all(row.as_bytes())
    }

    /// Our field names (the `jsonl` format; Timesketch adds its own on top).
    fn fields(&self, r: &Record) -> Map<String, Value> {
        let opt = |s: &str| {
            if s.is_empty() {
                Value::Null
            } else {
                Value::from(s)
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
        m.insert("rule_ids".into(), Value::from(r.rule_ids.clone()));
        m.insert("action".into(), opt(&r.action));
        m.insert("raw".into(), Value::from(r.raw.as_str()));
        m
    }

    fn ecs(&self, r: &Record) -> Value {
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
            "original": r.raw,
        });
        if !r.action.is_empty() {
            event["action"] = Value::from(r.action.as_str());
        }
        let mut v = json!({
            "@timestamp": ms,
            "ecs": {"version": ECS_VERSION},
            "event": event,
            "log": {"file": {"path": self.file(r)}},
            "ecir": {"source": r.source.as_str(), "line": r.line},
        });
        if !r.client_ip.is_empty() {
            v["source"] = json!({"ip": r.client_ip});
        }
        if !r.target.is_empty() {
            let mut url = json!({"original": r.target, "path": r.path()});
            if !r.query().is_empty() {
                url["query"] = Value::from(r.query());
            }
            v["url"] = url;
        }
        let mut http = Map::new();
        if !r.method.is_empty() {
            http.insert("request".into(), json!({"method": r.method}));
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
            v["user_agent"] = json!({"original": r.user_agent});
        }
        if !r.user.is_empty() {
            v["user"] = json!({"name": r.user});
        }
        if !r.rule_ids.is_empty() {
            v["rule"] = json!({"id": r.rule_ids});
        }
        v
    }
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
