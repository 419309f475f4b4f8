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
    Scan(ScanArgs),
    /// Merge every event from every input into one time-ordered export.
    Timeline(TimelineArgs),
    /// List the log formats ecir reads.
    Formats,
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

    /// Analyse only events at or after TIME (RFC 3339, or YYYY-MM-DD[ HH:MM[:SS]] in --tz).
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
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,

    /// No progress bar and no summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    /// When to use colour on the terminal (NO_COLOR is respected with `auto`).
    #[arg(long, value_enum, default_value = "auto", value_name = "WHEN")]
    pub color: ColorChoice,

    /// 404s from one IP within the burst window that count as a scan.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub burst_404: u32,

    /// Year for formats that omit it (syslog); default: from the file's modification time.
    #[arg(long, value_name = "YEAR")]
    pub year: Option<i32>,
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

    /// Only events at or after TIME (RFC 3339, or YYYY-MM-DD[ HH:MM[:SS]] in --tz).
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
    #[arg(long, value_name = "YEAR")]
    pub year: Option<i32>,

    /// Worker threads (default: one per core).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
}
