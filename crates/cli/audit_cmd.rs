//! `ecir audit` and `ecir manifest create/verify`: turn arguments into options, run the
//! library, write the views, pick the exit status (audit: 0 policy met, 1 not met, 2 error;
//! verify: 0 all match, 1 differences, 2 error).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, TimeZone};
use ecir_audit::manifest::{self, Manifest};
use ecir_audit::{AuditOptions, AuditReport, Verdict};
use ecir_formats::ParseContext;
use ecir_model::text::escape_controls;
use ecir_model::Timestamp;

use crate::args::{AuditArgs, ManifestCommand, ManifestCreateArgs, ManifestVerifyArgs};
use crate::guard::overwrites_evidence;
use crate::scan_cmd::{error, write_replacing, write_to};
use crate::time_arg::resolve_tz;
use ecir_input::discover::describe_io;

fn usage(msg: &str) -> u8 {
    error(msg, None);
    2
}

/// `365d`, `52w`, `1y` (365 days), or a plain number of days.
fn parse_days(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('d') => (&t[..t.len() - 1], 1),
        Some('w') => (&t[..t.len() - 1], 7),
        Some('y') => (&t[..t.len() - 1], 365),
        _ => (t, 1),
    };
    num.parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("'{s}' is not a duration; use days such as 365d, 13w or 1y"))
}

/// The audit date and the end of the audit (the end of that date, or `now`).
fn as_of(
    arg: Option<&str>,
    ctx: &ParseContext,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(NaiveDate, Timestamp), String> {
    let tz = ctx.tz;
    match arg {
        None => {
            let local = now.with_timezone(&tz);
            Ok((
                local.date_naive(),
                Timestamp::new(now.timestamp_millis(), 0)
                    .with_offset(chrono::Offset::fix(local.offset()).local_minus_utc()),
            ))
        }
        Some(s) => {
            if let Some(t) = Timestamp::parse_rfc3339(s) {
                let local = chrono::Utc
                    .timestamp_millis_opt(t.utc_ms)
                    .single()
                    .ok_or("time out of range")?
                    .with_timezone(&tz);
                return Ok((local.date_naive(), t));
            }
            let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map_err(|_| format!("'{s}' is not a date; use YYYY-MM-DD or RFC 3339"))?;
            let next = d.succ_opt().ok_or("date out of range")?;
            let end = ctx
                .local_to_timestamp(next.and_hms_opt(0, 0, 0).expect("midnight"), 0)
                .ok_or_else(|| format!("'{s}' does not exist in {tz}"))?;
            Ok((d, Timestamp::new(end.utc_ms - 1, end.offset_secs)))
        }
    }
}

/// The zone of an RFC 3339 `--as-of` with an offset, when `--tz` is not given: its days are
/// the ones the user means. `Etc/GMT±N` zones exist for whole hours only; `Err` carries the
/// offset text otherwise.
fn as_of_zone(arg: &str) -> Option<Result<(chrono_tz::Tz, String), String>> {
    let t = Timestamp::parse_rfc3339(arg)?;
    let off = t.offset_secs;
    let label = if off == 0 {
        "+00:00".to_string()
    } else {
        let a = off.unsigned_abs();
        format!(
            "{}{:02}:{:02}",
            if off < 0 { '-' } else { '+' },
            a / 3600,
            a / 60 % 60
        )
    };
    if off % 3600 != 0 {
        return Some(Err(label));
    }
    let hours = off / 3600;
    // POSIX signs: Etc/GMT-9 is nine hours east of Greenwich.
    let name = match hours {
        0 => "Etc/UTC".to_string(),
        h if h > 0 => format!("Etc/GMT-{h}"),
        h => format!("Etc/GMT+{}", -h),
    };
    Some(
        name.parse::<chrono_tz::Tz>()
            .map(|z| (z, format!("offset of --as-of (UTC{label})")))
            .map_err(|_| label),
    )
}

pub fn run(a: AuditArgs) -> u8 {
    let (mut tz, mut tz_source) = match resolve_tz(a.tz.as_deref()) {
        Ok(v) => v,
        Err(e) => return usage(&e),
    };
    if a.tz.is_none() {
        match a.as_of.as_deref().and_then(as_of_zone) {
            Some(Ok((z, source))) => (tz, tz_source) = (z, source),
            Some(Err(offset)) => {
                eprintln!(
                    "ecir: warning: --as-of has the offset {offset}, which no fixed zone of whole hours matches; days are counted in {tz} ({tz_source})"
                );
                eprintln!("  hint: give --tz with an IANA name such as Asia/Kolkata");
            }
            None => {}
        }
    }
    let retention = match parse_days(&a.retention) {
        Ok(0) => return usage("--retention must be at least 1 day"),
        Ok(n) => n,
        Err(e) => return usage(&format!("--retention: {e}")),
    };
    let online = match parse_days(&a.online) {
        // The online days are the most recent part of the retention period: no more of them
        // than it has (the default 90 days with a shorter --retention).
        Ok(n) => n.min(retention),
        Err(e) => return usage(&format!("--online: {e}")),
    };
    let parse = ParseContext {
        tz,
        ..Default::default()
    };
    let now = chrono::Utc::now();
    let (as_of_date, as_of_instant) = match as_of(a.as_of.as_deref(), &parse, now) {
        Ok(v) => v,
        Err(e) => return usage(&format!("--as-of: {e}")),
    };
    let mut outputs: Vec<PathBuf> = Vec::new();
    if let Some(j) = a.json.as_deref().filter(|j| *j != "-") {
        outputs.push(PathBuf::from(j));
    }
    if let Some(h) = &a.html {
        outputs.push(h.clone());
    }
    if outputs.len() == 2
        && std::path::absolute(&outputs[0]).ok() == std::path::absolute(&outputs[1]).ok()
    {
        error(
            "--json and --html name the same file: one would overwrite the other",
            Some("give each its own file, e.g. --json audit.json --html audit.html"),
        );
        return 2;
    }
    // A path that does not exist is a mistake in the command, not an audit result.
    for p in &a.paths {
        if let Err(e) = std::fs::symlink_metadata(p) {
            error(
                &format!("{}: {}", p.display(), describe_io(&e)),
                Some("check the path; ecir audit reads files and directories"),
            );
            return 2;
        }
    }
    for out in &outputs {
        if let Some(what) = overwrites_evidence(out, &a.paths) {
            error(
                &format!(
                    "{}: refusing to write an output over {}",
                    out.display(),
                    what
                ),
                Some("write outputs outside the evidence, e.g. --json ./case/audit.json"),
            );
            return 2;
        }
    }
    let opts = AuditOptions {
        retention_days: retention,
        online_days: online,
        online_uncompressed: a.online_uncompressed,
        as_of_date,
        as_of_instant,
        now: Timestamp::new(now.timestamp_millis(), 0),
        tz_source,
        parse,
        jobs: a.jobs.unwrap_or(0),
        exclude: outputs,
        version: env!("CARGO_PKG_VERSION").into(),
        cards: true,
    };
    let report = match ecir_audit::audit(&a.paths, &opts) {
        Ok(r) => r,
        Err(e) => return usage(&e.to_string()),
    };
    let mut failed_write = false;
    if let Some(dest) = &a.json {
        let r = write_to(dest, |w| {
            ecir_model::json::to_writer_pretty(&mut *w, &report).map_err(io::Error::other)?;
            writeln!(w)
        });
        if let Err(e) = r {
            error(&format!("{dest}: cannot write the JSON audit: {e}"), None);
            failed_write = true;
        }
    }
    if let Some(dest) = &a.html {
        let page = ecir_audit::html::render(&report);
        if let Err(e) = std::fs::write(dest, page) {
            error(
                &format!("{}: cannot write the HTML page: {e}", dest.display()),
                None,
            );
            failed_write = true;
        }
    }
    let stdout_taken = a.json.as_deref() == Some("-");
    if !a.quiet {
        let text = summary(&report);
        if stdout_taken {
            eprint!("{text}");
        } else if let Err(e) = crate::term::write_stdout(&text) {
            error(&format!("cannot write the summary to stdout: {e}"), None);
            failed_write = true;
        }
    }
    for e in &report.errors {
        error(&format!("{}: {}", e.path, e.message), None);
    }
    if !report.errors.is_empty() || failed_write {
        return 2;
    }
    match report.verdict {
        Verdict::Pass => 0,
        Verdict::Fail => 1,
    }
}

fn esc(s: &str) -> String {
    escape_controls(s, 4000)
}

fn summary(r: &AuditReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let p = &r.policy;
    let zone = if p.timezone_source.is_empty() {
        p.timezone.clone()
    } else {
        format!("{}; {}", p.timezone, p.timezone_source)
    };
    let _ = writeln!(
        s,
        "Log-retention audit as of {} ({}): {} days required, last {} days online{}",
        p.as_of,
        zone,
        p.retention_days,
        p.online_days,
        if p.online_uncompressed {
            " and uncompressed"
        } else {
            ""
        }
    );
    for st in &r.streams {
        let span = match (&st.first_ts, &st.last_ts, &st.copy_of) {
            (_, _, Some(original)) => format!("copy of stream {}", esc(original)),
            (Some(a), Some(b), None) => format!("{a} .. {b}"),
            _ => "no timestamps".into(),
        };
        let _ = writeln!(
            s,
            "\n{} {} [{}] {} file(s), {} lines, {}",
            match (st.verdict, &st.copy_of) {
                (Verdict::Pass, Some(_)) => "COPY",
                (Verdict::Pass, None) => "PASS",
                (Verdict::Fail, _) => "FAIL",
            },
            esc(&st.name),
            st.source,
            st.files.len(),
            st.lines,
            span
        );
        let _ = writeln!(
            s,
            "     {} day(s) with lines of {} in the span; {} missing, {} damaged, {} empty, {} duplicate file(s)",
            st.days_covered,
            st.span_days,
            st.missing_days.len(),
            st.damaged_files.len(),
            st.empty_files.len(),
            st.duplicate_files.len()
        );
        for why in &st.reasons {
            let _ = writeln!(s, "  -  {}", esc(why));
        }
        for w in st.warnings.iter().take(10) {
            let _ = writeln!(s, "  ~  {}", esc(w));
        }
        if st.warnings.len() > 10 {
            let _ = writeln!(s, "  ~  … {} more in --json", st.warnings.len() - 10);
        }
    }
    if !r.ignored.is_empty() {
        let _ = writeln!(
            s,
            "\nNot logs, ignored (hashed and searched for card numbers):"
        );
        for i in r.ignored.iter().take(20) {
            let _ = writeln!(s, "  {}: {}", esc(&i.path), esc(&i.reason));
        }
        if r.ignored.len() > 20 {
            let _ = writeln!(s, "  … {} more in --json", r.ignored.len() - 20);
        }
    }
    if !r.coverage_gaps.is_empty() {
        let _ = writeln!(
            s,
            "\nCoverage gaps (one source silent while another has traffic):"
        );
        for g in r.coverage_gaps.iter().take(20) {
            let _ = writeln!(
                s,
                "  {} silent {} .. {} while {} wrote {} lines",
                esc(&g.stream),
                g.from,
                g.to,
                esc(&g.while_),
                g.while_lines
            );
        }
        if r.coverage_gaps.len() > 20 {
            let _ = writeln!(s, "  … {} more in --json", r.coverage_gaps.len() - 20);
        }
    }
    if r.card_summary.total > 0 {
        let _ = writeln!(
            s,
            "\nCard numbers: {} in {} file(s) (masked):",
            r.card_summary.total, r.card_summary.files
        );
        for c in r.card_numbers.iter().take(20) {
            let _ = writeln!(
                s,
                "  {}:{}  {} ({}, after '{}')",
                esc(&c.file),
                c.line,
                c.masked,
                c.brand,
                c.context
            );
        }
    }
    if r.streams.is_empty() {
        // Nothing to hang the reasons on: say them here.
        let _ = writeln!(s);
        for why in &r.reasons {
            let _ = writeln!(s, "  -  {}", esc(why));
        }
    }
    let _ = writeln!(
        s,
        "\nVerdict: {} ({} stream(s), {} file(s), {} lines in {} ms)",
        match r.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
        },
        r.streams.len(),
        r.stats.files,
        r.stats.lines,
        r.stats.elapsed_ms
    );
    s
}

pub fn manifest(m: ManifestCommand) -> u8 {
    match m {
        ManifestCommand::Create(a) => create(a),
        ManifestCommand::Verify(a) => verify(a),
    }
}

/// User and host, as well as the environment tells.
fn who() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown-user".into());
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{user}@{host}")
}

fn create(a: ManifestCreateArgs) -> u8 {
    let (tz, _) = match resolve_tz(a.tz.as_deref()) {
        Ok(v) => v,
        Err(e) => return usage(&e),
    };
    let mut exclude = Vec::new();
    if a.output != "-" {
        let out = PathBuf::from(&a.output);
        if let Some(what) = overwrites_evidence(&out, &a.paths) {
            error(
                &format!(
                    "{}: refusing to write the manifest over {}",
                    out.display(),
                    what
                ),
                None,
            );
            return 2;
        }
        exclude.push(out);
    }
    let parse = ParseContext {
        tz,
        ..Default::default()
    };
    let hidden = if a.skip_hidden {
        ecir_input::Hidden::Skip
    } else {
        ecir_input::Hidden::Include
    };
    let m = manifest::create(
        &a.paths,
        &exclude,
        hidden,
        &parse,
        a.jobs.unwrap_or(0),
        env!("CARGO_PKG_VERSION"),
        &who(),
    );
    // Left out on purpose, never silently: one line each (also under `omitted`).
    for o in &m.omitted {
        eprintln!(
            "ecir: warning: {}: not in the manifest: {}",
            esc(&o.path),
            esc(&o.note)
        );
    }
    let write = |w: &mut dyn Write| {
        ecir_model::json::to_writer_pretty(&mut *w, &m).map_err(io::Error::other)?;
        writeln!(w)
    };
    let written = if a.output == "-" {
        write_to(&a.output, write)
    } else {
        write_replacing(Path::new(&a.output), write)
    };
    if let Err(e) = written {
        error(
            &format!(
                "{}: cannot write the manifest: {e}; nothing was written there",
                a.output
            ),
            None,
        );
        return 2;
    }
    if a.output != "-" {
        eprintln!(
            "ecir: manifest of {} file(s) written to {}",
            m.files.len(),
            esc(&a.output)
        );
    }
    for e in &m.errors {
        error(&format!("{}: {}", e.path, e.message), None);
    }
    if m.errors.is_empty() {
        0
    } else {
        2
    }
}

fn verify(a: ManifestVerifyArgs) -> u8 {
    let m: Manifest = match manifest::load(&a.manifest) {
        Ok(m) => m,
        Err(e) => {
            error(&e.to_string(), e.hint());
            return 2;
        }
    };
    let mut exclude = vec![a.manifest.clone()];
    if let Some(j) = a.json.as_deref().filter(|j| *j != "-") {
        exclude.push(PathBuf::from(j));
    }
    let v = manifest::verify(&m, &exclude, a.jobs.unwrap_or(0));
    let mut failed_write = false;
    if let Some(dest) = &a.json {
        if let Err(e) = write_to(dest, |w| {
            ecir_model::json::to_writer_pretty(&mut *w, &v).map_err(io::Error::other)?;
            writeln!(w)
        }) {
            error(&format!("{dest}: cannot write JSON: {e}"), None);
            failed_write = true;
        }
    }
    let mut out = String::new();
    for x in &v.modified {
        out.push_str(&format!(
            "MODIFIED {}  sha256 {} -> {}, size {} -> {}\n",
            esc(&x.path),
            x.expected_sha256,
            x.actual_sha256,
            x.expected_size,
            x.actual_size
        ));
    }
    for x in &v.missing {
        out.push_str(&format!("MISSING  {}\n", esc(x)));
    }
    for x in &v.added {
        out.push_str(&format!("ADDED    {}\n", esc(x)));
    }
    out.push_str(&format!(
        "{} of {} file(s) match the manifest made {} by {}; {} modified, {} missing, {} added\n",
        v.matched,
        m.files.len(),
        m.created_at,
        esc(&m.created_by),
        v.modified.len(),
        v.missing.len(),
        v.added.len()
    ));
    if a.json.as_deref() == Some("-") {
        eprint!("{out}");
    } else if let Err(e) = crate::term::write_stdout(&out) {
        error(&format!("cannot write to stdout: {e}"), None);
        return 2;
    }
    for e in &v.errors {
        error(&format!("{}: {}", e.path, e.message), None);
    }
    if !v.errors.is_empty() || failed_write {
        2
    } else if v.all_match() {
        0
    } else {
        1
    }
}
