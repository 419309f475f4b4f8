//! The audit document, schema `ecir.audit/1`: policy, overall verdict, per-stream coverage
//! and defects, cross-stream coverage gaps and card numbers found. Field names are a
//! contract: add fields freely, never rename or remove one.

use std::collections::BTreeMap;

use ecir_model::Timestamp;
use serde::{Deserialize, Serialize};

pub const AUDIT_SCHEMA: &str = "ecir.audit/1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub retention_days: u32,
    pub online_days: u32,
    /// Whether the online days must be readable without decompression.
    pub online_uncompressed: bool,
    /// The audit date (ISO date in the audit's zone).
    pub as_of: String,
    /// End of the audit: lines dated later are outside it (counted in
    /// `lines_after_as_of`, not judged). Only lines dated after the real time of the run are
    /// in the future (`future_timestamps`).
    pub as_of_instant: Timestamp,
    /// Zone used for the audit date and for timestamps written without an offset.
    pub timezone: String,
    /// Where that zone came from (`--tz`, `offset of --as-of`, `machine zone`, …).
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub timezone_source: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DamagedFile {
    pub file: String,
    pub problem: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DuplicateFile {
    pub file: String,
    /// The file it copies: the first in path order (names of hand-made copies such as
    /// `.bak` last) with the same SHA-256 or the same lines.
    pub same_as: String,
    pub sha256: String,
    /// `bytes` (same SHA-256) or `lines` (the same lines once decompressed: a `gunzip -k` or
    /// `zcat >` copy of an archive).
    #[serde(default)]
    pub same: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileOrderProblem {
    pub file: String,
    /// The file before it in rotation order.
    pub previous: String,
    /// `overlap` or `backwards`.
    pub kind: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// First silent hour (local time of the stream).
    pub from: String,
    /// End of the silence (exclusive).
    pub to: String,
    pub hours: u32,
    /// Lines the stream usually writes in those hours of the day.
    pub expected_lines: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeProblem {
    pub file: String,
    pub line: u64,
    pub ts: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub previous: Option<Timestamp>,
    /// Lines of this kind in the file.
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub compression: String,
    pub format: String,
    pub lines: u64,
    pub dated_lines: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub first_ts: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_ts: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub damage: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamReport {
    pub name: String,
    /// Source kind (`web`, `admin-login`, `app`, `waf`, `auth`, `unknown`).
    pub source: String,
    /// Files in rotation order, oldest first.
    pub files: Vec<StreamFile>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub first_ts: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_ts: Option<Timestamp>,
    pub lines: u64,
    pub dated_lines: u64,
    /// Days with at least one line.
    pub days_covered: u64,
    /// Calendar days from the first to the last line.
    pub span_days: u64,
    /// Dated lines per local day (ISO date → lines).
    pub lines_per_day: BTreeMap<String, u64>,
    pub missing_days: Vec<String>,
    pub damaged_files: Vec<DamagedFile>,
    pub empty_files: Vec<String>,
    pub duplicate_files: Vec<DuplicateFile>,
    pub file_order: Vec<FileOrderProblem>,
    pub silences: Vec<Silence>,
    pub backwards_timestamps: Vec<TimeProblem>,
    /// Lines dated after the real time of the run (beyond a small clock slack).
    pub future_timestamps: Vec<TimeProblem>,
    /// Lines dated after the end of the audit (`policy.as_of_instant`) but not in the future:
    /// outside a look-back audit, counted and not judged.
    #[serde(default)]
    pub lines_after_as_of: u64,
    /// The stream writes only when something happens (admin logins, application and WAF
    /// logs, web-server error logs): days without lines can be quiet days, not losses.
    #[serde(default)]
    pub event_driven: bool,
    /// Days of the retention window without lines that are not counted as lost: the stream
    /// is event-driven, and empty rotated files exist for those days or it is sparse by
    /// nature (see the warning for which). Listed with the others in `missing_days`.
    #[serde(default)]
    pub quiet_days: u64,
    /// Days of the online window only in compressed files (with --online-uncompressed).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub online_compressed_days: Vec<String>,
    /// Set when every file of the stream holding lines is a byte-for-byte copy of a file of
    /// another stream (a backup copy under another name): the stream named here, where
    /// those lines are judged. Such a stream adds no coverage and cannot fail by itself.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub copy_of: Option<String>,
    pub verdict: Verdict,
    /// Why the stream fails the policy, one sentence each.
    pub reasons: Vec<String>,
    /// Defects that do not fail the policy but limit what the logs can show.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoverageGap {
    /// The silent stream.
    pub stream: String,
    pub from: String,
    /// End (exclusive for hours, inclusive for whole days; see `unit`).
    pub to: String,
    /// The stream that had traffic meanwhile.
    #[serde(rename = "while")]
    pub while_: String,
    /// Lines the other stream wrote during the gap.
    pub while_lines: u64,
    /// `days` or `hours`.
    pub unit: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CardNumber {
    pub file: String,
    pub line: u64,
    /// First 6 and last 4 digits only.
    pub masked: String,
    pub brand: String,
    /// The keyword that made the digits a card-number context.
    pub context: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CardSummary {
    pub total: u64,
    pub files: u64,
}

/// A file under the roots that is not a log (README, `wtmp`, a saved report page, …): hashed,
/// searched for card numbers, and left out of the streams.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IgnoredFile {
    pub path: String,
    pub sha256: String,
    /// Why it was judged not to be a log.
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditError {
    pub path: String,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditStats {
    pub files: u64,
    pub bytes: u64,
    pub lines: u64,
    pub elapsed_ms: u64,
    pub threads: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// The whole audit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    pub schema: String,
    pub tool: Tool,
    pub generated_at: Timestamp,
    pub policy: Policy,
    pub verdict: Verdict,
    /// Why the audit fails, one sentence each (stream reasons are summarised here).
    pub reasons: Vec<String>,
    pub streams: Vec<StreamReport>,
    pub coverage_gaps: Vec<CoverageGap>,
    /// Card numbers found (masked); at most a bounded number of locations per file.
    pub card_numbers: Vec<CardNumber>,
    pub card_summary: CardSummary,
    /// Files that are not logs: not a failing stream, listed so nothing is left out silently.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<IgnoredFile>,
    /// Paths that could not be read at all (these make the run exit 2).
    pub errors: Vec<AuditError>,
    pub stats: AuditStats,
}
