//! Command-line definitions (clap). Only shapes and help texts live here; behaviour is in the
//! command modules.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "ecir",
    version,
    about = "Incident response for self-hosted e-commerce shops: find card skimming and admin compromise in web, admin-login and WAF logs",
    after_help = "Exit status: 0 no finding at or above --fail-on, 1 findings at or above it, 2 an error (bad usage, unreadable input, damaged archive)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyse log files and directories and report findings.
    Scan(Box<ScanArgs>),
    /// Merge every event from every input into one time-ordered export.
    Timeline(TimelineArgs),
    /// List the log formats ecir reads.
    Formats,
    /// List the detection rules and their detector groups.
    Rules,
    /// Incident-response playbooks: list, show, lint, export, import.
    #[command(subcommand)]
    Playbook(crate::playbook_cmd::PlaybookCommand),
    /// Run a case: guided steps, deadlines, a tamper-evident journal.
    #[command(subcommand)]
    Case(crate::playbook_cmd::CaseCommand),
    /// Check that the logs an investigation would need exist, are complete and intact.
    #[command(
        after_help = "Exit status: 0 policy met, 1 policy not met (a stream fails, or card numbers were found), 2 an error (bad usage, unreadable path, cannot write an output)."
    )]
    Audit(AuditArgs),
    /// Chain-of-custody record of evidence files: create it, or verify files against it.
    #[command(subcommand)]
    Manifest(ManifestCommand),
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Log files and directories (searched recursively; hidden files are skipped).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Span the logs must cover, ending at --as-of (e.g. 365d, 52w, 1y).
    #[arg(long, default_value = "365d", value_name = "DURATION")]
    pub retention: String,

    /// Most recent span that must be immediately available (e.g. 90d).
    #[arg(long, default_value = "90d", value_name = "DURATION")]
    pub online: String,

    /// Require the --online days to be readable without decompression.
    #[arg(long)]
    pub online_uncompressed: bool,

    /// Audit date (YYYY-MM-DD in --tz, or RFC 3339); default: now.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,

    /// Zone for the audit date and for timestamps written without an offset.
    /// Default: $TZ, else the machine's zone.
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,

    /// Write the audit (ecir.audit/1) as JSON to FILE, or `-` for stdout.
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,

    /// Write a self-contained HTML page with a calendar heat map per stream.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Worker threads (default: one per core).
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,

    /// No summary on stdout.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum ManifestCommand {
    /// Hash and record every file under PATH... (size, mtime, SHA-256, format, first/last time),
    /// hidden files included; what is left out (links, pipes, devices) is listed.
    #[command(
        after_help = "Exit status: 0 written, 2 an error (unreadable path, cannot write FILE; a FILE that cannot be written completely is not left behind)."
    )]
    Create(ManifestCreateArgs),
    /// Re-hash the files of a manifest; report modified, missing and added files.
    #[command(
        after_help = "Exit status: 0 every file matches, 1 files modified, missing or added, 2 an error."
    )]
    Verify(ManifestVerifyArgs),
}

#[derive(Args, Debug)]
pub struct ManifestCreateArgs {
    /// Evidence files and directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Where to write the manifest (JSON, ecir.manifest/1), or `-` for stdout.
    #[arg(short = 'o', long = "output", required = true, value_name = "FILE")]
    pub output: String,

    /// Leave out hidden files and directories (names starting with `.`) inside the PATH
    /// directories; each is listed on stderr and under `omitted` in the manifest.
    #[arg(long)]
    pub skip_hidden: bool,

    /// Zone for timestamps written without an offset.
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,

    /// Worker threads (default: one per core).
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
}

#[derive(Args, Debug)]
pub struct ManifestVerifyArgs {
    /// A manifest written by `ecir manifest create`.
    #[arg(value_name = "FILE")]
    pub manifest: PathBuf,

    /// Also write the result as JSON to FILE, or `-` for stdout.
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,

    /// Worker threads (default: one per core).
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum FailOn {
    Info,
    Low,
    Medium,
    High,
    Critical,
    /// Never exit 1 for findings.
    Never,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum LangChoice {
    En,
    Ja,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Log files and directories (searched recursively; hidden files are skipped).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Force a format for every input instead of detecting it (see `ecir formats`).
    #[arg(long, value_name = "NAME")]
    pub format: Option<String>,

    /// Zone for timestamps written without an offset (IANA name, e.g. Asia/Tokyo).
    /// Default: $TZ, else the machine's zone.
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,

    /// Analyse only events at or after TIME (RFC 3339, or `YYYY-MM-DD[ HH:MM[:SS]]` in --tz).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Analyse only events at or before TIME.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// A proxy or load balancer whose X-Forwarded-For is believed (repeatable).
    #[arg(long = "trust-proxy", value_name = "CIDR")]
    pub trust_proxy: Vec<String>,

    /// Write the full report (ecir.report/1) as JSON to FILE, or `-` for stdout.
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,

    /// Write one finding per line (JSON) to FILE, or `-` for stdout.
    #[arg(long, value_name = "FILE")]
    pub ndjson: Option<String>,

    /// Write a self-contained HTML incident report to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<String>,

    /// Write the timeline of the events cited by findings to FILE (CSV; see `ecir timeline`).
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<String>,

    /// Language of the HTML report labels (default: from LANG).
    #[arg(long, value_enum, value_name = "LANG")]
    pub lang: Option<LangChoice>,

    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, value_enum, default_value = "high", value_name = "SEVERITY")]
    pub fail_on: FailOn,

    /// Worker threads (default: one per core).
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,

    /// No progress bar. The summary still goes to stdout, unless stdout carries a report
    /// (`--json -` and the like): then it would go to stderr, and --quiet drops it.
    #[arg(short, long)]
    pub quiet: bool,

    /// When to use colour on the terminal (NO_COLOR is respected with `auto`).
    #[arg(long, value_enum, default_value = "auto", value_name = "WHEN")]
    pub color: ColorChoice,

    /// 404s from one IP within the burst window that count as a scan.
    #[arg(long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub burst_404: u32,

    /// Year for formats that omit it (syslog); default: from the file's modification time.
    #[arg(long, value_name = "YEAR", value_parser = clap::value_parser!(i32).range(1970..=9999))]
    pub year: Option<i32>,

    /// Attach the report to a case directory (see `ecir case`): journals its SHA-256 and
    /// sets the case variables the findings establish.
    #[arg(long, value_name = "DIR")]
    pub case: Option<PathBuf>,

    /// Split plain files larger than this many bytes into parallel chunks (testing aid).
    #[arg(long, hide = true, default_value_t = 16 << 20, value_name = "BYTES")]
    pub chunk_size: usize,

    /// Shop platform whose admin panel to analyse: eccube4, eccube3, eccube2, magento2,
    /// wordpress, prestashop, generic. Default: inferred from the logs.
    #[arg(long, value_name = "NAME")]
    pub platform: Option<String>,

    /// Admin path prefix, e.g. /mgr_x9k2 (repeatable). Default: inferred from login POSTs.
    #[arg(long = "admin-path", value_name = "PREFIX")]
    pub admin_path: Vec<String>,

    /// A platform profile (JSON) to use instead of, or besides, the bundled ones.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,

    /// A network staff use for the admin panel (repeatable); admin use from elsewhere is high.
    #[arg(long = "admin-allow", value_name = "CIDR")]
    pub admin_allow: Vec<String>,

    /// Staff working hours in --tz, e.g. 09:00-19:00; admin activity outside them is flagged.
    #[arg(long = "business-hours", value_name = "HH:MM-HH:MM")]
    pub business_hours: Option<String>,

    /// A payment provider's domain customers may return from to the order-completion page
    /// (repeatable; subdomains included), e.g. --psp-domain paypal.com.
    #[arg(long = "psp-domain", value_name = "DOMAIN")]
    pub psp_domain: Vec<String>,

    /// When the skimmer was removed or the site taken offline: the end of the exposure window
    /// (default: the end of the logs).
    #[arg(long = "contained-at", value_name = "TIME")]
    pub contained_at: Option<String>,

    /// When the shop was cleaned: storefront edits or changed files after it are re-injection.
    #[arg(long = "cleaned-at", value_name = "TIME")]
    pub cleaned_at: Option<String>,

    /// 200 responses of one size that make a stable size of a JS/CSS file (asset drift).
    #[arg(long = "drift-min-hits", default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub drift_min_hits: u32,

    /// Distinct customer IPs a newly seen script must be loaded by.
    #[arg(long = "first-seen-min-ips", default_value_t = 20, value_name = "N", value_parser = parse_at_least_one)]
    pub first_seen_min_ips: usize,

    /// Distinct customer IPs that make a same-origin drop or image beacon.
    #[arg(long = "drop-min-ips", default_value_t = 3, value_name = "N", value_parser = parse_at_least_one)]
    pub drop_min_ips: usize,

    /// Checkout submissions from one IP within --velocity-window that make card testing.
    #[arg(long = "velocity-attempts", default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub velocity_attempts: u32,

    /// Window for checkout velocity and account bursts, minutes.
    #[arg(long = "velocity-window", default_value_t = 30, value_name = "MINUTES", value_parser = clap::value_parser!(i64).range(1..=10_080))]
    pub velocity_window: i64,

    /// Share of failed checkout submissions (error page, 429) that makes card testing.
    #[arg(long = "failure-ratio", default_value_t = 0.8, value_name = "RATIO", value_parser = parse_ratio)]
    pub failure_ratio: f64,

    /// Accounts created by one IP within --velocity-window that make a burst.
    #[arg(long = "account-burst", default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub account_burst: u32,

    /// Payment failures an application log records for one IP within --velocity-window that
    /// make card testing.
    #[arg(long = "payment-failures", default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub payment_failures: u32,

    /// Distinct IPs failing payment within 10 minutes that make distributed card testing.
    #[arg(long = "distributed-min-ips", default_value_t = 10, value_name = "N", value_parser = parse_at_least_one)]
    pub distributed_min_ips: usize,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum TimelineFormat {
    /// Spreadsheet-safe CSV (formula-like cells prefixed with ').
    Csv,
    /// One JSON object per event, ecir field names.
    Jsonl,
    /// Timesketch JSONL (message, datetime, timestamp_desc plus ecir fields).
    Timesketch,
    /// Elastic Common Schema NDJSON for Elasticsearch / OpenSearch bulk loading.
    Ecs,
}

#[derive(Args, Debug)]
pub struct TimelineArgs {
    /// Log files and directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Output file (`-` for stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: String,

    /// Output format.
    #[arg(long, value_enum, default_value = "csv", value_name = "FORMAT")]
    pub format: TimelineFormat,

    /// Start a CSV with a UTF-8 byte-order mark (for Excel).
    #[arg(long)]
    pub bom: bool,

    /// Only events at or after TIME (RFC 3339, or `YYYY-MM-DD[ HH:MM[:SS]]` in --tz).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only events at or before TIME.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Only events from this client IP (repeatable).
    #[arg(long, value_name = "IP")]
    pub ip: Vec<String>,

    /// Only events from this source kind: web, admin-login, app, waf, auth (repeatable).
    #[arg(long, value_name = "KIND")]
    pub source: Vec<String>,

    /// Force an input format instead of detecting it (see `ecir formats`).
    #[arg(long = "log-format", value_name = "NAME")]
    pub log_format: Option<String>,

    /// Zone for timestamps written without an offset. Default: $TZ, else the machine's zone.
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,

    /// A proxy or load balancer whose X-Forwarded-For is believed (repeatable).
    #[arg(long = "trust-proxy", value_name = "CIDR")]
    pub trust_proxy: Vec<String>,

    /// Year for formats that omit it (syslog).
    #[arg(long, value_name = "YEAR", value_parser = clap::value_parser!(i32).range(1970..=9999))]
    pub year: Option<i32>,

    /// Worker threads (default: one per core).
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
}

/// Most worker threads `-j` accepts: far beyond any useful count (the work is bounded by
/// cores and disks), low enough that a typo does not start a hundred thousand threads.
pub const MAX_JOBS: usize = 256;

/// `-j N`: 1 to [`MAX_JOBS`].
fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_JOBS).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a number of worker threads from 1 to {MAX_JOBS}"
        )),
    }
}

/// A share from 0 to 1.
fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("expected a share from 0 to 1, e.g. 0.8".into()),
    }
}

/// A count of at least 1 (a threshold of 0 would make every request a finding).
fn parse_at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of at least 1".into()),
    }
}
