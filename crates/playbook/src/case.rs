//! Cases: a directory holding the journal, a copy of the playbook and the evidence copies.
//!
//! Every action appends one journal record; [`state`] replays the journal, so a case resumes
//! after a crash or a handover with nothing else to restore. Deadlines are computed from the
//! replayed state each time, so they follow a corrected discovery time or a newly set anchor
//! variable.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use ecir_input::{sha256_hex, HashingReader};
use ecir_model::text::escape_controls;
use serde::Serialize;

use crate::cond::{eval_opt, Cond, Truth};
use crate::deadline::{self, show_due};
use crate::error::{io, Error};
use crate::format::{
    self, Anchor, Deadline, DeadlineKind, Lang, Phase, Playbook, Step, Unit, VarType,
};
use crate::journal::{self, EvidenceRef, NotApplied, Record, What};
use crate::mask::mask_card_data;

pub const PLAYBOOK_COPY: &str = "playbook.toml";
pub const EVIDENCE_DIR: &str = "evidence";
pub const STATUS_SCHEMA: &str = "ecir.case-status/1";

/// Status of a step.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Pending,
    Done,
    Skipped,
    NotApplicable,
}

impl StepStatus {
    pub fn parse(s: &str) -> Option<StepStatus> {
        Some(match s {
            "pending" => StepStatus::Pending,
            "done" => StepStatus::Done,
            "skipped" | "skip" => StepStatus::Skipped,
            "not-applicable" | "na" | "n/a" => StepStatus::NotApplicable,
            _ => return None,
        })
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Done => "done",
            StepStatus::Skipped => "skipped",
            StepStatus::NotApplicable => "not-applicable",
        }
    }
}

/// What the journal says of one step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepState {
    pub status: StepStatus,
    /// When the last status change happened (as recorded with `--at`).
    pub at: Option<DateTime<Utc>>,
    pub by: Option<String>,
    pub notes: Vec<String>,
    pub evidence: Vec<EvidenceRef>,
}

/// A step's status record as returned to callers.
pub type StepRecord = Record;

/// The case as replayed from its journal.
#[derive(Clone, Debug)]
pub struct CaseState {
    pub dir: PathBuf,
    pub playbook: Playbook,
    pub discovered: DateTime<Utc>,
    pub lang: Lang,
    pub tz: Tz,
    pub vars: BTreeMap<String, String>,
    pub steps: BTreeMap<String, StepState>,
    /// Playbooks recommended by attached scan reports (not the case's own).
    pub recommended: Vec<String>,
    pub records: Vec<Record>,
}

/// Options of [`new_case`].
#[derive(Clone, Debug)]
pub struct NewCase<'a> {
    /// Bundled playbook id, or a path to a playbook TOML file.
    pub playbook: &'a str,
    /// Discovery time (T0): RFC 3339, or a local `YYYY-MM-DD[ HH:MM[:SS]]` read in `tz`.
    pub discovered: &'a str,
    pub lang: Lang,
    /// IANA zone, e.g. `Asia/Tokyo`.
    pub tz: &'a str,
    pub by: &'a str,
    pub at: Option<&'a str>,
}

/// A step status change ([`apply_step`]).
#[derive(Clone, Debug)]
pub struct StepUpdate<'a> {
    pub step: &'a str,
    pub status: StepStatus,
    pub note: Option<&'a str>,
    pub evidence: Vec<PathBuf>,
    pub by: &'a str,
    pub at: Option<&'a str>,
}

pub fn parse_tz(s: &str) -> Result<Tz, Error> {
    s.parse::<Tz>().map_err(|_| {
        Error::Invalid(format!(
            "unknown time zone `{s}` (use an IANA name such as Asia/Tokyo)"
        ))
    })
}

/// Parses a time: RFC 3339, or local `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` or
/// `YYYY-MM-DDTHH:MM[:SS]` in `tz`.
pub fn parse_time(s: &str, tz: Tz) -> Result<DateTime<Utc>, Error> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return in_calendar_years(s, t.with_timezone(&Utc));
    }
    let local = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    });
    let t = match local.map(|n| tz.from_local_datetime(&n).earliest()) {
        Some(Some(t)) => t.with_timezone(&Utc),
        _ => {
            return Err(Error::Invalid(format!(
                "not a time: `{s}` (use RFC 3339, e.g. 2026-11-26T09:30:00+09:00, or YYYY-MM-DD HH:MM in the case zone)"
            )))
        }
    };
    in_calendar_years(s, t)
}

/// A case time must fall in the years the deadline calendar covers: a typo such as `0206`
/// for `2026` would otherwise count business days through a calendar that does not exist.
fn in_calendar_years(s: &str, t: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
    let years = crate::calendar::YEARS;
    if years.contains(&t.year()) {
        Ok(t)
    } else {
        Err(Error::Invalid(format!(
            "`{s}` is in the year {}: case times must fall between {} and {} (check for a typo in the year)",
            t.year(),
            years.start(),
            years.end()
        )))
    }
}

fn now_or(at: Option<&str>, tz: Tz) -> Result<DateTime<Utc>, Error> {
    match at {
        Some(s) => parse_time(s, tz),
        None => Ok(Utc::now()),
    }
}

fn rfc(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Creates a case directory (which must not exist or be empty) and journals its opening.
pub fn new_case(dir: &Path, opts: &NewCase) -> Result<CaseState, Error> {
    let tz = parse_tz(opts.tz)?;
    let (file, src) = crate::bundled::load_source(opts.playbook)?;
    format::parse(&file, &src).map_err(Error::Playbook)?;
    let discovered = parse_time(opts.discovered, tz)?;
    let at = now_or(opts.at, tz)?;
    if dir.exists() {
        let empty = fs::read_dir(dir).map_err(io(dir))?.next().is_none();
        if !empty {
            return Err(Error::Case(format!(
                "{} exists and is not empty",
                dir.display()
            )));
        }
    }
    fs::create_dir_all(dir.join(EVIDENCE_DIR)).map_err(io(dir))?;
    let _lock = journal::lock(dir, true)?;
    if dir.join(journal::JOURNAL).exists() {
        return Err(Error::Case(format!(
            "{} was opened as a case by another command meanwhile",
            dir.display()
        )));
    }
    let copy = dir.join(PLAYBOOK_COPY);
    fs::write(&copy, src.as_bytes()).map_err(io(&copy))?;
    let pb = format::parse(&file, &src).map_err(Error::Playbook)?;
    journal::append(
        dir,
        &rfc(at, tz),
        opts.by,
        What::Open {
            playbook: pb.id.clone(),
            playbook_sha256: sha256_hex(src.as_bytes()),
            discovered: rfc(discovered, tz),
            lang: opts.lang.as_str().to_string(),
            tz: opts.tz.to_string(),
        },
    )?;
    state_locked(dir)
}

/// Replays the journal (after checking its chain and the playbook copy's hash) into the case
/// state, under the case's shared lock.
pub fn state(dir: &Path) -> Result<CaseState, Error> {
    let _lock = journal::lock(dir, false)?;
    state_locked(dir)
}

/// The state of the case in `dir`, locked for appending: hold the returned lock until the
/// record is appended, so that no other command appends in between.
fn state_for_append(dir: &Path) -> Result<(journal::CaseLock, CaseState), Error> {
    if !dir.join(journal::JOURNAL).exists() {
        // Not a case: say so (from `state_locked`) rather than create a lock file in it.
        state_locked(dir)?;
    }
    let lock = journal::lock(dir, true)?;
    let st = state_locked(dir)?;
    Ok((lock, st))
}

/// [`state`], for a caller that holds the case's lock.
pub(crate) fn state_locked(dir: &Path) -> Result<CaseState, Error> {
    if !dir.join(journal::JOURNAL).exists() {
        return Err(Error::Case(format!(
            "{} is not a case (no {})",
            dir.display(),
            journal::JOURNAL
        )));
    }
    let records = journal::check_chain(dir)?;
    let Some(first) = records.first() else {
        return Err(Error::Case("empty journal".into()));
    };
    let What::Open {
        discovered,
        lang,
        tz,
        ..
    } = &first.what
    else {
        return Err(Error::Case(
            "the journal does not start with an `open` record".into(),
        ));
    };
    let tz = parse_tz(tz)?;
    let mut discovered = parse_time(discovered, tz)?;
    let lang = Lang::parse(lang).unwrap_or(Lang::En);
    let src = journal::checked_playbook(dir, &records)?;
    let playbook = format::parse(PLAYBOOK_COPY, &src).map_err(Error::Playbook)?;
    let mut vars = BTreeMap::new();
    let mut steps: BTreeMap<String, StepState> = playbook
        .steps
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                StepState {
                    status: StepStatus::Pending,
                    at: None,
                    by: None,
                    notes: Vec::new(),
                    evidence: Vec::new(),
                },
            )
        })
        .collect();
    let mut recommended = BTreeSet::new();
    for r in &records {
        let at = parse_time(&r.at, tz).ok();
        match &r.what {
            What::Open { .. } => {}
            What::Discovered { discovered: d, .. } => discovered = parse_time(d, tz)?,
            What::Set { vars: v } => vars.extend(v.clone()),
            What::Step {
                step,
                status,
                note,
                evidence,
            } => {
                if let Some(s) = steps.get_mut(step) {
                    s.status = StepStatus::parse(status).unwrap_or(StepStatus::Pending);
                    s.at = at;
                    s.by = Some(r.by.clone());
                    s.notes.extend(note.clone());
                    s.evidence.extend(evidence.iter().cloned());
                }
            }
            What::Note {
                step: Some(step),
                text,
            } => {
                if let Some(s) = steps.get_mut(step) {
                    s.notes.push(text.clone());
                }
            }
            What::Evidence {
                step: Some(step),
                file,
            } => {
                if let Some(s) = steps.get_mut(step) {
                    s.evidence.push(file.clone());
                }
            }
            What::Note { .. } | What::Evidence { .. } => {}
            What::Report {
                vars: v, playbooks, ..
            } => {
                vars.extend(v.clone());
                recommended.extend(playbooks.iter().cloned());
            }
        }
    }
    recommended.remove(&playbook.id);
    let st = CaseState {
        dir: dir.to_path_buf(),
        playbook,
        discovered,
        lang,
        tz,
        vars,
        steps,
        recommended: recommended.into_iter().collect(),
        records,
    };
    countable_deadlines(&st)?;
    Ok(st)
}

/// `Ok` when every deadline whose anchor is known can be counted ([`deadline::due`]): the
/// playbook's offsets are bounded and case times lie in the calendar's years, so only a
/// hand-made case gets an error here, never a panic.
fn countable_deadlines(st: &CaseState) -> Result<(), Error> {
    for s in &st.playbook.steps {
        if let Some(d) = st
            .due(s)
            .filter(|d| d.due.is_none() && d.waiting_for.is_none())
        {
            return Err(Error::Invalid(format!(
                "{}: step {}: its deadline ({} {}) cannot be counted: offsets go up to {} days and case times lie in {}–{}",
                PLAYBOOK_COPY,
                s.id,
                d.deadline.offset,
                d.deadline.unit.as_str(),
                format::MAX_OFFSET_DAYS,
                crate::calendar::YEARS.start(),
                crate::calendar::YEARS.end()
            )));
        }
    }
    Ok(())
}

/// Bytes of an evidence file's own name kept in its stored name (a file name holds 255 at
/// most, and the stored name adds a sequence prefix).
const MAX_STORED_NAME: usize = 200;

/// A name to store a copy of evidence under: the original's, with path separators, control
/// and bidi/format characters (which could disguise the name in a listing) replaced by `_`,
/// cut to [`MAX_STORED_NAME`] bytes. The original name stays in the journal, escaped.
fn stored_file_name(original: &str) -> String {
    let mut out = String::with_capacity(original.len().min(MAX_STORED_NAME));
    for c in original.chars() {
        let c = if c == '/' || c == '\\' || ecir_model::text::is_unsafe_char(c) {
            '_'
        } else {
            c
        };
        if out.len() + c.len_utf8() > MAX_STORED_NAME {
            break;
        }
        out.push(c);
    }
    if out.is_empty() || out == "." || out == ".." {
        return "evidence".into();
    }
    out
}

fn copy_evidence(dir: &Path, src: &Path, seq_hint: u64, n: usize) -> Result<EvidenceRef, Error> {
    let meta = fs::metadata(src).map_err(io(src))?;
    if !meta.is_file() {
        return Err(Error::Invalid(format!("{} is not a file", src.display())));
    }
    let base = src
        .file_name()
        .map(|b| stored_file_name(&b.to_string_lossy()))
        .unwrap_or_else(|| "evidence".into());
    let stored = format!("{EVIDENCE_DIR}/{seq_hint:04}-{n}-{base}");
    let dest = dir.join(&stored);
    fs::create_dir_all(dir.join(EVIDENCE_DIR)).map_err(io(dir))?;
    let input = File::open(src).map_err(io(src))?;
    let mut reader = HashingReader::new(input);
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&dest)
        .map_err(io(&dest))?;
    io::copy(&mut reader, &mut out).map_err(io(src))?;
    out.sync_all().map_err(io(&dest))?;
    let (sha256, bytes, err) = reader.finish();
    if let Some(e) = err {
        return Err(Error::Io {
            path: src.to_path_buf(),
            source: e,
        });
    }
    Ok(EvidenceRef {
        original: src.display().to_string(),
        stored,
        sha256,
        bytes,
    })
}

fn next_seq(st: &CaseState) -> u64 {
    st.records.last().map_or(1, |r| r.seq + 1)
}

/// Records a step's status, with an optional note (card numbers masked) and evidence files
/// (copied into the case with their SHA-256; the sources are only read).
pub fn apply_step(dir: &Path, u: &StepUpdate) -> Result<Record, Error> {
    let (_lock, st) = state_for_append(dir)?;
    known_step(&st, u.step)?;
    let at = now_or(u.at, st.tz)?;
    let seq = next_seq(&st);
    let mut evidence = Vec::new();
    for (i, p) in u.evidence.iter().enumerate() {
        evidence.push(copy_evidence(dir, p, seq, i + 1)?);
    }
    journal::append(
        dir,
        &rfc(at, st.tz),
        u.by,
        What::Step {
            step: u.step.to_string(),
            status: u.status.as_str().to_string(),
            note: u.note.map(mask_card_data),
            evidence,
        },
    )
}

/// `Ok` when the case's playbook has step `id`.
fn known_step(st: &CaseState, id: &str) -> Result<(), Error> {
    match st.playbook.step(id) {
        Some(_) => Ok(()),
        None => Err(Error::UnknownStep(id.to_string())),
    }
}

/// Journals a note (card numbers masked), optionally about a step.
pub fn add_note(
    dir: &Path,
    step: Option<&str>,
    text: &str,
    by: &str,
    at: Option<&str>,
) -> Result<Record, Error> {
    let (_lock, st) = state_for_append(dir)?;
    if let Some(s) = step {
        known_step(&st, s)?;
    }
    let at = now_or(at, st.tz)?;
    journal::append(
        dir,
        &rfc(at, st.tz),
        by,
        What::Note {
            step: step.map(str::to_string),
            text: mask_card_data(text),
        },
    )
}

/// Copies an evidence file into the case and journals it, optionally for a step.
pub fn add_evidence(
    dir: &Path,
    step: Option<&str>,
    file: &Path,
    by: &str,
    at: Option<&str>,
) -> Result<Record, Error> {
    let (_lock, st) = state_for_append(dir)?;
    if let Some(s) = step {
        known_step(&st, s)?;
    }
    let at = now_or(at, st.tz)?;
    let f = copy_evidence(dir, file, next_seq(&st), 1)?;
    journal::append(
        dir,
        &rfc(at, st.tz),
        by,
        What::Evidence {
            step: step.map(str::to_string),
            file: f,
        },
    )
}

/// The type of variable `name` in a case of `pb`: the playbook's declaration, else the
/// incident record's ([`crate::report::RECORD_VARS`]); an error naming the close or the
/// declared names when neither knows it (a typo would otherwise be journaled unnoticed,
/// and never decide the condition or deadline it was meant for).
fn var_type(pb: &Playbook, name: &str) -> Result<VarType, Error> {
    let record = crate::report::RECORD_VARS;
    if let Some(v) = pb.variable(name) {
        return Ok(v.kind);
    }
    if let Some((_, kind)) = record.iter().find(|(n, _)| *n == name) {
        return Ok(*kind);
    }
    let mut known: Vec<&str> = pb.variables.iter().map(|v| v.name.as_str()).collect();
    for (n, _) in record {
        if !known.contains(n) {
            known.push(n);
        }
    }
    let close: Vec<&str> = known
        .iter()
        .copied()
        .filter(|k| {
            edit_distance(k, name) <= 2.max(name.len() / 4)
                || (name.len() >= 4 && (k.contains(name) || name.contains(k)))
        })
        .collect();
    let declared: Vec<&str> = pb.variables.iter().map(|v| v.name.as_str()).collect();
    let listed = if !close.is_empty() {
        format!("did you mean {}?", close.join(", "))
    } else if !declared.is_empty() {
        format!("its variables: {}", declared.join(", "))
    } else {
        "it declares no variables".to_string()
    };
    Err(Error::UnknownVariable(format!(
        "`{}` is not a variable of playbook {} nor of the incident record; {listed}",
        escape_controls(name, 100),
        pb.id
    )))
}

/// Levenshtein distance over characters (variable names are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Checks and normalizes one variable value against its type ([`var_type`]).
fn normalize_var(pb: &Playbook, name: &str, value: &str, tz: Tz) -> Result<String, Error> {
    let value = value.trim();
    match var_type(pb, name)? {
        VarType::Bool => match value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" | "on" => Ok("true".into()),
            "false" | "no" | "n" | "0" | "off" => Ok("false".into()),
            _ => Err(Error::Invalid(format!(
                "{name} is a yes/no variable: use true or false, not `{value}`"
            ))),
        },
        // `int` variables are counts (orders, people, cards): never negative.
        VarType::Int => match value.parse::<i64>() {
            Ok(n) if n < 0 => Err(Error::Invalid(format!(
                "{name} is a count: it cannot be negative (`{value}`)"
            ))),
            Ok(n) => Ok(n.to_string()),
            Err(_) => Err(Error::Invalid(format!(
                "{name} is a count (a whole number, 0 or more), not `{value}`"
            ))),
        },
        VarType::Time => parse_time(value, tz).map(|t| rfc(t, tz)),
        VarType::String => Ok(mask_card_data(value)),
    }
}

/// Sets case variables from `NAME=VALUE` assignments, type-checked (times normalized to
/// RFC 3339 in the case zone, counts 0 or more). A name must be declared by the playbook or
/// read by the incident record ([`crate::report::RECORD_VARS`], e.g. the `ppc_*` report
/// items); any other is refused, naming the close ones. Card numbers in values are masked.
pub fn set_vars(
    dir: &Path,
    assignments: &[String],
    by: &str,
    at: Option<&str>,
) -> Result<Record, Error> {
    let (_lock, st) = state_for_append(dir)?;
    let mut vars = BTreeMap::new();
    for a in assignments {
        let Some((k, v)) = a.split_once('=') else {
            return Err(Error::Invalid(format!("`{a}` is not NAME=VALUE")));
        };
        let k = k.trim();
        if k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(Error::Invalid(format!(
                "`{k}` is not a variable name (lower-case letters, digits, _)"
            )));
        }
        vars.insert(k.to_string(), normalize_var(&st.playbook, k, v, st.tz)?);
    }
    if vars.is_empty() {
        return Err(Error::Invalid("nothing to set".into()));
    }
    let at = now_or(at, st.tz)?;
    journal::append(dir, &rfc(at, st.tz), by, What::Set { vars })
}

/// Corrects the discovery time (T0); deadlines anchored on discovery follow it.
pub fn correct_discovery(
    dir: &Path,
    discovered: &str,
    reason: Option<&str>,
    by: &str,
    at: Option<&str>,
) -> Result<Record, Error> {
    let (_lock, st) = state_for_append(dir)?;
    let t = parse_time(discovered, st.tz)?;
    let at = now_or(at, st.tz)?;
    journal::append(
        dir,
        &rfc(at, st.tz),
        by,
        What::Discovered {
            discovered: rfc(t, st.tz),
            reason: reason.map(mask_card_data),
        },
    )
}

/// How far past now a recorded time may lie before [`odd_times`] calls it odd: the clocks of
/// two machines disagree a little.
pub const FUTURE_SLACK_SECS: i64 = 300;

/// Which time of a record [`odd_times`] found odd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeField {
    /// When the action happened (`--at`).
    At,
    /// The discovery time (T0).
    Discovered,
    /// A time variable set in the record.
    Var(String),
}

/// A recorded time that is probably a mistake: accepted (responders back-fill), but the
/// user should be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OddTime {
    pub field: TimeField,
    /// The time as recorded (RFC 3339 in the case zone).
    pub value: String,
    /// What is odd about it, e.g. `2d 3h in the future (now …)`.
    pub problem: String,
    pub hint: &'static str,
}

/// The odd times of `rec`, a record just appended to the case `st` (replayed after it), at
/// `now`: any time more than [`FUTURE_SLACK_SECS`] in the future (the action's time, the
/// discovery time, a time variable set), and a step or variable change dated before the
/// discovery time. Times of the past, variables such as `exposure_start` before T0 and
/// actions recorded without an explicit time are not odd.
pub fn odd_times(st: &CaseState, rec: &Record, now: DateTime<Utc>) -> Vec<OddTime> {
    let mut out = Vec::new();
    let future = |field: TimeField, t: DateTime<Utc>, out: &mut Vec<OddTime>| {
        let ahead = (t - now).num_seconds();
        if ahead > FUTURE_SLACK_SECS {
            out.push(OddTime {
                field,
                value: rfc(t, st.tz),
                problem: format!(
                    "{} in the future (now {})",
                    deadline::span(ahead, false),
                    rfc(now, st.tz)
                ),
                hint: "check the date and the zone (a time without an offset is read in the case zone)",
            });
            true
        } else {
            false
        }
    };
    match &rec.what {
        What::Open { discovered, .. } | What::Discovered { discovered, .. } => {
            if let Ok(t) = parse_time(discovered, st.tz) {
                future(TimeField::Discovered, t, &mut out);
            }
        }
        What::Step { .. } | What::Set { .. } => {
            if let Ok(t) = parse_time(&rec.at, st.tz) {
                if !future(TimeField::At, t, &mut out) && t < st.discovered {
                    out.push(OddTime {
                        field: TimeField::At,
                        value: rfc(t, st.tz),
                        problem: format!(
                            "{} before the discovery time (T0 {})",
                            deadline::span((st.discovered - t).num_seconds(), false),
                            rfc(st.discovered, st.tz)
                        ),
                        hint: "check the date, or correct T0 with `ecir case discovered DIR TIME` if the incident was known earlier",
                    });
                }
            }
        }
        _ => {}
    }
    if let What::Set { vars } = &rec.what {
        for (k, v) in vars {
            if matches!(var_type(&st.playbook, k), Ok(VarType::Time)) {
                if let Ok(t) = parse_time(v, st.tz) {
                    future(TimeField::Var(k.clone()), t, &mut out);
                }
            }
        }
    }
    out
}

/// A step's deadline as computed for a case.
#[derive(Clone, Debug, PartialEq)]
pub struct DueInfo {
    pub deadline: Deadline,
    /// `None` while the anchor (a step not yet done, a variable not yet set) is unknown.
    pub due: Option<DateTime<Utc>>,
    pub waiting_for: Option<String>,
    /// Variables, not yet set, that conditions of the step's earlier deadlines read: once
    /// they are decided another deadline may apply (the one chosen meanwhile is the fallback).
    pub undecided: Vec<String>,
}

impl CaseState {
    /// Whether a step applies (its condition is true or still undecided).
    pub fn applies(&self, step: &Step) -> bool {
        eval_opt(step.when.as_deref(), &self.vars) != Truth::False
    }

    /// Variables a step's condition reads that are not set yet.
    pub fn undecided(&self, step: &Step) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = step.when.as_deref().and_then(|w| Cond::parse(w).ok()) {
            if c.eval(&self.vars) == Truth::Unknown {
                out.extend(
                    c.variables()
                        .into_iter()
                        .filter(|v| !self.vars.contains_key(v)),
                );
            }
        }
        out
    }

    pub fn status_of(&self, id: &str) -> StepStatus {
        self.steps.get(id).map_or(StepStatus::Pending, |s| s.status)
    }

    /// The deadline that applies to a step (the first whose `when` holds), with its due time.
    pub fn due(&self, step: &Step) -> Option<DueInfo> {
        let mut undecided = BTreeSet::new();
        let d = step
            .deadlines
            .iter()
            .find(|d| match eval_opt(d.when.as_deref(), &self.vars) {
                Truth::True => true,
                Truth::False => false,
                Truth::Unknown => {
                    if let Some(c) = d.when.as_deref().and_then(|w| Cond::parse(w).ok()) {
                        undecided.extend(
                            c.variables()
                                .into_iter()
                                .filter(|v| !self.vars.contains_key(v)),
                        );
                    }
                    false
                }
            })?;
        let (anchor, waiting_for) = match &d.anchor {
            Anchor::Discovery => (Some(self.discovered), None),
            Anchor::Step(s) => match self.steps.get(s) {
                Some(ss) if ss.status == StepStatus::Done => (ss.at, None),
                _ => (None, Some(format!("step {s}"))),
            },
            Anchor::Var(v) => match self.vars.get(v).and_then(|x| parse_time(x, self.tz).ok()) {
                Some(t) => (Some(t), None),
                None => (None, Some(format!("variable {v}"))),
            },
        };
        Some(DueInfo {
            deadline: d.clone(),
            due: anchor.and_then(|a| deadline::due(d, a)),
            waiting_for,
            undecided: undecided.into_iter().collect(),
        })
    }

    /// Pending, applicable steps whose dependencies are all resolved, in playbook order.
    pub fn ready(&self) -> Vec<&Step> {
        self.playbook
            .steps
            .iter()
            .filter(|s| self.status_of(&s.id) == StepStatus::Pending && self.applies(s))
            .filter(|s| {
                s.after.iter().all(|dep| {
                    self.status_of(dep) != StepStatus::Pending
                        || self.playbook.step(dep).is_some_and(|d| !self.applies(d))
                })
            })
            .collect()
    }
}

/// One step in [`CaseStatus`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepStatusRow {
    pub id: String,
    pub phase: Phase,
    pub title: String,
    pub status: StepStatus,
    pub applies: bool,
    /// Variables the step's condition still waits for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undecided: Vec<String>,
    /// RFC 3339 in the case zone, or null.
    pub deadline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_shown: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_kind: Option<DeadlineKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_rule: Option<String>,
    /// What the deadline still waits for (an anchor step or variable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_waiting_for: Option<String>,
    /// Variables not yet set that may select another deadline: until they are, the deadline
    /// shown is the playbook's fallback (the conservative one, in the bundled playbooks).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deadline_undecided: Vec<String>,
    /// Seconds until the deadline (negative when past).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_left: Option<i64>,
    /// Pending, applicable and past its deadline.
    pub overdue: bool,
    /// Done after its deadline.
    pub late: bool,
    pub completed_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseProgress {
    pub phase: Phase,
    pub resolved: usize,
    pub applicable: usize,
}

/// Case status, schema `ecir.case-status/1`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseStatus {
    pub schema: &'static str,
    pub playbook: String,
    pub title: String,
    pub discovered: String,
    pub tz: String,
    pub at: String,
    pub lang: Lang,
    pub phases: Vec<PhaseProgress>,
    pub steps: Vec<StepStatusRow>,
    pub next: Vec<String>,
    pub overdue_hard: Vec<String>,
    pub recommended_playbooks: Vec<String>,
    pub variables: BTreeMap<String, String>,
}

impl CaseStatus {
    /// The steps that have a deadline, by due time: earliest first, then those whose due
    /// time is not known yet (waiting for an anchor), in playbook order.
    pub fn deadlines_by_due(&self) -> Vec<&StepStatusRow> {
        by_due(self.steps.iter().filter(|r| r.deadline_kind.is_some()))
    }
}

/// `rows` ordered by due time (`seconds_left`, counted from one instant), earliest first;
/// rows without one last; the sort is stable, so ties keep playbook order.
fn by_due<'a>(rows: impl Iterator<Item = &'a StepStatusRow>) -> Vec<&'a StepStatusRow> {
    let mut rows: Vec<&StepStatusRow> = rows.collect();
    rows.sort_by_key(|r| (r.seconds_left.is_none(), r.seconds_left));
    rows
}

/// Status of a case at `at` (default now).
pub fn status(dir: &Path, at: Option<&str>) -> Result<CaseStatus, Error> {
    let st = state(dir)?;
    let now = now_or(at, st.tz)?;
    Ok(status_of(&st, now))
}

pub fn status_of(st: &CaseState, now: DateTime<Utc>) -> CaseStatus {
    let lang = st.lang;
    let mut rows = Vec::new();
    for s in &st.playbook.steps {
        let ss = &st.steps[&s.id];
        let applies = st.applies(s);
        let due = st.due(s);
        let due_at = due.as_ref().and_then(|d| d.due);
        let overdue =
            applies && ss.status == StepStatus::Pending && due_at.is_some_and(|d| now > d);
        let late =
            ss.status == StepStatus::Done && matches!((due_at, ss.at), (Some(d), Some(a)) if a > d);
        rows.push(StepStatusRow {
            id: s.id.clone(),
            phase: s.phase,
            title: s.title.get(lang).to_string(),
            status: ss.status,
            applies,
            undecided: st.undecided(s),
            deadline: due_at.map(|d| rfc(d, st.tz)),
            deadline_shown: due
                .as_ref()
                .and_then(|d| d.due.map(|x| show_due(x, d.deadline.unit, st.tz))),
            deadline_kind: due.as_ref().map(|d| d.deadline.kind),
            deadline_rule: due.as_ref().map(|d| d.deadline.rule.clone()),
            deadline_waiting_for: due.as_ref().and_then(|d| d.waiting_for.clone()),
            deadline_undecided: due
                .as_ref()
                .map(|d| d.undecided.clone())
                .unwrap_or_default(),
            seconds_left: due_at.map(|d| (d - now).num_seconds()),
            overdue,
            late,
            completed_at: (ss.status != StepStatus::Pending)
                .then_some(ss.at)
                .flatten()
                .map(|a| rfc(a, st.tz)),
        });
    }
    let phases = Phase::ALL
        .iter()
        .filter_map(|&p| {
            let of: Vec<&StepStatusRow> =
                rows.iter().filter(|r| r.phase == p && r.applies).collect();
            (!of.is_empty()).then(|| PhaseProgress {
                phase: p,
                resolved: of
                    .iter()
                    .filter(|r| r.status != StepStatus::Pending)
                    .count(),
                applicable: of.len(),
            })
        })
        .collect();
    let overdue_hard = by_due(rows.iter())
        .into_iter()
        .filter(|r| r.overdue && r.deadline_kind == Some(DeadlineKind::Hard))
        .map(|r| r.id.clone())
        .collect();
    CaseStatus {
        schema: STATUS_SCHEMA,
        playbook: st.playbook.id.clone(),
        title: st.playbook.title.get(lang).to_string(),
        discovered: rfc(st.discovered, st.tz),
        tz: st.tz.name().to_string(),
        at: rfc(now, st.tz),
        lang,
        phases,
        next: st.ready().iter().map(|s| s.id.clone()).collect(),
        steps: rows,
        overdue_hard,
        recommended_playbooks: st.recommended.clone(),
        variables: st.vars.clone(),
    }
}

/// How an interactive [`run_next`] session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextOutcome {
    /// Steps given a status in this session, in order.
    pub resolved: Vec<String>,
    /// True when no applicable step is left; false when the user quit (or input ended).
    pub finished: bool,
}

fn t(lang: Lang, ja: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Ja => ja,
        Lang::En => en,
    }
}

/// Writes the guidance block of one step (used by `case next`), control characters escaped
/// (see [`crate::render::terminal_safe`]).
pub fn write_step_guidance(
    st: &CaseState,
    s: &Step,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut text = Vec::new();
    step_guidance(st, s, now, &mut text)?;
    let text = String::from_utf8_lossy(&text).into_owned();
    out.write_all(crate::render::terminal_safe(text).as_bytes())
}

fn step_guidance(
    st: &CaseState,
    s: &Step,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let lang = st.lang;
    writeln!(
        out,
        "[{}] {} ({})",
        s.id,
        s.title.get(lang),
        s.phase.label(lang)
    )?;
    for line in s.text.get(lang).lines() {
        writeln!(out, "  {line}")?;
    }
    if let Some(d) = st.due(s) {
        let kind = match (d.deadline.kind, lang) {
            (DeadlineKind::Hard, Lang::Ja) => "期限（厳守）",
            (DeadlineKind::Soft, Lang::Ja) => "目安",
            (DeadlineKind::Hard, Lang::En) => "hard deadline",
            (DeadlineKind::Soft, Lang::En) => "target",
        };
        match d.due {
            Some(due) => {
                let left = (due - now).num_seconds();
                let rel = if left >= 0 {
                    format!(
                        "{} {}",
                        t(lang, "残り", "left:"),
                        deadline::span(left, lang == Lang::Ja)
                    )
                } else {
                    format!(
                        "{} {}",
                        t(lang, "超過", "late by"),
                        deadline::span(left, lang == Lang::Ja)
                    )
                };
                writeln!(
                    out,
                    "  {kind}: {} ({rel}) [{}]",
                    show_due(due, d.deadline.unit, st.tz),
                    d.deadline.rule
                )?;
            }
            None => writeln!(
                out,
                "  {kind}: {} {} [{}]",
                t(lang, "起点待ち:", "waiting for"),
                d.waiting_for.unwrap_or_default(),
                d.deadline.rule
            )?,
        }
    }
    let und = st.undecided(s);
    if !und.is_empty() {
        writeln!(
            out,
            "  {} {}",
            t(lang, "未決定の変数:", "undecided variables:"),
            und.join(", ")
        )?;
    }
    if !s.evidence.is_empty() {
        writeln!(out, "  {}", t(lang, "記録・証跡:", "evidence to keep:"))?;
        for e in &s.evidence {
            writeln!(out, "    - {}", e.get(lang))?;
        }
    }
    if !s.rules.is_empty() {
        writeln!(
            out,
            "  {} {}",
            t(lang, "根拠:", "rules:"),
            s.rules.join("; ")
        )?;
    }
    Ok(())
}

/// Interactive `case next`: shows the next applicable step and reads answers line by line
/// (`done`, `skip`, `na`, `note TEXT`, `attach FILE`, `quit`) until the user quits, input
/// ends or no applicable step is left. Every answer is journaled at once.
pub fn run_next(
    dir: &Path,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    by: &str,
) -> Result<NextOutcome, Error> {
    let w = |e: io::Error| Error::Io {
        path: PathBuf::from("<output>"),
        source: e,
    };
    let mut resolved = Vec::new();
    loop {
        let st = state(dir)?;
        let lang = st.lang;
        let ready = st.ready();
        let Some(step) = ready.first().copied() else {
            writeln!(
                out,
                "{}",
                t(
                    lang,
                    "対応可能な未完了ステップはありません。",
                    "No applicable step is left."
                )
            )
            .map_err(w)?;
            return Ok(NextOutcome {
                resolved,
                finished: true,
            });
        };
        let now = Utc::now();
        write_step_guidance(&st, step, now, out).map_err(w)?;
        writeln!(
            out,
            "{}",
            t(
                lang,
                "> done=完了 / skip=見送り / na=該当なし / note 文章 / attach ファイル / quit=中断",
                "> done / skip / na (not applicable) / note TEXT / attach FILE / quit"
            )
        )
        .map_err(w)?;
        out.flush().map_err(w)?;
        let mut line = String::new();
        if input.read_line(&mut line).map_err(w)? == 0 {
            return Ok(NextOutcome {
                resolved,
                finished: false,
            });
        }
        let line = line.trim();
        let (cmd, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let status = match cmd.to_ascii_lowercase().as_str() {
            "d" | "done" => Some(StepStatus::Done),
            "s" | "skip" | "skipped" => Some(StepStatus::Skipped),
            "na" | "n/a" | "not-applicable" => Some(StepStatus::NotApplicable),
            "q" | "quit" | "exit" => {
                return Ok(NextOutcome {
                    resolved,
                    finished: false,
                })
            }
            "note" | "n" if !rest.is_empty() => {
                add_note(dir, Some(&step.id), rest, by, None)?;
                writeln!(out, "{}", t(lang, "メモを記録しました。", "Note recorded."))
                    .map_err(w)?;
                None
            }
            "attach" | "a" | "evidence" | "e" if !rest.is_empty() => {
                match add_evidence(dir, Some(&step.id), Path::new(rest), by, None) {
                    Ok(r) => {
                        if let What::Evidence { file, .. } = &r.what {
                            writeln!(
                                out,
                                "{} {} sha256={}",
                                t(lang, "証跡を保存:", "Evidence stored:"),
                                escape_controls(&file.stored, usize::MAX),
                                file.sha256
                            )
                            .map_err(w)?;
                        }
                    }
                    Err(Error::Io { path, source }) => {
                        let path = path.display().to_string();
                        writeln!(out, "{}: {}", escape_controls(&path, usize::MAX), source)
                            .map_err(w)?;
                    }
                    Err(e) => return Err(e),
                }
                None
            }
            _ => {
                writeln!(
                    out,
                    "{}",
                    t(lang, "入力が分かりません。", "Unrecognised answer.")
                )
                .map_err(w)?;
                None
            }
        };
        if let Some(status) = status {
            apply_step(
                dir,
                &StepUpdate {
                    step: &step.id,
                    status,
                    note: None,
                    evidence: Vec::new(),
                    by,
                    at: None,
                },
            )?;
            writeln!(
                out,
                "{} {}: {}",
                t(lang, "記録:", "Recorded"),
                step.id,
                status.as_str()
            )
            .map_err(w)?;
            resolved.push(step.id.clone());
        }
    }
}

/// Attaches a scan report (`ecir.report/1` JSON): stores it as evidence, journals its SHA-256
/// and fills what its findings establish: `card_data_exposed` (a card-skimming finding),
/// `unauthorized_access` (a high or critical admin-compromise or webshell finding),
/// `exposure_start`, `exposure_end` and `completed_orders` (from `exposure`). Only variables
/// not set yet are filled: where one already holds another value (a person's decision, or an
/// earlier report), that value is kept and the record lists what this report says instead
/// (`not_applied`; [`report_var_notes`] words it for the user). Nothing is set to false: a
/// scan that finds nothing does not prove nothing happened. Playbooks named by findings are
/// recommended in the status.
pub fn attach_report(
    dir: &Path,
    report_json: &[u8],
    by: &str,
    at: Option<&str>,
) -> Result<Record, Error> {
    let (_lock, st) = state_for_append(dir)?;
    let v: serde_json::Value = serde_json::from_slice(report_json)
        .map_err(|e| Error::Invalid(format!("not a JSON report: {e}")))?;
    match v.get("schema").and_then(|s| s.as_str()) {
        Some("ecir.report/1") => {}
        other => {
            return Err(Error::Invalid(format!(
                "not an ecir.report/1 document (schema: {})",
                other.unwrap_or("missing")
            )))
        }
    }
    let findings = v
        .get("findings")
        .and_then(|f| f.as_array())
        .cloned()
        .unwrap_or_default();
    let mut vars = BTreeMap::new();
    let mut playbooks = BTreeSet::new();
    for f in &findings {
        let cat = f.get("category").and_then(|c| c.as_str()).unwrap_or("");
        let sev = f.get("severity").and_then(|c| c.as_str()).unwrap_or("");
        if cat == "card-skimming" {
            vars.insert("card_data_exposed".to_string(), "true".to_string());
        }
        if matches!(cat, "admin-compromise" | "webshell") && matches!(sev, "high" | "critical") {
            vars.insert("unauthorized_access".to_string(), "true".to_string());
        }
        if let Some(p) = f.get("playbook").and_then(|p| p.as_str()) {
            playbooks.insert(p.to_string());
        }
    }
    if let Some(exp) = v.get("exposure").filter(|e| e.is_object()) {
        for (key, var) in [("start", "exposure_start"), ("end", "exposure_end")] {
            if let Some(tm) = exp.get(key).and_then(|x| x.as_str()) {
                vars.insert(var.to_string(), rfc(parse_time(tm, st.tz)?, st.tz));
            }
        }
        if let Some(n) = exp.get("completed_orders").and_then(|x| x.as_u64()) {
            vars.insert("completed_orders".to_string(), n.to_string());
        }
    }
    let (vars, not_applied) = fill_unset(&st, vars);
    let at = now_or(at, st.tz)?;
    let seq = next_seq(&st);
    let stored = format!("{EVIDENCE_DIR}/{seq:04}-report.json");
    let dest = dir.join(&stored);
    fs::write(&dest, report_json).map_err(io(&dest))?;
    let file = EvidenceRef {
        original: "(scan report)".to_string(),
        stored,
        sha256: sha256_hex(report_json),
        bytes: report_json.len() as u64,
    };
    journal::append(
        dir,
        &rfc(at, st.tz),
        by,
        What::Report {
            file,
            findings: findings.len() as u64,
            playbooks: playbooks.into_iter().collect(),
            vars,
            not_applied,
        },
    )
}

/// Splits values derived from a report into those that fill unset variables and those that
/// disagree with a value already set (kept, with who set it). Equal values are dropped.
fn fill_unset(
    st: &CaseState,
    derived: BTreeMap<String, String>,
) -> (BTreeMap<String, String>, BTreeMap<String, NotApplied>) {
    let mut fill = BTreeMap::new();
    let mut not_applied = BTreeMap::new();
    for (k, v) in derived {
        match st.vars.get(&k) {
            None => {
                fill.insert(k, v);
            }
            Some(kept) if *kept == v => {}
            Some(kept) => {
                let setter = st.records.iter().rev().find(|r| match &r.what {
                    What::Set { vars } | What::Report { vars, .. } => vars.contains_key(&k),
                    _ => false,
                });
                not_applied.insert(
                    k,
                    NotApplied {
                        report: v,
                        kept: kept.clone(),
                        set_by: setter.map(|r| r.by.clone()).unwrap_or_default(),
                        set_in: setter.map_or(0, |r| r.seq),
                    },
                );
            }
        }
    }
    (fill, not_applied)
}

/// What an attach-report record did to the case variables, one plain line each: the values it
/// set, then each value it did not apply because another was already set.
pub fn report_var_notes(rec: &Record, lang: Lang) -> Vec<String> {
    let What::Report {
        vars, not_applied, ..
    } = &rec.what
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if !vars.is_empty() {
        out.push(format!(
            "{} {}",
            t(lang, "スキャン結果から設定:", "set from the scan report:"),
            vars.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for (k, n) in not_applied {
        out.push(match lang {
            Lang::Ja => format!(
                "{k}: スキャン結果は {} だが、{}（{} が記録{}で設定）を維持した",
                n.report, n.kept, n.set_by, n.set_in
            ),
            Lang::En => format!(
                "{k}: the scan report says {}; kept {} (set by {} in record {})",
                n.report, n.kept, n.set_by, n.set_in
            ),
        });
    }
    out
}

/// Unit helper for renderers.
pub fn unit_of(d: &DueInfo) -> Unit {
    d.deadline.unit
}

#[cfg(test)]
mod stored_name_tests {
    use super::*;

    #[test]
    fn stored_names_cannot_disguise_themselves_or_escape() {
        assert_eq!(stored_file_name("access.log"), "access.log");
        assert_eq!(stored_file_name("アクセス.log"), "アクセス.log");
        // A right-to-left override makes `gol.exe` look like `exe.log` in a listing.
        assert_eq!(stored_file_name("a\u{202e}gol.exe"), "a_gol.exe");
        assert_eq!(stored_file_name("x\x1b[2Jy\n"), "x_[2Jy_");
        assert_eq!(stored_file_name("../../etc"), ".._.._etc");
        assert_eq!(stored_file_name(".."), "evidence");
        let long = stored_file_name(&"あ".repeat(300));
        assert!(long.len() <= MAX_STORED_NAME && long.chars().all(|c| c == 'あ'));
    }
}
