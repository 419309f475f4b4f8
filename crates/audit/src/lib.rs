//! Log-retention audit and evidence manifest (`ecir audit`, `ecir manifest`).
//!
//! This crate owns: grouping files into streams (one log written over time and rotated),
//! each stream's coverage (first/last timestamp, lines per day) and defects (missing days,
//! silences against the stream's rhythm, damaged archives, empty and duplicate files,
//! overlapping or backwards file ranges, timestamps going backwards or into the future), the
//! verdict against a retention policy, coverage gaps across streams, card numbers in logs,
//! the `ecir.audit/1` document and its HTML calendar view, the chain-of-custody manifest, and
//! the `log-integrity` findings `ecir scan` adds from its own inputs.
//!
//! It reads evidence through `ecir-input` (read-only, without touching access times where the
//! OS allows) and times lines through `ecir-formats`; it returns values and typed errors and
//! knows nothing of terminals or exit codes.

pub mod analyze;
pub mod card;
pub mod doc;
pub mod facts;
pub mod html;
pub mod manifest;
pub mod naming;
pub mod scan_findings;

use std::path::PathBuf;
use std::time::Instant;

use chrono::NaiveDate;
use ecir_formats::ParseContext;
use ecir_model::Timestamp;
use rayon::prelude::*;

pub use analyze::PolicyInput;
pub use doc::*;
pub use facts::{read_file, FileFacts, ReadOptions};
pub use scan_findings::{log_integrity_findings, HourTally, ScanFile, RULES};

/// How far after the real current time a line may be dated before it counts as in the
/// future (clocks of the server and of the analyst's machine differ a little).
pub const FUTURE_SLACK_MS: i64 = 60 * 60 * 1000;

/// Everything an audit needs besides the paths.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    pub retention_days: u32,
    pub online_days: u32,
    pub online_uncompressed: bool,
    /// The audit date, in `parse.tz`.
    pub as_of_date: NaiveDate,
    /// End of the audit (end of the audit date, or now): lines dated later are outside the
    /// audit and only counted.
    pub as_of_instant: Timestamp,
    /// The real current time: lines dated more than [`FUTURE_SLACK_MS`] after it are in the
    /// future, a clock or tampering concern that fails the audit.
    pub now: Timestamp,
    /// Where the zone of `parse.tz` came from (`--tz`, `machine zone`, …), for the document.
    pub tz_source: String,
    pub parse: ParseContext,
    /// Worker threads (0: one per core).
    pub jobs: usize,
    /// Paths this run writes; never read as input.
    pub exclude: Vec<PathBuf>,
    pub version: String,
    /// Search for card numbers.
    pub cards: bool,
}

/// Errors that stop an audit before it starts.
#[derive(Debug)]
pub enum Error {
    ThreadPool(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::ThreadPool(e) => write!(f, "cannot start worker threads: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// What could not be read: files discovery could not list, then files that could not be
/// opened.
pub(crate) fn read_errors(
    discovered: &ecir_input::Discovered,
    facts: &[FileFacts],
) -> Vec<AuditError> {
    let listed = discovered.errors.iter().map(|e| AuditError {
        path: ecir_input::path_text(&e.path),
        message: e.message.clone(),
    });
    let unreadable = facts.iter().filter_map(|f| {
        f.unreadable.as_ref().map(|u| AuditError {
            path: f.path.clone(),
            message: format!("cannot read: {u}"),
        })
    });
    listed.chain(unreadable).collect()
}

/// Reads every file under `roots` once (in parallel) and audits the streams they form.
pub fn audit(roots: &[PathBuf], opts: &AuditOptions) -> Result<AuditReport, Error> {
    let started = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs)
        .build()
        .map_err(|e| Error::ThreadPool(e.to_string()))?;
    let threads = pool.current_num_threads();
    let discovered = ecir_input::discover(roots, &opts.exclude);
    let read = ReadOptions {
        parse: opts.parse.clone(),
        after_as_of: Some(opts.as_of_instant),
        future_after: Some(Timestamp::new(
            opts.now.utc_ms.saturating_add(FUTURE_SLACK_MS),
            opts.now.offset_secs,
        )),
        cards: opts.cards,
        content_hash: true,
    };
    let facts: Vec<FileFacts> = pool.install(|| {
        discovered
            .files
            .par_iter()
            .map(|f| read_file(&f.path, &f.display(), &read))
            .collect()
    });
    let errors = read_errors(&discovered, &facts);
    let mut report = assemble(&facts, opts, errors);
    if report.streams.is_empty() {
        let roots: Vec<String> = roots.iter().map(|r| ecir_input::path_text(r)).collect();
        let why = if report.ignored.is_empty() {
            format!(
                "No log file was found under {}, so no retention can be shown.",
                roots.join(", ")
            )
        } else {
            format!(
                "No log file was found under {} (only {} file(s) that are not logs), so no retention can be shown.",
                roots.join(", "),
                report.ignored.len()
            )
        };
        if let Some(first) = report.reasons.first_mut() {
            *first = why;
        }
    }
    report.stats = AuditStats {
        files: facts.len() as u64,
        bytes: facts.iter().map(|f| f.bytes_read).sum(),
        lines: facts.iter().map(|f| f.lines).sum(),
        elapsed_ms: started.elapsed().as_millis() as u64,
        threads,
    };
    Ok(report)
}

/// Builds the audit document from per-file facts (in any order; the result does not depend
/// on it).
pub fn assemble(facts: &[FileFacts], opts: &AuditOptions, errors: Vec<AuditError>) -> AuditReport {
    let policy = PolicyInput {
        retention_days: opts.retention_days,
        online_days: opts.online_days,
        online_uncompressed: opts.online_uncompressed,
        as_of_date: opts.as_of_date,
        as_of_instant: opts.as_of_instant,
    };
    let streams = analyze::build_streams(facts, &policy);
    let as_of_day = analyze::date_to_day(opts.as_of_date);
    let window = (
        as_of_day - i64::from(opts.retention_days.max(1)) + 1,
        as_of_day,
    );
    let coverage_gaps = analyze::coverage_gaps(&streams, window);
    let mut sorted: Vec<&FileFacts> = facts.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut card_numbers = Vec::new();
    let mut card_summary = CardSummary { total: 0, files: 0 };
    for f in &sorted {
        if f.cards_total > 0 {
            card_summary.total += f.cards_total;
            card_summary.files += 1;
        }
        for c in &f.cards {
            card_numbers.push(CardNumber {
                file: f.path.clone(),
                line: c.line,
                masked: c.masked.clone(),
                brand: c.brand.into(),
                context: c.context.into(),
            });
        }
    }
    let streams: Vec<StreamReport> = streams.into_iter().map(|s| s.report).collect();
    let mut reasons = Vec::new();
    if streams.is_empty() {
        reasons.push("No log file was found, so no retention can be shown.".to_string());
    }
    for s in &streams {
        for r in &s.reasons {
            reasons.push(format!("{}: {r}", s.name));
        }
    }
    if card_summary.total > 0 {
        reasons.push(format!(
            "{} card number(s) in {} file(s): logs must not keep card data (JCA guideline, PCI DSS 3.2); treat this as an incident and remove them from the live logs after preserving evidence.",
            card_summary.total, card_summary.files
        ));
    }
    AuditReport {
        schema: AUDIT_SCHEMA.into(),
        tool: Tool {
            name: "ecir".into(),
            version: opts.version.clone(),
        },
        generated_at: now(),
        policy: Policy {
            retention_days: opts.retention_days,
            online_days: opts.online_days,
            online_uncompressed: opts.online_uncompressed,
            as_of: opts.as_of_date.to_string(),
            as_of_instant: opts.as_of_instant,
            timezone: opts.parse.tz.name().to_string(),
            timezone_source: opts.tz_source.clone(),
        },
        verdict: if reasons.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        reasons,
        streams,
        coverage_gaps,
        card_numbers,
        card_summary,
        ignored: sorted
            .iter()
            .filter_map(|f| {
                Some(IgnoredFile {
                    path: f.path.clone(),
                    sha256: f.sha256.clone(),
                    reason: f.not_log.clone()?,
                })
            })
            .collect(),
        errors,
        stats: AuditStats::default(),
    }
}

fn now() -> Timestamp {
    let n = chrono::Utc::now();
    Timestamp::new(n.timestamp_millis() / 1000 * 1000, 0)
}
