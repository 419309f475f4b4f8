//! The report document, schema `ecir.report/1` (see `shared/spec/report-v1.md`).
//!
//! Every view (terminal summary, JSON, NDJSON, HTML, timeline) renders this one document.
//! Field names are a contract: add fields freely, never rename or remove one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::finding::{Finding, Severity};
use crate::time::Timestamp;

pub const REPORT_SCHEMA: &str = "ecir.report/1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// A line that was not parsed, kept as an example for the reader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedSample {
    pub line: u64,
    pub reason: String,
    pub text: String,
}

/// What ecir read from one input file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InputSummary {
    /// The path as given or found; bytes of a name that are not UTF-8 are written `\xHH`.
    pub path: String,
    /// The path's exact bytes as lowercase hex, only when they are not UTF-8 (a Shift_JIS
    /// file name): `path` alone could then be taken for another name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path_bytes: Option<String>,
    /// SHA-256 of the file's bytes as stored (compressed bytes for an archive).
    pub sha256: String,
    /// Size of the file on disk.
    pub bytes: u64,
    /// Bytes hashed; equals `bytes` unless the file changed or could not be read whole.
    pub bytes_read: u64,
    /// `none` or `gzip`.
    pub compression: String,
    /// Decompressed bytes read, for archives.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub decompressed_bytes: Option<u64>,
    /// Format name (`ecir formats`), or `unknown`.
    pub format: String,
    /// Share of sampled lines the format recognised (1.0 when forced with `--format`).
    pub format_confidence: f64,
    /// `detected`, `forced`, or `none`.
    pub format_basis: String,
    pub source: String,
    pub lines: u64,
    pub parsed: u64,
    pub skipped: u64,
    pub skipped_by_reason: BTreeMap<String, u64>,
    pub skipped_samples: Vec<SkippedSample>,
    /// Records that could not be read on lines that held several (separated by bare CRs):
    /// not lines, so not in `skipped`; by reason.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub extra_skipped_by_reason: BTreeMap<String, u64>,
    /// Parsed events outside `--since`/`--until`.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub filtered_out: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub first_ts: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_ts: Option<Timestamp>,
    /// Damage and read errors: the file was not read whole.
    pub errors: Vec<String>,
    /// Things the reader should know (unknown format, timestamps read in `--tz`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub warnings: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The window during which card data may have been exposed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    pub start: Timestamp,
    pub end: Timestamp,
    pub basis: Vec<String>,
    pub completed_orders: u64,
    pub distinct_customer_ips: u64,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Totals over the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub bytes: u64,
    pub lines: u64,
    pub parsed: u64,
    pub skipped: u64,
    /// Parsed events the detectors saw (after `--since`/`--until`).
    pub events_analyzed: u64,
    /// Distinct evidence lines cited by findings.
    pub events_cited: u64,
    pub elapsed_ms: u64,
    pub threads: usize,
}

/// A problem with one input or path argument that makes the run exit 2; the same line is
/// printed on stderr.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    /// The path as given or as found (several, comma-separated, for "no file to read").
    pub path: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hint: Option<String>,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub tool: Tool,
    pub generated_at: Timestamp,
    /// The options in force (time zone, filters, thresholds), as strings and lists.
    pub options: BTreeMap<String, serde_json::Value>,
    pub inputs: Vec<InputSummary>,
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exposure: Option<Exposure>,
    /// Run-wide caveats: proxy addresses, unknown formats, what the logs cannot show.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What made the run exit 2 (a path missing or unreadable, a damaged archive, no file to
    /// read): empty for a complete run, so a consumer holding only this file can tell.
    #[serde(default)]
    pub errors: Vec<RunError>,
    /// Clients behind the most findings, highest severity first.
    #[serde(default)]
    pub top_ips: Vec<TopIp>,
    pub stats: Stats,
    /// Events per hour per source (analysed events only), for timeline charts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activity: Vec<ActivityBucket>,
    /// What the WAF logs recorded, per rule and per client, when any WAF log was read.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub waf_summary: Option<WafSummary>,
}

/// WAF activity over the run: totals by action, the busiest rules and clients.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WafSummary {
    /// WAF records read.
    pub events: u64,
    pub blocked: u64,
    pub logged_only: u64,
    pub allowed: u64,
    /// Records whose engine or rule ran in detection-only / count mode.
    pub detection_only: u64,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// Rules by matches (most first), at most [`WafSummary::MAX_ROWS`].
    pub rules: Vec<WafRuleRow>,
    /// Clients by WAF records (most first), at most [`WafSummary::MAX_ROWS`].
    pub ips: Vec<WafIpRow>,
}

impl WafSummary {
    pub const MAX_ROWS: usize = 20;
}

/// One rule's WAF activity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WafRuleRow {
    pub rule_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attack: Option<String>,
    pub matches: u64,
    pub blocked: u64,
    pub not_blocked: u64,
    pub distinct_ips: u64,
}

/// One client's WAF activity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WafIpRow {
    pub ip: String,
    pub events: u64,
    pub blocked: u64,
    pub not_blocked: u64,
    /// Attack classes seen, sorted.
    pub attacks: Vec<String>,
}

/// Events one source logged in one hour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityBucket {
    /// Source kind (`web`, `waf`, …).
    pub source: String,
    /// Start of the hour (RFC 3339).
    pub hour: Timestamp,
    pub events: u64,
}

/// A client IP and what the findings say of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopIp {
    pub ip: String,
    pub findings: u64,
    pub max_severity: Severity,
    /// Events from this client among those analysed.
    pub requests: u64,
    /// First and last event from this client among those analysed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub first_seen: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_seen: Option<Timestamp>,
}

impl Report {
    /// Sorts findings by severity (highest first), `first_seen`, then rule and subjects, and
    /// assigns ids `F0001`… in that order. The result does not depend on detector order.
    pub fn sort_and_number_findings(&mut self) {
        for f in &mut self.findings {
            f.normalize_evidence();
        }
        self.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.first_seen.cmp(&b.first_seen))
                .then(a.rule.cmp(&b.rule))
                .then(a.ips.cmp(&b.ips))
                .then(a.users.cmp(&b.users))
                .then(a.paths.cmp(&b.paths))
                .then(a.title.cmp(&b.title))
        });
        // `related` may name the temporary ids detectors gave; remap them.
        let mut renumber = BTreeMap::new();
        for (i, f) in self.findings.iter_mut().enumerate() {
            let new_id = format!("F{:04}", i + 1);
            if !f.id.is_empty() {
                renumber.insert(f.id.clone(), new_id.clone());
            }
            f.id = new_id;
        }
        for f in &mut self.findings {
            for r in &mut f.related {
                if let Some(n) = renumber.get(r) {
                    *r = n.clone();
                }
            }
            f.related.sort();
        }
        if let Some(exp) = &mut self.exposure {
            for b in &mut exp.basis {
                if let Some(n) = renumber.get(b) {
                    *b = n.clone();
                }
            }
        }
    }

    pub fn count_at_or_above(&self, min: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity >= min).count()
    }
}
