//! `ecir scan`: turn arguments into scan options, run the scan, write the views, pick the
//! exit status.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ecir_formats::ParseContext;
use ecir_model::{Cidr, Severity};
use ecir_report::{render_html, render_summary, write_json, write_ndjson, Lang, Painter, Plain};
use ecir_scan::{scan, Progress, ScanOptions};

use crate::args::{FailOn, LangChoice, ScanArgs};
use crate::term;
use crate::time_arg::{parse_time, resolve_tz};

/// Prints a one-line error with an optional hint, on stderr.
pub fn error(what: &str, hint: Option<&str>) {
    let what = ecir_model::text::escape_controls(what, 2000);
    eprintln!("ecir: error: {what}");
    if let Some(h) = hint {
        eprintln!("  hint: {h}");
    }
}

fn usage(msg: &str) -> u8 {
    error(msg, None);
    2
}

pub fn run(a: ScanArgs) -> u8 {
    let (tz, tz_source) = match resolve_tz(a.tz.as_deref()) {
        Ok(v) => v,
        Err(e) => return usage(&e),
    };
    let mut trust = Vec::new();
    for t in &a.trust_proxy {
        match t.parse::<Cidr>() {
            Ok(c) => trust.push(c),
            Err(e) => return usage(&format!("--trust-proxy: {e}")),
        }
    }
    let parse = ParseContext {
        tz,
        trust_proxy: trust,
        year: a.year,
        file_mtime: None,
    };
    let since = match a.since.as_deref().map(|s| parse_time(s, &parse)) {
        Some(Err(e)) => return usage(&format!("--since: {e}")),
        Some(Ok(t)) => Some(t),
        None => None,
    };
    let until = match a.until.as_deref().map(|s| (s, parse_time(s, &parse))) {
        Some((_, Err(e))) => return usage(&format!("--until: {e}")),
        // A bare date means the whole day.
        Some((s, Ok(t))) if s.trim().len() == 10 => Some(ecir_model::Timestamp::new(
            t.utc_ms + 86_400_000 - 1,
            t.offset_secs,
        )),
        Some((_, Ok(t))) => Some(t),
        None => None,
    };
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return usage("--since is later than --until");
        }
    }
    if let Some(f) = &a.format {
        if ecir_formats::by_name(f).is_none() {
            error(
                &format!("--format: unknown format '{f}'"),
                Some("`ecir formats` lists the formats ecir reads"),
            );
            return 2;
        }
    }
    // Outputs must never overwrite evidence (nor one another).
    let outputs: Vec<PathBuf> = [&a.json, &a.ndjson, &a.html, &a.timeline]
        .into_iter()
        .flatten()
        .filter(|p| p.as_str() != "-")
        .map(PathBuf::from)
        .collect();
    let mut distinct: Vec<PathBuf> = outputs
        .iter()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
        .collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() < outputs.len() {
        return usage("two outputs name the same file: give each of --json, --ndjson, --html and --timeline its own");
    }
    if let Some(root) = crate::guard::temp_dir_in_evidence(&a.paths) {
        error(
            &format!(
                "{}: the temporary directory is inside this input; state spilled during the run would be written into the evidence",
                root.display()
            ),
            Some("set TMPDIR to a directory outside the evidence, e.g. TMPDIR=/var/tmp"),
        );
        return 2;
    }
    let case_in = a
        .case
        .as_ref()
        .and_then(|c| Some((c, crate::guard::case_in_evidence(c, &a.paths)?)));
    if let Some((case, input)) = case_in {
        error(
            &format!(
                "{}: the case directory is inside the input {}; the scan would read the case's journal and evidence copies as logs, and attaching the report would write into the evidence",
                case.display(),
                input.display()
            ),
            Some("keep the case outside the evidence, e.g. ecir case new ./case ... next to the log directory, not in it"),
        );
        return 2;
    }
    for out in &outputs {
        if let Some(what) = crate::guard::overwrites_evidence(out, &a.paths) {
            error(
                &format!(
                    "{}: refusing to write an output over {}",
                    out.display(),
                    what
                ),
                Some("write reports outside the evidence, e.g. --json ./case/report.json"),
            );
            return 2;
        }
    }
    if [&a.json, &a.ndjson, &a.html, &a.timeline]
        .iter()
        .filter(|o| o.as_deref() == Some("-"))
        .count()
        > 1
    {
        return usage("only one of --json, --ndjson, --html, --timeline can write to stdout (-)");
    }

    let profile = match a.profile.as_deref().map(read_profile).transpose() {
        Ok(p) => p,
        Err((msg, hint)) => {
            error(&msg, hint);
            return 2;
        }
    };
    let admin = match admin_config(&a, tz, profile) {
        Ok(c) => c,
        Err(msg) => return usage(&msg),
    };
    let mut card_times = [None, None];
    for (i, (name, v)) in [
        ("--contained-at", &a.contained_at),
        ("--cleaned-at", &a.cleaned_at),
    ]
    .into_iter()
    .enumerate()
    {
        match v.as_deref().map(|s| parse_time(s, &parse)) {
            Some(Err(e)) => return usage(&format!("{name}: {e}")),
            Some(Ok(t)) => card_times[i] = Some(t),
            None => {}
        }
    }
    if !(0.0..=1.0).contains(&a.failure_ratio) {
        return usage("--failure-ratio must be between 0 and 1");
    }
    let card = ecir_detect::card::CardConfig {
        psp_domains: a
            .psp_domain
            .iter()
            .map(|d| d.trim().trim_start_matches('.').to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect(),
        contained_at: card_times[0],
        cleaned_at: card_times[1],
        drift_min_hits: a.drift_min_hits.max(1),
        first_seen_min_ips: a.first_seen_min_ips.max(1),
        drop_min_ips: a.drop_min_ips.max(1),
        velocity_attempts: a.velocity_attempts.max(1),
        velocity_window_secs: a.velocity_window.max(1) * 60,
        failure_ratio: a.failure_ratio,
        account_burst: a.account_burst.max(1),
        payment_failures: a.payment_failures.max(1),
        distributed_min_ips: a.distributed_min_ips.max(2),
        ..Default::default()
    };
    let opts = ScanOptions {
        jobs: a.jobs.unwrap_or(0),
        parse,
        tz_source,
        since,
        until,
        format: a.format.clone(),
        exclude: outputs.clone(),
        detect: ecir_detect::DetectConfig {
            burst_404: a.burst_404,
            admin,
            card,
            ..Default::default()
        },
        version: env!("CARGO_PKG_VERSION").into(),
        chunk_size: a.chunk_size,
    };
    let progress = Arc::new(Progress::default());
    let bar = term::Bar::start(progress.clone(), !a.quiet);
    let result = scan(&a.paths, &opts, &progress);
    bar.finish();
    let out = match result {
        Ok(o) => o,
        Err(e) => return usage(&e.to_string()),
    };
    // Skipped by design, never silently: one line, also among the report's warnings.
    if let Some(w) = &out.hidden_warning {
        eprintln!("ecir: warning: {w}");
    }

    // The summary is data on stdout, unless stdout already carries a machine-readable view.
    // It is built beside the report writers (both only read the report) and printed after.
    let stdout_taken = [&a.json, &a.ndjson, &a.html, &a.timeline]
        .iter()
        .any(|o| o.as_deref() == Some("-"));
    let want_summary = !stdout_taken || !a.quiet;
    let to_tty = if stdout_taken {
        io::stderr().is_terminal()
    } else {
        io::stdout().is_terminal()
    };
    let color = term::use_color(a.color, to_tty);
    let report = &out.report;
    std::thread::scope(|scope| {
        let summary = scope.spawn(move || {
            want_summary.then(|| {
                let painter: &dyn Painter = if color { &term::Ansi } else { &Plain };
                render_summary(report, painter, term::width())
            })
        });
        let write_failed = write_outputs(&a, &out, &opts, since, until, &outputs);
        let text = summary
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let mut write_failed = write_failed;
        if let Some(text) = text {
            if stdout_taken {
                eprint!("{text}");
            } else if let Err(e) = term::write_stdout(&text) {
                error(&format!("cannot write the summary to stdout: {e}"), None);
                write_failed = true;
            }
        }
        finish(&a, &out, write_failed)
    })
}

/// Writes the report views the user asked for; whether one failed (each failure is printed).
fn write_outputs(
    a: &ScanArgs,
    out: &ecir_scan::ScanOutput,
    opts: &ScanOptions,
    since: Option<ecir_model::Timestamp>,
    until: Option<ecir_model::Timestamp>,
    outputs: &[PathBuf],
) -> bool {
    let mut write_failed = false;
    if let Some(dest) = &a.json {
        if let Err(e) = write_to(dest, |w| write_json(&out.report, w)) {
            error(&format!("{dest}: cannot write the JSON report: {e}"), None);
            write_failed = true;
        }
    }
    if let Some(dest) = &a.ndjson {
        if let Err(e) = write_to(dest, |w| write_ndjson(&out.report, w)) {
            error(&format!("{dest}: cannot write NDJSON: {e}"), None);
            write_failed = true;
        }
    }

    if let Some(case_dir) = &a.case {
        let mut json = Vec::new();
        let attached = write_json(&out.report, &mut json)
            .map_err(|e| (e.to_string(), None))
            .and_then(|_| {
                ecir_playbook::attach_report(case_dir, &json, &ecir_playbook::os_user(), None)
                    .map_err(|e| (e.to_string(), e.hint()))
            })
            .map(|rec| crate::playbook_cmd::report_var_notes(&rec));
        if let Err((e, hint)) = attached {
            error(
                &format!("{}: cannot attach the report to the case: {e}", case_dir.display()),
                Some(hint.unwrap_or(
                    "create the case first with `ecir case new DIR --playbook ID --discovered TIME`",
                )),
            );
            write_failed = true;
        }
    }

    if let Some(dest) = &a.html {
        let lang = match a.lang {
            Some(LangChoice::Ja) => Lang::Ja,
            Some(LangChoice::En) => Lang::En,
            None => Lang::from_locale(&locale()),
        };
        let page = render_html(&out.report, lang);
        if let Err(e) = write_to(dest, |w| w.write_all(page.as_bytes())) {
            error(&format!("{dest}: cannot write the HTML report: {e}"), None);
            write_failed = true;
        }
    }

    if let Some(dest) = &a.timeline {
        let opts = ecir_timeline::TimelineOptions {
            parse: opts.parse.clone(),
            format: a.format.clone(),
            since,
            until,
            only: Some(crate::timeline_cmd::cited(&out.report)),
            exclude: outputs.to_vec(),
            jobs: opts.jobs,
            ..Default::default()
        };
        let result = crate::timeline_cmd::spill_parent(dest, &a.paths).and_then(|spill_dir| {
            let opts = ecir_timeline::TimelineOptions { spill_dir, ..opts };
            let format = crate::timeline_cmd::format_for(dest);
            crate::timeline_cmd::write_timeline(&a.paths, dest, format, false, &opts)
        });
        if let Err(e) = result {
            error(&format!("{dest}: cannot write the timeline: {e}"), None);
            write_failed = true;
        }
    }
    write_failed
}

/// Prints the inputs' problems and gives the exit status.
fn finish(a: &ScanArgs, out: &ecir_scan::ScanOutput, write_failed: bool) -> u8 {
    for p in &out.problems {
        error(&format!("{}: {}", p.path, p.message), p.hint.as_deref());
    }
    if !out.problems.is_empty() || write_failed {
        return 2;
    }
    let threshold = match a.fail_on {
        FailOn::Never => return 0,
        FailOn::Info => Severity::Info,
        FailOn::Low => Severity::Low,
        FailOn::Medium => Severity::Medium,
        FailOn::High => Severity::High,
        FailOn::Critical => Severity::Critical,
    };
    u8::from(out.report.count_at_or_above(threshold) > 0)
}

pub(crate) fn write_to(
    dest: &str,
    f: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    if dest == "-" {
        // Stdout is line-buffered: without a buffer of its own, pretty JSON would cost a
        // write per line.
        let mut w = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
        f(&mut w)?;
        w.flush()
    } else {
        let mut w = BufWriter::new(File::create(dest)?);
        f(&mut w)?;
        w.flush()
    }
}

/// Writes `dest` whole or not at all: into a new temporary file beside it, renamed over
/// `dest` once written and flushed to disk. On an error the temporary file is removed and
/// `dest` is as it was (absent, or the earlier file), so a failed write never leaves an
/// empty or cut-off document behind. A `dest` that exists and is not a regular file (a
/// pipe, `/dev/stdout`) is written directly: it cannot be replaced, and holds no file to
/// leave behind.
pub(crate) fn write_replacing(
    dest: &Path,
    f: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    if std::fs::metadata(dest).is_ok_and(|m| !m.is_file()) {
        let mut w = BufWriter::new(std::fs::OpenOptions::new().write(true).open(dest)?);
        f(&mut w)?;
        return w.flush();
    }
    let name = dest
        .file_name()
        .ok_or_else(|| io::Error::other("not a file name"))?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".ecir-tmp-{}", std::process::id()));
    let tmp = parent.join(tmp_name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    let result = (|| {
        let mut w = BufWriter::new(file);
        f(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The platform profile `--profile` names: a regular file within the configuration cap,
/// read whole and checked; else the error line and its hint.
fn read_profile(path: &Path) -> Result<ecir_profiles::Profile, (String, Option<&'static str>)> {
    let text = ecir_input::read_config(path).map_err(|e| (format!("--profile {e}"), e.hint()))?;
    ecir_profiles::Profile::from_json(&text)
        .map_err(|e| (format!("--profile {}: {e}", path.display()), None))
}

/// The admin-panel options (`--platform`, `--admin-path`, `--admin-allow`,
/// `--business-hours`), checked, with the profile `--profile` named.
fn admin_config(
    a: &ScanArgs,
    tz: chrono_tz::Tz,
    profile: Option<ecir_profiles::Profile>,
) -> Result<ecir_detect::admin::AdminConfig, String> {
    if let Some(name) = &a.platform {
        let custom = profile
            .as_ref()
            .is_some_and(|p| p.name.eq_ignore_ascii_case(name));
        if !custom && ecir_profiles::by_name(name).is_none() {
            return Err(format!(
                "--platform {name}: unknown platform (known: {})",
                ecir_profiles::names().join(", ")
            ));
        }
    }
    let mut admin_paths = Vec::new();
    for p in &a.admin_path {
        let t = p.trim().trim_end_matches('/');
        let t = if t.starts_with('/') {
            t.to_string()
        } else {
            format!("/{t}")
        };
        if t.len() < 2 {
            return Err(format!("--admin-path {p}: give the prefix, e.g. /admin"));
        }
        admin_paths.push(t);
    }
    let mut allow = Vec::new();
    for c in &a.admin_allow {
        allow.push(
            c.parse::<Cidr>()
                .map_err(|_| format!("--admin-allow {c}: not an address or CIDR"))?,
        );
    }
    let business_hours = match &a.business_hours {
        Some(s) => Some(parse_hours(s).ok_or_else(|| {
            format!("--business-hours {s}: expected HH:MM-HH:MM, e.g. 09:00-19:00")
        })?),
        None => None,
    };
    Ok(ecir_detect::admin::AdminConfig {
        admin_paths,
        platform: a.platform.clone(),
        profile,
        allow,
        business_hours,
        tz: Some(tz),
        session_secs: 0,
    })
}

fn parse_hours(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-')?;
    let hm = |x: &str| -> Option<u32> {
        let (h, m) = x.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
    };
    Some((hm(a)?, hm(b)?))
}

/// The user's locale as POSIX resolves it: `LC_ALL`, then `LC_MESSAGES`, then `LANG`.
fn locale() -> String {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.is_empty())
        .unwrap_or_default()
}
