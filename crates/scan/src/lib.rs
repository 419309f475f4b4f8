//! The scan pipeline: discover inputs → read (mmap / gunzip) → detect format → parse →
//! filter by time → detectors → findings → [`Report`].
//!
//! This crate owns orchestration and parallelism: rayon across files and, for large plain
//! files, across newline-aligned (record-aligned) chunks of one file, with per-worker detector
//! states merged in input order. It returns values — a report and the per-file problems that
//! make a run exit 2 — and must not know about terminals, colours or exit codes.

mod file;
mod ordered;
mod traffic;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ecir_detect::{DetectConfig, DetectorSet, FinishContext};
use ecir_formats::ParseContext;
use ecir_input::SkipReason;
use ecir_model::report::Tool;
use ecir_model::{Cidr, Report, Severity, Stats, Timestamp, REPORT_SCHEMA};
use rayon::prelude::*;
use serde_json::Value;

pub use file::FileResult;
pub use traffic::Traffic;

/// Everything a scan needs besides the paths.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Worker threads (0: one per core).
    pub jobs: usize,
    pub parse: ParseContext,
    /// How the zone was chosen, for the report (`--tz`, `TZ`, `machine`).
    pub tz_source: String,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// `--format NAME`: skip detection.
    pub format: Option<String>,
    /// Paths this run writes; never read as input.
    pub exclude: Vec<PathBuf>,
    pub detect: DetectConfig,
    /// Plain files larger than this are split into chunks of about this size.
    pub chunk_size: usize,
    /// Tool version for the report.
    pub version: String,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            jobs: 0,
            parse: ParseContext::default(),
            tz_source: "default".into(),
            since: None,
            until: None,
            format: None,
            exclude: Vec::new(),
            detect: DetectConfig::default(),
            chunk_size: 16 << 20,
            version: "0.0.0".into(),
        }
    }
}

/// Progress counters the caller may display while the scan runs.
#[derive(Default, Debug)]
pub struct Progress {
    pub total_bytes: AtomicU64,
    pub done_bytes: AtomicU64,
    pub files_done: AtomicU64,
    pub files_total: AtomicU64,
}

/// A problem with one input (or path argument) that makes the run exit 2: also the
/// report's `errors`.
pub use ecir_model::report::RunError as Problem;

/// What a scan produced.
pub struct ScanOutput {
    pub report: Report,
    pub problems: Vec<Problem>,
    /// Files left out on purpose, with why (for `--verbose` style output).
    pub skipped_paths: Vec<(String, String)>,
    /// The warning about hidden files skipped inside the input directories (also among the
    /// report's warnings), for the command to print.
    pub hidden_warning: Option<String>,
    pub traffic: Traffic,
}

/// Errors that stop a scan before it starts.
#[derive(Debug)]
pub enum ScanError {
    UnknownFormat(String),
    ThreadPool(String),
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::UnknownFormat(n) => write!(f, "unknown format '{n}'"),
            ScanError::ThreadPool(e) => write!(f, "cannot start worker threads: {e}"),
        }
    }
}

impl std::error::Error for ScanError {}

/// Runs a scan over `roots`.
pub fn scan(
    roots: &[PathBuf],
    opts: &ScanOptions,
    progress: &Progress,
) -> Result<ScanOutput, ScanError> {
    let forced = match &opts.format {
        Some(name) => Some(
            ecir_formats::by_name(name).ok_or_else(|| ScanError::UnknownFormat(name.clone()))?,
        ),
        None => None,
    };
    let started = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs)
        .build()
        .map_err(|e| ScanError::ThreadPool(e.to_string()))?;
    let threads = pool.current_num_threads();

    let discovered = ecir_input::discover(roots, &opts.exclude);
    let mut problems: Vec<Problem> = discovered
        .errors
        .iter()
        .map(|e| Problem {
            path: ecir_input::path_text(&e.path),
            message: e.message.clone(),
            hint: e.hint.clone(),
        })
        .collect();
    progress.total_bytes.store(
        discovered.files.iter().map(|f| f.size).sum(),
        Ordering::Relaxed,
    );
    progress
        .files_total
        .store(discovered.files.len() as u64, Ordering::Relaxed);

    // Which kinds of evidence the run holds, before reading: detectors that correlate
    // sources skip work for sources that are absent.
    let mut detect = opts.detect.clone();
    detect.run_has_waf = pool.install(|| {
        discovered
            .files
            .par_iter()
            .any(|f| file::survey_source(f, forced) == Some(ecir_model::SourceKind::Waf))
    });
    let config = Arc::new(detect);
    let env = file::FileEnv {
        opts,
        forced,
        config: &config,
        progress,
    };
    // A worker hands its state from one file to the next (files in input order within its
    // run), so state is built once per run, not once per file.
    let files = Files {
        files: &discovered.files,
        env: &env,
    };
    let merged =
        pool.install(|| ordered::fold_in_order(&files, discovered.files.len(), Merged::default()));

    // The states' tables were freed in the arenas of the workers that merged them; the
    // findings are built next, on whichever worker finishes each detector.
    release_freed_heap();
    let Merged {
        inputs,
        hours,
        mut detectors,
        traffic,
    } = merged;
    for input in &inputs {
        for e in &input.errors {
            problems.push(Problem {
                path: input.path.clone(),
                message: e.clone(),
                hint: hint_for(e),
            });
        }
    }
    let ctx = FinishContext::new(traffic.distinct_ips());
    let waf_summary = detectors.as_ref().and_then(|d| d.waf_summary());
    let orders = detectors
        .as_mut()
        .map(|d| d.take_orders())
        .unwrap_or_default();
    let mut findings = match detectors {
        Some(d) => pool.install(|| d.finish(&ctx)),
        None => Vec::new(),
    };
    // The same for the detector states, freed as each detector finished.
    release_freed_heap();
    // What the logs cannot show: missing days, damaged archives, silences (ecir-audit).
    let files: Vec<ecir_audit::ScanFile<'_>> = inputs
        .iter()
        .zip(&hours)
        .zip(&discovered.files)
        .map(|((summary, hours), file)| ecir_audit::ScanFile {
            summary,
            hours,
            modified: modified_time(&file.path),
        })
        .collect();
    findings.extend(ecir_audit::log_integrity_findings(&files));
    // Correlations across detectors, before the findings are sorted and numbered.
    ecir_detect::waf::correlate_stored_xss(&mut findings);
    // Rules over all findings (storefront edits, re-injection, chains), then the window.
    let findings = ecir_detect::post::run(findings, &config);
    let exposure = ecir_detect::post::exposure(&findings, orders, &config, &ctx);
    // A botnet's many addresses: the busiest listed one by one, the rest summed per rule.
    let referenced: BTreeSet<String> = findings
        .iter()
        .flat_map(|f| f.related.iter().cloned())
        .chain(exposure.iter().flat_map(|e| e.basis.iter().cloned()))
        .collect();
    let mut findings = ecir_detect::client_cap::cap_client_findings(
        findings,
        &referenced,
        ecir_detect::client_cap::MAX_CLIENT_FINDINGS,
    );
    // Attacker text is data: what findings took from log fields is escaped once, here.
    for f in &mut findings {
        f.escape_log_text();
    }
    let detector_warnings = ctx.take_warnings();

    let mut report = Report {
        schema: REPORT_SCHEMA.into(),
        tool: Tool {
            name: "ecir".into(),
            version: opts.version.clone(),
        },
        generated_at: now(),
        options: options_map(opts, ctx.inferred_panel()),
        inputs,
        findings,
        exposure,
        warnings: Vec::new(),
        errors: Vec::new(),
        top_ips: Vec::new(),
        stats: Stats::default(),
        waf_summary,
        activity: Vec::new(),
    };
    report.sort_and_number_findings();
    if let Some(e) = &mut report.exposure {
        e.basis.sort();
    }
    report.top_ips = traffic.top_ips(&report.findings, 10);
    report.warnings = run_warnings(&report, &traffic);
    report.warnings.extend(detector_warnings);
    report.warnings.extend(skipped_warning(&discovered.skipped));
    let hidden_warning = hidden_warning(roots, &discovered.skipped);
    report.warnings.extend(hidden_warning.clone());
    report.stats = stats(&report, &traffic, started, threads);
    report.activity = activity(&report, &traffic);
    if discovered.files.is_empty() && discovered.errors.is_empty() {
        problems.push(Problem {
            path: roots
                .iter()
                .map(|r| ecir_input::path_text(r))
                .collect::<Vec<_>>()
                .join(", "),
            message: "no file to read".into(),
            hint: Some(if discovered.skipped.is_empty() {
                "name the log files or the directories that hold them".into()
            } else {
                "the report's warnings list what was skipped; hidden files and symbolic links inside a directory are not read: name them (or a link's target) directly".into()
            }),
        });
    }
    report.errors = problems.clone();
    let skipped_paths = discovered
        .skipped
        .iter()
        .map(|(p, why)| (ecir_input::path_text(p), why.to_string()))
        .collect();
    Ok(ScanOutput {
        report,
        problems,
        skipped_paths,
        hidden_warning,
        traffic,
    })
}

/// A file's modification time, as an instant shown in UTC.
fn modified_time(path: &std::path::Path) -> Option<Timestamp> {
    let t = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    Some(Timestamp::new(i64::try_from(ms).ok()?, 0))
}

/// The files of a scan, folded in input order with few states alive ([`ordered`]).
struct Files<'f> {
    files: &'f [ecir_input::InputFile],
    env: &'f file::FileEnv<'f>,
}

impl ordered::OrderedFold for Files<'_> {
    type State = Merged;

    fn fresh(&self, _at: usize) -> Merged {
        Merged::default()
    }

    fn step(&self, mut acc: Merged, files: std::ops::Range<usize>) -> Merged {
        for f in &self.files[files] {
            let carried = acc.take_state();
            let r = file::process(f, self.env, carried);
            acc.absorb(r);
        }
        acc
    }

    fn merge(&self, left: &mut Merged, right: Merged) {
        left.append(right);
    }

    fn min_offer(&self) -> usize {
        1
    }

    fn park(&self, state: &mut Merged) {
        if let Some(d) = &mut state.detectors {
            d.park();
        }
        state.traffic.park();
    }
}

/// Results of a contiguous run of files, merged in input order.
#[derive(Default)]
struct Merged {
    inputs: Vec<ecir_model::InputSummary>,
    /// Each input's dated lines per local hour, parallel to `inputs`.
    hours: Vec<BTreeMap<i64, ecir_audit::HourTally>>,
    detectors: Option<DetectorSet>,
    traffic: Traffic,
}

impl Merged {
    /// The detector and traffic state so far, to be carried into the run's next file.
    fn take_state(&mut self) -> Option<file::Carried> {
        self.detectors
            .take()
            .map(|d| (d, std::mem::take(&mut self.traffic)))
    }

    /// Adds a file's result; its state continues the state taken by [`Merged::take_state`]
    /// (or is the run's first).
    fn absorb(&mut self, r: FileResult) {
        self.inputs.push(r.summary);
        self.hours.push(r.hours);
        match &mut self.detectors {
            Some(d) => {
                d.merge(r.detectors);
                self.traffic.merge(r.traffic);
            }
            None => {
                self.detectors = Some(r.detectors);
                self.traffic = r.traffic;
            }
        }
    }

    fn append(&mut self, other: Merged) {
        self.inputs.extend(other.inputs);
        self.hours.extend(other.hours);
        match (&mut self.detectors, other.detectors) {
            (Some(d), Some(o)) => d.merge(o),
            (None, o) => self.detectors = o,
            (Some(_), None) => {}
        }
        self.traffic.merge(other.traffic);
    }
}

/// Gives the pages of freed heap memory back to the system. glibc keeps freed memory in the
/// arena of the thread that freed it, where another thread's allocations cannot reuse it;
/// once the detector states are merged, most of what the scan held is such memory.
fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas, and may be called at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn now() -> Timestamp {
    let n = chrono::Utc::now();
    Timestamp::new(n.timestamp_millis() / 1000 * 1000, 0)
}

fn options_map(
    opts: &ScanOptions,
    inferred: Option<ecir_detect::InferredPanel>,
) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    m.insert("timezone".into(), Value::from(opts.parse.tz.name()));
    m.insert(
        "timezone_source".into(),
        Value::from(opts.tz_source.clone()),
    );
    m.insert(
        "timezone_applies_to".into(),
        Value::from("timestamps written without an offset"),
    );
    if let Some(s) = opts.since {
        m.insert("since".into(), Value::from(s.to_rfc3339()));
    }
    if let Some(u) = opts.until {
        m.insert("until".into(), Value::from(u.to_rfc3339()));
    }
    if let Some(f) = &opts.format {
        m.insert("format".into(), Value::from(f.clone()));
    }
    m.insert(
        "trust_proxy".into(),
        Value::from(
            opts.parse
                .trust_proxy
                .iter()
                .map(Cidr::to_string)
                .collect::<Vec<_>>(),
        ),
    );
    let d = &opts.detect;
    // The admin panel as configured; `auto` when it is inferred from the logs (the
    // `admin.profile` finding says what was chosen and why).
    let admin = &d.admin;
    let platform = admin
        .platform
        .clone()
        .or_else(|| admin.profile.as_ref().map(|p| p.name.clone()))
        .unwrap_or_else(|| "auto".into());
    m.insert("platform".into(), Value::from(platform));
    m.insert("admin_paths".into(), Value::from(admin.admin_paths.clone()));
    // What the admin detector used where the options left it open: present only then.
    let inferred = inferred.unwrap_or_default();
    if let Some(p) = inferred.platform {
        m.insert("platform_inferred".into(), Value::from(p));
    }
    if let Some(p) = inferred.admin_paths {
        m.insert("admin_paths_inferred".into(), Value::from(p));
    }
    if !admin.allow.is_empty() {
        m.insert(
            "admin_allow".into(),
            Value::from(admin.allow.iter().map(Cidr::to_string).collect::<Vec<_>>()),
        );
    }
    m.insert(
        "thresholds".into(),
        serde_json::json!({
            "burst_404": d.burst_404,
            "burst_window_secs": d.burst_window_secs,
            "rare_script_max_ips": d.rare_script_max_ips,
            "rare_script_min_site_ips": d.rare_script_min_site_ips,
            "exposure_min_bytes": d.exposure_min_bytes,
            "drift_min_hits": d.card.drift_min_hits,
            "first_seen_min_ips": d.card.first_seen_min_ips,
            "drop_min_ips": d.card.drop_min_ips,
            "velocity_attempts": d.card.velocity_attempts,
            "velocity_window_secs": d.card.velocity_window_secs,
            "failure_ratio": d.card.failure_ratio,
            "account_burst": d.card.account_burst,
            "payment_failures": d.card.payment_failures,
            "distributed_min_ips": d.card.distributed_min_ips,
        }),
    );
    if !d.card.psp_domains.is_empty() {
        m.insert(
            "psp_domains".into(),
            Value::from(d.card.psp_domains.clone()),
        );
    }
    if let Some(t) = d.card.contained_at {
        m.insert("contained_at".into(), Value::from(t.to_rfc3339()));
    }
    if let Some(t) = d.card.cleaned_at {
        m.insert("cleaned_at".into(), Value::from(t.to_rfc3339()));
    }
    m
}

/// Paths discovery left out (other than this run's own outputs and hidden files, which
/// [`hidden_warning`] covers), for the report's warnings: the first ten named, the others
/// counted.
fn skipped_warning(skipped: &[(PathBuf, SkipReason)]) -> Option<String> {
    let listed: Vec<String> = skipped
        .iter()
        .filter(|(_, why)| !matches!(why, SkipReason::OwnOutput | SkipReason::Hidden))
        .map(|(p, why)| {
            ecir_model::text::escape_controls(
                &format!("{} ({why})", ecir_input::path_text(p)),
                usize::MAX,
            )
        })
        .collect();
    if listed.is_empty() {
        return None;
    }
    let more = listed.len().saturating_sub(10);
    Some(format!(
        "{} path(s) under the inputs were not read: {}{}",
        listed.len(),
        listed[..listed.len() - more].join("; "),
        if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        }
    ))
}

/// Hidden files and directories left out inside the input directories (by design: editor
/// backups, `.git`, `.htaccess`): one warning that counts them, names the first few (a
/// directory with a trailing `/`, relative to the root it was found under) and says how to
/// read them. Files named directly are always read, hidden or not.
fn hidden_warning(roots: &[PathBuf], skipped: &[(PathBuf, SkipReason)]) -> Option<String> {
    const NAMED: usize = 5;
    let hidden: Vec<&PathBuf> = skipped
        .iter()
        .filter(|(_, why)| *why == SkipReason::Hidden)
        .map(|(p, _)| p)
        .collect();
    if hidden.is_empty() {
        return None;
    }
    let mut under: Vec<&PathBuf> = Vec::new();
    let names: Vec<String> = hidden
        .iter()
        .map(|p| {
            let root = roots.iter().find(|r| p.starts_with(r));
            if let Some(r) = root {
                if !under.contains(&r) {
                    under.push(r);
                }
            }
            let shown = root.and_then(|r| p.strip_prefix(r).ok()).unwrap_or(p);
            let dir = std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
            format!(
                "{}{}",
                ecir_input::path_text(shown),
                if dir { "/" } else { "" }
            )
        })
        .collect();
    let more = names.len().saturating_sub(NAMED);
    let text = format!(
        "skipped {} hidden file(s) under {}: {}{}; hint: name them explicitly to scan them",
        hidden.len(),
        under
            .iter()
            .map(|r| ecir_input::path_text(r))
            .collect::<Vec<_>>()
            .join(", "),
        names[..names.len() - more].join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    );
    Some(ecir_model::text::escape_controls(&text, usize::MAX))
}

fn hint_for(error: &str) -> Option<String> {
    if error.contains("gzip check failed") {
        Some("the lines read were analysed, the corrupted member's among them: check findings citing this archive against an intact copy, and keep the damaged one as evidence".into())
    } else if error.contains("gzip") {
        Some("the lines before the damage were analysed; ask for an intact copy of this archive, and keep the damaged one as evidence".into())
    } else if error.contains("does not read") {
        Some("decompress it to a separate folder and scan that".into())
    } else if error.contains("permission denied") {
        Some("run ecir as a user that can read the evidence (read access is enough)".into())
    } else {
        None
    }
}

fn run_warnings(report: &Report, traffic: &Traffic) -> Vec<String> {
    let mut w = Vec::new();
    let unknown: Vec<&str> = report
        .inputs
        .iter()
        .filter(|i| i.format == "unknown" && i.lines > 0)
        .map(|i| i.path.as_str())
        .collect();
    if !unknown.is_empty() {
        w.push(format!(
            "{} file(s) in a format ecir does not recognise were counted but not analysed (e.g. {}); `ecir formats` lists what it reads, `--format NAME` forces one",
            unknown.len(),
            unknown[0]
        ));
    }
    if let Some(msg) = traffic.proxy_warning() {
        w.push(msg);
    }
    w.extend(traffic.spill_warnings());
    if report.inputs.iter().any(|i| i.source == "web") {
        w.push("Access logs hold no request bodies and nothing the visitor's browser did: skimmer code sending card data to another domain is invisible here and cannot be ruled out from these logs.".into());
    }
    w
}

fn stats(report: &Report, traffic: &Traffic, started: Instant, threads: usize) -> Stats {
    let mut cited = std::collections::BTreeSet::new();
    for f in &report.findings {
        for e in &f.evidence {
            cited.insert((e.file.clone(), e.line));
        }
    }
    let sum = |g: fn(&ecir_model::InputSummary) -> u64| report.inputs.iter().map(g).sum::<u64>();
    Stats {
        bytes: sum(|i| i.bytes_read),
        lines: sum(|i| i.lines),
        parsed: sum(|i| i.parsed),
        skipped: sum(|i| i.skipped),
        events_analyzed: traffic.events,
        events_cited: cited.len() as u64,
        elapsed_ms: started.elapsed().as_millis() as u64,
        threads,
    }
}

/// Per-hour event counts per source, shown in the offset of the earliest input (UTC if none).
fn activity(report: &Report, traffic: &Traffic) -> Vec<ecir_model::ActivityBucket> {
    let offset = report
        .inputs
        .iter()
        .filter_map(|i| i.first_ts)
        .min()
        .map_or(0, |t| t.offset_secs);
    traffic
        .per_hour
        .iter()
        .map(|((source, hour), n)| ecir_model::ActivityBucket {
            source: source.as_str().into(),
            hour: Timestamp::from_secs(hour * 3600, offset),
            events: *n,
        })
        .collect()
}

/// Exit-status helper for callers: findings at or above `min`.
pub fn has_findings_at_or_above(report: &Report, min: Severity) -> bool {
    report.count_at_or_above(min) > 0
}
