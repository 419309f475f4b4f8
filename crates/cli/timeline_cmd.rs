//! `ecir timeline` (and `ecir scan --timeline`): arguments to timeline options, choosing a
//! spill directory outside the evidence, writing the output, exit status.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ecir_formats::ParseContext;
use ecir_model::{Cidr, SourceKind};
use ecir_timeline::{timeline, OutputFormat, TimelineOptions, TimelineOutcome, TimelineWriter};

use crate::args::{TimelineArgs, TimelineFormat};
use crate::guard::overwrites_evidence;
use crate::scan_cmd::error;
use crate::time_arg::{parse_time, resolve_tz};

fn source_kind(s: &str) -> Option<SourceKind> {
    Some(match s {
        "web" => SourceKind::Web,
        "admin-login" => SourceKind::AdminLogin,
        "app" => SourceKind::App,
        "waf" => SourceKind::Waf,
        "auth" => SourceKind::Auth,
        _ => return None,
    })
}

/// Where sorted runs may be spilled: next to the output unless that is inside the evidence,
/// else the system temporary directory; never inside an input.
pub(crate) fn spill_parent(output: &str, inputs: &[PathBuf]) -> Result<PathBuf, String> {
    let roots: Vec<PathBuf> = inputs
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    let inside = |p: &Path| {
        std::fs::canonicalize(p)
            .map(|c| roots.iter().any(|r| c.starts_with(r)))
            .unwrap_or(true)
    };
    if output != "-" {
        let parent = Path::new(output)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !inside(parent) {
            return Ok(parent.to_path_buf());
        }
    }
    let tmp = std::env::temp_dir();
    if inside(&tmp) {
        return Err(format!(
            "no place for temporary files outside the evidence ({} is inside an input)",
            tmp.display()
        ));
    }
    Ok(tmp)
}

/// Runs a timeline into `dest` (`-`: stdout).
pub(crate) fn write_timeline(
    paths: &[PathBuf],
    dest: &str,
    format: OutputFormat,
    bom: bool,
    opts: &TimelineOptions,
) -> Result<TimelineOutcome, String> {
    let out: Box<dyn Write> = if dest == "-" {
        Box::new(io::stdout().lock())
    } else {
        Box::new(File::create(dest).map_err(|e| format!("{dest}: {e}"))?)
    };
    let mut w = TimelineWriter::new(
        BufWriter::with_capacity(1 << 20, out),
        format,
        Vec::new(),
        bom,
    )
    .map_err(|e| format!("{dest}: {e}"))?;
    let outcome = timeline(paths, opts, &mut w).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| format!("{dest}: {e}"))?;
    Ok(outcome)
}

/// The events findings cite, as (file, line).
pub(crate) fn cited(report: &ecir_model::Report) -> HashSet<(String, u64)> {
    report
        .findings
        .iter()
        .flat_map(|f| f.evidence.iter().map(|e| (e.file.to_string(), e.line)))
        .collect()
}

/// Output format from a file name: `.jsonl`/`.json` → jsonl, `.ndjson` → ECS, else CSV.
pub(crate) fn format_for(dest: &str) -> OutputFormat {
    let lower = dest.to_ascii_lowercase();
    if lower.ends_with(".jsonl") || lower.ends_with(".json") {
        OutputFormat::Jsonl
    } else if lower.ends_with(".ndjson") {
        OutputFormat::Ecs
    } else {
        OutputFormat::Csv
    }
}

pub fn run(a: TimelineArgs) -> u8 {
    let fail = |msg: &str, hint: Option<&str>| {
        error(msg, hint);
        2
    };
    let (tz, _) = match resolve_tz(a.tz.as_deref()) {
        Ok(v) => v,
        Err(e) => return fail(&e, None),
    };
    let mut trust = Vec::new();
    for t in &a.trust_proxy {
        match t.parse::<Cidr>() {
            Ok(c) => trust.push(c),
            Err(e) => return fail(&format!("--trust-proxy: {e}"), None),
        }
    }
    let parse = ParseContext {
        file_mtime: None,
        tz,
        trust_proxy: trust,
        year: a.year,
    };
    let since = match a.since.as_deref().map(|s| parse_time(s, &parse)) {
        Some(Err(e)) => return fail(&format!("--since: {e}"), None),
        Some(Ok(t)) => Some(t),
        None => None,
    };
    let until = match a.until.as_deref().map(|s| (s, parse_time(s, &parse))) {
        Some((_, Err(e))) => return fail(&format!("--until: {e}"), None),
        Some((s, Ok(t))) if s.trim().len() == 10 => Some(ecir_model::Timestamp::new(
            t.utc_ms + 86_400_000 - 1,
            t.offset_secs,
        )),
        Some((_, Ok(t))) => Some(t),
        None => None,
    };
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return fail(
                "--since is later than --until",
                Some("the timeline keeps events from --since to --until"),
            );
        }
    }
    let mut ips = Vec::new();
    for ip in &a.ip {
        match ip.parse::<IpAddr>() {
            Ok(v) => ips.push(v),
            Err(_) => return fail(&format!("--ip: '{ip}' is not an IP address"), None),
        }
    }
    let mut sources = Vec::new();
    for s in &a.source {
        match source_kind(s) {
            Some(k) => sources.push(k),
            None => {
                return fail(
                    &format!("--source: unknown kind '{s}'"),
                    Some("one of web, admin-login, app, waf, auth"),
                )
            }
        }
    }
    if let Some(f) = &a.log_format {
        if ecir_formats::by_name(f).is_none() {
            return fail(
                &format!("--log-format: unknown format '{f}'"),
                Some("`ecir formats` lists the formats ecir reads"),
            );
        }
    }
    if let Some(root) = crate::guard::temp_dir_in_evidence(&a.paths) {
        return fail(
            &format!(
                "{}: the temporary directory is inside this input; the timeline's sorted runs would be written into the evidence",
                root.display()
            ),
            Some("set TMPDIR to a directory outside the evidence, e.g. TMPDIR=/var/tmp"),
        );
    }
    if a.output != "-" {
        if let Some(what) = overwrites_evidence(Path::new(&a.output), &a.paths) {
            return fail(
                &format!("{}: refusing to write an output over {}", a.output, what),
                Some("write the timeline outside the evidence, e.g. -o ./case/timeline.csv"),
            );
        }
    }
    let spill_dir = match spill_parent(&a.output, &a.paths) {
        Ok(p) => p,
        Err(e) => return fail(&e, Some("set TMPDIR to a directory outside the evidence")),
    };
    let format = match a.format {
        TimelineFormat::Csv => OutputFormat::Csv,
        TimelineFormat::Jsonl => OutputFormat::Jsonl,
        TimelineFormat::Timesketch => OutputFormat::Timesketch,
        TimelineFormat::Ecs => OutputFormat::Ecs,
    };
    let opts = TimelineOptions {
        parse,
        format: a.log_format.clone(),
        since,
        until,
        ips,
        sources,
        only: None,
        exclude: (a.output != "-")
            .then(|| PathBuf::from(&a.output))
            .into_iter()
            .collect(),
        spill_dir,
        jobs: a.jobs.unwrap_or(0),
        ..Default::default()
    };
    match write_timeline(&a.paths, &a.output, format, a.bom, &opts) {
        Err(e) => fail(&e, None),
        Ok(o) => {
            let s = &o.stats;
            eprintln!(
                "ecir timeline: {} event(s) from {} file(s) ({} lines, {} skipped, {} filtered out, {} without a time, {} out-of-order file(s))",
                s.events, s.files, s.lines, s.skipped, s.filtered, s.untimed, s.out_of_order_files
            );
            for p in &o.problems {
                error(&format!("{}: {}", p.path, p.message), None);
            }
            u8::from(!o.problems.is_empty()) * 2
        }
    }
}
