//! From per-file facts to streams and their defects: grouping by rotation name, days covered
//! and missing, silences against the stream's own hourly rhythm, file-order problems,
//! duplicates, the verdict against the policy, and coverage gaps across streams.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use ecir_model::Timestamp;

use crate::doc::*;
use crate::facts::{local_hour, FileFacts, BACKWARDS_TOLERANCE_MS};
use crate::naming::{copy_suffix, parse_name};

/// A silence is reported when the stream usually writes at least this many lines in the
/// silent hours (for a Poisson rhythm the chance of such a silence is below e^-25).
pub const SILENCE_MIN_EXPECTED: f64 = 25.0;
/// Shortest silence reported, in hours.
pub const SILENCE_MIN_HOURS: i64 = 2;
/// Days with lines a stream needs before its rhythm is trusted.
pub const RHYTHM_MIN_DAYS: usize = 3;
/// A stream is expected to write every day (and so to be compared with others) when it has
/// lines on at least this share of the days of its span.
pub const DAILY_SHARE: f64 = 0.8;
/// Most dates listed in `missing_days` (all are counted in the reasons).
pub const MAX_LISTED_DAYS: usize = 1000;
/// Most silences and gaps listed per stream.
pub const MAX_LISTED: usize = 200;

/// The policy the audit checks.
#[derive(Clone, Debug)]
pub struct PolicyInput {
    pub retention_days: u32,
    pub online_days: u32,
    pub online_uncompressed: bool,
    pub as_of_date: NaiveDate,
    pub as_of_instant: Timestamp,
}

const EPOCH_CE: i32 = 719_163;

pub fn day_to_date(day: i64) -> NaiveDate {
    i32::try_from(day)
        .ok()
        .and_then(|d| d.checked_add(EPOCH_CE))
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .unwrap_or(NaiveDate::MIN)
}

pub fn date_to_day(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce() - EPOCH_CE)
}

fn hour_label(hour: i64) -> String {
    let dt = NaiveDateTime::default() + Duration::hours(hour);
    dt.format("%Y-%m-%dT%H:00").to_string()
}

/// One stream being assembled.
pub struct Stream<'a> {
    pub name: String,
    pub files: Vec<&'a FileFacts>,
    pub hours: BTreeMap<i64, u64>,
    pub days: BTreeMap<i64, u64>,
    pub report: StreamReport,
}

/// Stream key of a path: its directory and rotation base name.
pub fn stream_key(path: &str) -> (String, String) {
    let p = Path::new(path);
    let dir = p
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, parse_name(&name).base)
}

/// Display name of a stream key.
pub fn stream_name(key: &(String, String)) -> String {
    if key.0.is_empty() {
        key.1.clone()
    } else {
        format!("{}/{}", key.0.trim_end_matches('/'), key.1)
    }
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether a path's file name ends with a hand-made copy suffix ([`copy_suffix`]).
pub fn is_copy_named(path: &str) -> bool {
    copy_suffix(&file_name(path)).is_some()
}

/// The stream key a hand-made copy (`access.log.100.gz.bak`, `access.log-20261021.txt`)
/// would have without its copy suffix.
fn key_without_copy_suffix(path: &str) -> Option<(String, String)> {
    let name = file_name(path);
    let (stem, _) = copy_suffix(&name)?;
    let (dir, _) = stream_key(path);
    Some((dir, parse_name(stem).base))
}

/// The name that gives a file its place in rotation order: without a copy suffix.
fn order_name(path: &str) -> String {
    let name = file_name(path);
    match copy_suffix(&name) {
        Some((stem, _)) => stem.to_string(),
        None => name,
    }
}

/// Groups paths into streams; each stream's paths are in rotation order, oldest first. A
/// hand-made copy of one file of a stream (`access.log.100.gz.bak`, `access.log-copy30`,
/// `access.log-20261021.txt`, beside `access.log`) joins that stream, in the place of the
/// file it copies; one whose stem names no stream in its directory stays a stream of its own.
pub fn group_paths<'a>(paths: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, Vec<&'a str>> {
    let paths: Vec<&str> = paths.into_iter().collect();
    let streams: BTreeSet<(String, String)> = paths
        .iter()
        .filter(|p| !is_copy_named(p))
        .map(|p| stream_key(p))
        .collect();
    let mut groups: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for p in paths {
        let key = key_without_copy_suffix(p)
            .filter(|k| streams.contains(k))
            .unwrap_or_else(|| stream_key(p));
        groups.entry(key).or_default().push(p);
    }
    groups
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_by(|a, b| {
                parse_name(&order_name(a))
                    .order_key()
                    .cmp(&parse_name(&order_name(b)).order_key())
                    .then(a.cmp(b))
            });
            (stream_name(&k), v)
        })
        .collect()
}

/// Files of a stream that joined it by a hand-made copy name (see [`group_paths`]).
fn joined_copies<'f>(name: &str, files: &[&'f FileFacts]) -> Vec<&'f FileFacts> {
    files
        .iter()
        .filter(|f| is_copy_named(&f.path) && stream_name(&stream_key(&f.path)) != name)
        .copied()
        .collect()
}

/// Builds every stream with its defects and verdict.
pub fn build_streams<'a>(facts: &'a [FileFacts], policy: &PolicyInput) -> Vec<Stream<'a>> {
    let by_path: HashMap<&str, &FileFacts> = facts.iter().map(|f| (f.path.as_str(), f)).collect();
    // Copies: files with the same bytes, or the same lines once decompressed (a `gunzip -k`
    // or `zcat >` copy). The original is the first in path order, names of hand-made copies
    // (`.bak`, `-copy`, …) last; the others are copies of it.
    let mut sorted: Vec<&FileFacts> = facts.iter().collect();
    sorted.sort_by_key(|f| (is_copy_named(&f.path), f.path.as_str()));
    let mut first_with: HashMap<&str, &str> = HashMap::new();
    let mut first_content: HashMap<&str, &str> = HashMap::new();
    let mut duplicate_of: HashMap<&str, &str> = HashMap::new();
    let mut same_content: HashSet<&str> = HashSet::new();
    for f in sorted {
        if f.size == 0 || f.sha256.is_empty() {
            continue;
        }
        let content = f.content_sha256.as_deref();
        if let Some(first) = first_with.get(f.sha256.as_str()) {
            duplicate_of.insert(f.path.as_str(), first);
        } else if let Some(first) = content.and_then(|c| first_content.get(c)).copied() {
            duplicate_of.insert(f.path.as_str(), first);
            same_content.insert(f.path.as_str());
            first_with.insert(f.sha256.as_str(), first);
        } else {
            first_with.insert(f.sha256.as_str(), f.path.as_str());
            if let Some(c) = content {
                first_content.insert(c, f.path.as_str());
            }
        }
    }
    let groups = group_paths(
        facts
            .iter()
            .filter(|f| f.unreadable.is_none() && f.not_log.is_none())
            .map(|f| f.path.as_str()),
    );
    let stream_of: HashMap<&str, &str> = groups
        .iter()
        .flat_map(|(name, paths)| paths.iter().map(move |p| (*p, name.as_str())))
        .collect();
    let copies = Copies {
        duplicate_of: &duplicate_of,
        same_content: &same_content,
        stream_of: &stream_of,
    };
    groups
        .iter()
        .map(|(name, paths)| {
            let files: Vec<&FileFacts> = paths.iter().map(|p| by_path[p]).collect();
            build_one(name.clone(), files, &copies, policy)
        })
        .collect()
}

/// Which files are copies of another (same bytes, or same lines once decompressed), which
/// of those only by content, and the stream each file belongs to.
struct Copies<'m> {
    duplicate_of: &'m HashMap<&'m str, &'m str>,
    same_content: &'m HashSet<&'m str>,
    stream_of: &'m HashMap<&'m str, &'m str>,
}

impl Copies<'_> {
    /// The other stream whose files this stream's files holding lines all copy (the stream
    /// of the first such file's original), or `None` when a file holds lines of its own.
    fn whole_stream_copy_of(&self, name: &str, files: &[&FileFacts]) -> Option<String> {
        let mut original = None;
        for f in files.iter().filter(|f| f.size > 0 && f.lines > 0) {
            let first = self.duplicate_of.get(f.path.as_str())?;
            let stream = self.stream_of.get(first).copied().unwrap_or(first);
            original.get_or_insert(stream);
        }
        original.filter(|s| *s != name).map(str::to_string)
    }
}

fn build_one<'a>(
    name: String,
    files: Vec<&'a FileFacts>,
    copies: &Copies<'_>,
    policy: &PolicyInput,
) -> Stream<'a> {
    let duplicate_of = copies.duplicate_of;
    let copy_of = copies.whole_stream_copy_of(&name, &files);
    let mut hours: BTreeMap<i64, u64> = BTreeMap::new();
    let mut uncompressed_days: BTreeSet<i64> = BTreeSet::new();
    let mut source_votes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut r = StreamReport {
        name: name.clone(),
        source: "unknown".into(),
        files: Vec::new(),
        first_ts: None,
        last_ts: None,
        lines: 0,
        dated_lines: 0,
        days_covered: 0,
        span_days: 0,
        lines_per_day: BTreeMap::new(),
        missing_days: Vec::new(),
        damaged_files: Vec::new(),
        empty_files: Vec::new(),
        duplicate_files: Vec::new(),
        file_order: Vec::new(),
        silences: Vec::new(),
        backwards_timestamps: Vec::new(),
        future_timestamps: Vec::new(),
        lines_after_as_of: 0,
        event_driven: false,
        quiet_days: 0,
        online_compressed_days: Vec::new(),
        copy_of: copy_of.clone(),
        verdict: Verdict::Pass,
        reasons: Vec::new(),
        warnings: Vec::new(),
    };
    for f in &files {
        let dup = duplicate_of.get(f.path.as_str());
        if let Some(s) = f.source {
            *source_votes.entry(s.as_str()).or_default() += 1;
        }
        r.files.push(StreamFile {
            path: f.path.clone(),
            size: f.size,
            sha256: f.sha256.clone(),
            compression: f.compression.clone(),
            format: f.format.clone(),
            lines: f.lines,
            dated_lines: f.dated_lines,
            first_ts: f.first_ts,
            last_ts: f.last_ts,
            damage: f.damage.clone(),
        });
        r.lines += f.lines;
        if let Some(d) = &f.damage {
            r.damaged_files.push(DamagedFile {
                file: f.path.clone(),
                problem: d.clone(),
            });
        }
        if f.size == 0 || (f.lines == 0 && f.damage.is_none()) {
            r.empty_files.push(f.path.clone());
        }
        if let Some(first) = dup {
            r.duplicate_files.push(DuplicateFile {
                file: f.path.clone(),
                same_as: first.to_string(),
                sha256: f.sha256.clone(),
                same: if copies.same_content.contains(f.path.as_str()) {
                    "lines"
                } else {
                    "bytes"
                }
                .into(),
            });
            // A copy adds no coverage and would double the counts.
            continue;
        }
        r.dated_lines += f.dated_lines;
        r.lines_after_as_of += f.after_as_of;
        for (h, n) in &f.hours {
            *hours.entry(*h).or_default() += n;
            if !f.is_compressed() {
                uncompressed_days.insert(h.div_euclid(24));
            }
        }
        for t in [f.first_ts, f.last_ts].into_iter().flatten() {
            if r.first_ts.is_none_or(|x| t < x) {
                r.first_ts = Some(t);
            }
            if r.last_ts.is_none_or(|x| t > x) {
                r.last_ts = Some(t);
            }
        }
        if let Some(b) = &f.first_backwards {
            r.backwards_timestamps.push(TimeProblem {
                file: f.path.clone(),
                line: b.line,
                ts: b.ts,
                previous: b.previous,
                count: f.backwards,
            });
        }
        if let Some(b) = &f.first_future {
            r.future_timestamps.push(TimeProblem {
                file: f.path.clone(),
                line: b.line,
                ts: b.ts,
                previous: None,
                count: f.future,
            });
        }
    }
    if let Some((s, _)) = source_votes
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
    {
        r.source = s.to_string();
    }
    let mut days: BTreeMap<i64, u64> = BTreeMap::new();
    for (h, n) in &hours {
        *days.entry(h.div_euclid(24)).or_default() += n;
    }
    for (d, n) in &days {
        r.lines_per_day.insert(day_to_date(*d).to_string(), *n);
    }
    r.days_covered = days.len() as u64;
    let first_day = days.keys().next().copied();
    let last_day = days.keys().next_back().copied();
    let mut missing_count = 0u64;
    let mut missing_in_window = 0u64;
    let as_of_day = date_to_day(policy.as_of_date);
    let window_start = as_of_day - i64::from(policy.retention_days.max(1)) + 1;
    let mut first_missing_in_window = None;
    // Days without lines an event-driven stream may have without losing anything.
    let quiet = Quiet::of(
        &name,
        &r.source,
        &files,
        duplicate_of,
        &days,
        first_day,
        last_day,
    );
    let mut quiet_in_window = 0u64;
    if let (Some(a), Some(b)) = (first_day, last_day) {
        r.span_days = (b - a + 1) as u64;
        let mut prev = a;
        for &d in days.keys().skip(1) {
            // Days after the audit date are not missing (lines there are future timestamps).
            for m in (prev + 1..d).take_while(|m| *m <= as_of_day) {
                missing_count += 1;
                if m >= window_start && m <= as_of_day {
                    if quiet.allows(m) {
                        quiet_in_window += 1;
                    } else {
                        missing_in_window += 1;
                        first_missing_in_window.get_or_insert(m);
                    }
                }
                if r.missing_days.len() < MAX_LISTED_DAYS {
                    r.missing_days.push(day_to_date(m).to_string());
                }
            }
            prev = d;
        }
    }

    file_order(&files, duplicate_of, &mut r);
    silences(&hours, &days, &mut r);

    // Verdict.
    let retention = policy.retention_days;
    match (first_day, last_day) {
        // Its lines are judged in the stream it copies.
        _ if copy_of.is_some() => {}
        (None, _) | (_, None) => {
            let why = if r.lines == 0 {
                "it holds no lines at all".to_string()
            } else {
                format!(
                    "none of its {} lines carries a timestamp ecir can read, so what period it covers cannot be shown",
                    r.lines
                )
            };
            r.reasons
                .push(format!("The stream cannot show any coverage: {why}."));
        }
        (Some(a), Some(b)) => {
            let lead = (a - window_start).max(0);
            if lead > 0 && quiet.allows_run(window_start, a - 1) {
                quiet_in_window += lead as u64;
            } else if a > window_start {
                r.reasons.push(format!(
                    "It starts on {}, so it covers only {} of the {} days required (from {} to {}).",
                    day_to_date(a),
                    (as_of_day - a + 1).max(0),
                    retention,
                    day_to_date(window_start),
                    policy.as_of_date
                ));
            }
            // The last day with lines up to the audit date (later lines are in the future).
            let b = days.range(..=as_of_day).next_back().map_or(b, |(d, _)| *d);
            let trail = (as_of_day - 1 - b).max(0);
            if trail > 0 && quiet.allows_run(b + 1, as_of_day - 1) {
                quiet_in_window += trail as u64;
            } else if b < as_of_day - 1 {
                r.reasons.push(format!(
                    "Its last line is from {}, {} days before the audit date {}: logging stopped or the recent files are missing.",
                    day_to_date(b),
                    as_of_day - b,
                    policy.as_of_date
                ));
            }
            if missing_in_window > 0 {
                r.reasons.push(format!(
                    "{} day(s) inside the retention window have no line at all (first {}).",
                    missing_in_window,
                    day_to_date(first_missing_in_window.unwrap_or(a))
                ));
            }
            if policy.online_uncompressed && policy.online_days > 0 {
                let from = as_of_day - i64::from(policy.online_days) + 1;
                for (&d, _) in days.range(from..=as_of_day) {
                    if !uncompressed_days.contains(&d) {
                        r.online_compressed_days.push(day_to_date(d).to_string());
                    }
                }
                if !r.online_compressed_days.is_empty() {
                    r.reasons.push(format!(
                        "{} of the last {} days are kept only in compressed archives (first {}), but the policy wants them readable without decompression.",
                        r.online_compressed_days.len(),
                        policy.online_days,
                        r.online_compressed_days[0]
                    ));
                }
            }
        }
    }
    if !r.damaged_files.is_empty() && copy_of.is_none() {
        let (old, recent): (Vec<&DamagedFile>, Vec<&DamagedFile>) = r
            .damaged_files
            .iter()
            .partition(|d| lost_lines_end_before(&files, &d.file, duplicate_of, window_start));
        if !recent.is_empty() {
            r.reasons.push(format!(
                "{} file(s) are damaged and were not read whole ({}): lines after the damage are lost.",
                recent.len(),
                recent[0].file
            ));
        }
        if !old.is_empty() {
            r.warnings.push(format!(
                "{} damaged file(s) older than the retention window ({}): the lines lost there predate the window, so they do not fail the audit.",
                old.len(),
                old[0].file
            ));
        }
    }
    let future: u64 = r.future_timestamps.iter().map(|t| t.count).sum();
    if future > 0 {
        r.reasons.push(format!(
            "{future} line(s) are dated in the future, after the time this audit ran (first in {} line {}, {}): the clock or the log cannot be trusted (or --tz is wrong for times written without an offset).",
            r.future_timestamps[0].file, r.future_timestamps[0].line, r.future_timestamps[0].ts
        ));
    }
    if r.lines_after_as_of > 0 {
        r.warnings.push(format!(
            "{} line(s) are dated after the end of the audit ({}): outside this look-back audit, counted but not judged.",
            r.lines_after_as_of, policy.as_of_instant
        ));
    }
    r.event_driven = quiet.event_driven;
    r.quiet_days = quiet_in_window;
    if quiet_in_window > 0 && copy_of.is_none() {
        r.warnings.push(format!(
            "{quiet_in_window} day(s) of the retention window have no line but are not counted as lost: this {} log writes only when something happens, and {}.",
            if EVENT_DRIVEN_SOURCES.contains(&r.source.as_str()) {
                r.source.as_str()
            } else {
                "error"
            },
            quiet.why()
        ));
    }
    let before_window = missing_count.saturating_sub(missing_in_window + quiet_in_window);
    if before_window > 0 {
        r.warnings.push(format!(
            "{before_window} day(s) without lines before the retention window."
        ));
    }
    if !r.empty_files.is_empty() {
        r.warnings.push(format!(
            "{} empty file(s), e.g. {}.",
            r.empty_files.len(),
            r.empty_files[0]
        ));
    }
    let by_bytes = r.duplicate_files.iter().all(|d| d.same == "bytes");
    if let Some(original) = &copy_of {
        r.warnings.push(format!(
            "Every file of this stream holding lines is a {} of a file of stream {original} (e.g. {} = {}): its lines are judged there, and it adds no coverage of its own.",
            if by_bytes {
                "byte-for-byte copy"
            } else {
                "copy (byte-for-byte, or the same lines once decompressed)"
            },
            r.duplicate_files[0].file,
            r.duplicate_files[0].same_as
        ));
    } else if !r.duplicate_files.is_empty() {
        r.warnings.push(format!(
            "{} file(s) are {} of another (e.g. {} = {}); they add no coverage.",
            r.duplicate_files.len(),
            if by_bytes {
                "byte-for-byte copies"
            } else {
                "copies (byte-for-byte, or the same lines once decompressed)"
            },
            r.duplicate_files[0].file,
            r.duplicate_files[0].same_as
        ));
    }
    let joined = joined_copies(&name, &files);
    if !joined.is_empty() {
        r.warnings.push(format!(
            "{} file(s) named as hand-made copies (.bak, .orig, .old, .txt, ~, -copy) were read as part of this stream (e.g. {}).",
            joined.len(),
            joined[0].path
        ));
    }
    for o in &r.file_order {
        r.warnings.push(format!("{}: {}", o.file, o.detail));
    }
    let back: u64 = r.backwards_timestamps.iter().map(|t| t.count).sum();
    if back > 0 {
        let t = &r.backwards_timestamps[0];
        r.warnings.push(format!(
            "{back} line(s) are dated more than 5 minutes before the line above them (first {} line {}: {} after {}): the log was edited, merged or the clock was set back.",
            t.file,
            t.line,
            t.ts,
            t.previous.map(|p| p.to_string()).unwrap_or_default()
        ));
    }
    for s in &r.silences {
        r.warnings.push(format!(
            "No line from {} to {} ({} h) although the stream usually writes about {} lines in those hours.",
            s.from, s.to, s.hours, s.expected_lines
        ));
    }
    if !r.reasons.is_empty() {
        r.verdict = Verdict::Fail;
    }
    Stream {
        name,
        files,
        hours,
        days,
        report: r,
    }
}

/// Whether every line a damaged file may have lost is dated before `day`: the file's own
/// lines and the first line of the next file in rotation order (copies aside), which bounds
/// what the damage cut off, all fall before it. A damaged file without a later file
/// holding dated lines may have lost anything up to now.
fn lost_lines_end_before(
    files: &[&FileFacts],
    path: &str,
    duplicate_of: &HashMap<&str, &str>,
    day: i64,
) -> bool {
    let Some(at) = files.iter().position(|f| f.path == path) else {
        return false;
    };
    let before = |t: Option<Timestamp>| t.is_none_or(|t| local_hour(&t).div_euclid(24) < day);
    let next = files[at + 1..]
        .iter()
        .filter(|f| !duplicate_of.contains_key(f.path.as_str()))
        .find_map(|f| f.first_ts);
    next.is_some() && before(next) && before(files[at].last_ts)
}

fn file_order(files: &[&FileFacts], duplicate_of: &HashMap<&str, &str>, r: &mut StreamReport) {
    let mut prev: Option<&FileFacts> = None;
    for f in files {
        // A copy adds nothing; a hand-made copy's place in rotation order is a guess.
        if duplicate_of.contains_key(f.path.as_str()) || is_copy_named(&f.path) {
            continue;
        }
        let (Some(first), Some(last)) = (f.first_ts, f.last_ts) else {
            continue;
        };
        if let Some(p) = prev {
            let (pf, pl) = (p.first_ts.unwrap_or(first), p.last_ts.unwrap_or(last));
            if first.utc_ms < pl.utc_ms - BACKWARDS_TOLERANCE_MS {
                let backwards = last.utc_ms < pf.utc_ms + BACKWARDS_TOLERANCE_MS;
                r.file_order.push(FileOrderProblem {
                    file: f.path.clone(),
                    previous: p.path.clone(),
                    kind: if backwards { "backwards" } else { "overlap" }.into(),
                    detail: if backwards {
                        format!(
                            "its lines ({first} to {last}) are older than those of {} ({pf} to {pl}), which comes before it in rotation order",
                            p.path
                        )
                    } else {
                        format!(
                            "its lines ({first} to {last}) overlap those of {} ({pf} to {pl}), which comes before it in rotation order",
                            p.path
                        )
                    },
                });
            }
        }
        prev = Some(f);
    }
}

/// Mean lines per hour of the day, over the days that have lines.
fn rhythm(hours: &BTreeMap<i64, u64>, days: &BTreeMap<i64, u64>) -> Option<[f64; 24]> {
    if days.len() < RHYTHM_MIN_DAYS {
        return None;
    }
    let mut sum = [0f64; 24];
    for (h, n) in hours {
        sum[h.rem_euclid(24) as usize] += *n as f64;
    }
    let d = days.len() as f64;
    Some(sum.map(|s| s / d))
}

fn silences(hours: &BTreeMap<i64, u64>, days: &BTreeMap<i64, u64>, r: &mut StreamReport) {
    let Some(mean) = rhythm(hours, days) else {
        return;
    };
    let keys: Vec<i64> = hours.keys().copied().collect();
    for w in keys.windows(2) {
        let (from, to) = (w[0] + 1, w[1]);
        let len = to - from;
        if len < SILENCE_MIN_HOURS {
            continue;
        }
        // A whole day without lines is a missing day, reported as such.
        let first_full = (from + 23).div_euclid(24);
        if first_full * 24 + 24 <= to {
            continue;
        }
        let expected: f64 = (from..to).map(|h| mean[h.rem_euclid(24) as usize]).sum();
        if expected >= SILENCE_MIN_EXPECTED && r.silences.len() < MAX_LISTED {
            r.silences.push(Silence {
                from: hour_label(from),
                to: hour_label(to),
                hours: len as u32,
                expected_lines: expected.round() as u64,
            });
        }
    }
}

/// Sources that write only when something happens (a login, an error, a blocked request), as
/// opposed to access logs, which a live shop writes every day.
pub const EVENT_DRIVEN_SOURCES: [&str; 3] = ["admin-login", "app", "waf"];

/// Whether a stream writes only when something happens: its source is one of
/// [`EVENT_DRIVEN_SOURCES`], its files are web-server error logs, or its name says `error`.
pub fn is_event_driven(name: &str, source: &str, files: &[&FileFacts]) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
    EVENT_DRIVEN_SOURCES.contains(&source)
        || base.contains("error")
        || files
            .iter()
            .any(|f| f.format.ends_with("error-log") || f.format.ends_with("-error"))
}

/// When an event-driven stream may have days without lines without having lost any: the
/// rotated files for those days exist and are empty (counted in rotation order between the
/// files with lines around them: at least one per quiet day), or the stream is sparse by
/// nature ([`expects_every_day`] is false) and the quiet spell is no longer than the longest
/// one between its own days with lines (for the days before its first line and after its
/// last; between them any quiet day is allowed). Streams that are not event-driven (access
/// logs) allow none.
struct Quiet {
    event_driven: bool,
    sparse: bool,
    /// Median lines on a day with lines.
    median: u64,
    /// Longest run of days without lines between two days with lines.
    longest: i64,
    /// Runs of empty rotated files: last day with lines before, first day after, how many.
    empty_runs: Vec<(Option<i64>, Option<i64>, i64)>,
    /// Whether the last answer leaned on empty rotations (for the note).
    used_empty: std::cell::Cell<bool>,
    used_sparse: std::cell::Cell<bool>,
}

impl Quiet {
    fn of(
        name: &str,
        source: &str,
        files: &[&FileFacts],
        duplicate_of: &HashMap<&str, &str>,
        days: &BTreeMap<i64, u64>,
        first_day: Option<i64>,
        last_day: Option<i64>,
    ) -> Quiet {
        let span = match (first_day, last_day) {
            (Some(a), Some(b)) => (b - a + 1) as u64,
            _ => 0,
        };
        let mut counts: Vec<u64> = days.values().copied().collect();
        counts.sort_unstable();
        let median = counts
            .get(counts.len().saturating_sub(1) / 2)
            .copied()
            .unwrap_or(0);
        let keys: Vec<i64> = days.keys().copied().collect();
        let longest = keys.windows(2).map(|w| w[1] - w[0] - 1).max().unwrap_or(0);
        let mut empty_runs = Vec::new();
        let mut prev: Option<i64> = None;
        let mut empties = 0i64;
        for f in files {
            if duplicate_of.contains_key(f.path.as_str()) || is_copy_named(&f.path) {
                continue;
            }
            if f.lines == 0 && f.damage.is_none() {
                empties += 1;
                continue;
            }
            let (Some(first), Some(last)) = (f.first_ts, f.last_ts) else {
                continue;
            };
            if empties > 0 {
                empty_runs.push((prev, Some(local_hour(&first).div_euclid(24)), empties));
            }
            empties = 0;
            let l = local_hour(&last).div_euclid(24);
            prev = Some(prev.map_or(l, |p| p.max(l)));
        }
        if empties > 0 {
            empty_runs.push((prev, None, empties));
        }
        Quiet {
            event_driven: is_event_driven(name, source, files),
            sparse: !expects_daily(days, span),
            median,
            longest,
            empty_runs,
            used_empty: Default::default(),
            used_sparse: Default::default(),
        }
    }

    /// Whether empty rotated files account for day `m`.
    fn empty_rotation(&self, m: i64) -> bool {
        self.empty_runs.iter().any(|&(p, n, c)| match (p, n) {
            (Some(p), Some(n)) => p < m && m < n && c >= n - p - 1,
            (None, Some(n)) => m < n && n - m <= c,
            (Some(p), None) => m > p && m - p <= c,
            (None, None) => false,
        })
    }

    /// Whether day `m`, between two days with lines, may be quiet.
    fn allows(&self, m: i64) -> bool {
        if !self.event_driven {
            return false;
        }
        if self.empty_rotation(m) {
            self.used_empty.set(true);
            return true;
        }
        if self.sparse {
            self.used_sparse.set(true);
        }
        self.sparse
    }

    /// Whether the days `from..=to`, before the first or after the last line, may be quiet.
    fn allows_run(&self, from: i64, to: i64) -> bool {
        if !self.event_driven || from > to {
            return false;
        }
        if (from..=to).all(|m| self.empty_rotation(m)) {
            self.used_empty.set(true);
            return true;
        }
        if self.sparse && to - from < self.longest.max(1) {
            self.used_sparse.set(true);
            return true;
        }
        false
    }

    fn why(&self) -> String {
        let mut parts = Vec::new();
        if self.used_empty.get() {
            parts.push("the rotated files for such days exist and are empty".to_string());
        }
        if self.used_sparse.get() {
            parts.push(format!(
                "it is sparse by nature (on its median day with lines it writes {} line(s), fewer than {SILENCE_MIN_EXPECTED}, and on under {:.0} % of its days)",
                self.median,
                DAILY_SHARE * 100.0
            ));
        }
        parts.join("; ")
    }
}

/// Whether a stream writes every day (lines on [`DAILY_SHARE`] of the days of its span, over
/// at least [`RHYTHM_MIN_DAYS`] days), so a day without lines means something. A WAF or
/// error log that writes only when something happens does not.
pub fn writes_daily(s: &Stream<'_>) -> bool {
    writes_daily_by(&s.days, s.report.span_days)
}

fn writes_daily_by(days: &BTreeMap<i64, u64>, span_days: u64) -> bool {
    let span = span_days.max(1) as f64;
    days.len() >= RHYTHM_MIN_DAYS && (days.len() as f64) / span >= DAILY_SHARE
}

/// Whether a day without lines is a defect of this stream rather than a quiet day: it writes
/// every day ([`writes_daily`]), or on its (lower) median day with lines, over at least two
/// days, it writes at least [`SILENCE_MIN_EXPECTED`] lines (the median, so a burst of attacks
/// in a WAF log does not make its quiet days look like losses; the lower one, so two days
/// must both be busy).
pub fn expects_every_day(s: &Stream<'_>) -> bool {
    expects_daily(&s.days, s.report.span_days)
}

fn expects_daily(days: &BTreeMap<i64, u64>, span_days: u64) -> bool {
    if writes_daily_by(days, span_days) {
        return true;
    }
    if days.len() < 2 {
        return false;
    }
    let mut counts: Vec<u64> = days.values().copied().collect();
    counts.sort_unstable();
    counts[(counts.len() - 1) / 2] as f64 >= SILENCE_MIN_EXPECTED
}

/// Periods inside the retention window (`window`: first and last day, inclusive) where a
/// stream that writes every day is silent while another has lines.
pub fn coverage_gaps(streams: &[Stream<'_>], window: (i64, i64)) -> Vec<CoverageGap> {
    let mut out = Vec::new();
    for (bi, b) in streams.iter().enumerate() {
        if !writes_daily(b) {
            continue;
        }
        // Days where B is silent and some other stream has lines.
        let mut other_days: BTreeSet<i64> = BTreeSet::new();
        for (ai, a) in streams.iter().enumerate() {
            if ai != bi {
                other_days.extend(
                    a.days
                        .range(window.0..=window.1)
                        .map(|(d, _)| *d)
                        .filter(|d| !b.days.contains_key(d)),
                );
            }
        }
        let mut runs: Vec<(i64, i64)> = Vec::new();
        for d in other_days {
            match runs.last_mut() {
                Some((_, end)) if *end + 1 == d => *end = d,
                _ => runs.push((d, d)),
            }
        }
        let mut listed = 0;
        for (from, to) in runs {
            if listed >= MAX_LISTED {
                break;
            }
            if let Some((a, n)) = busiest(streams, bi, |s| {
                s.days.range(from..=to).map(|(_, n)| n).sum()
            }) {
                out.push(CoverageGap {
                    stream: b.name.clone(),
                    from: day_to_date(from).to_string(),
                    to: day_to_date(to).to_string(),
                    while_: a,
                    while_lines: n,
                    unit: "days".into(),
                });
                listed += 1;
            }
        }
        // Silences inside days, where another stream had lines in those hours.
        for s in &b.report.silences {
            let (Some(from), Some(to)) = (parse_hour(&s.from), parse_hour(&s.to)) else {
                continue;
            };
            if from.div_euclid(24) < window.0 || from.div_euclid(24) > window.1 {
                continue;
            }
            if let Some((a, n)) = busiest(streams, bi, |x| {
                x.hours.range(from..to).map(|(_, n)| n).sum()
            }) {
                out.push(CoverageGap {
                    stream: b.name.clone(),
                    from: s.from.clone(),
                    to: s.to.clone(),
                    while_: a,
                    while_lines: n,
                    unit: "hours".into(),
                });
            }
        }
    }
    out
}

/// Hour index (hours since the epoch, local) of a `YYYY-MM-DDTHH:00` label.
pub fn parse_hour(s: &str) -> Option<i64> {
    let dt = NaiveDateTime::parse_from_str(&format!("{s}:00"), "%Y-%m-%dT%H:%M:%S").ok()?;
    Some(dt.and_utc().timestamp().div_euclid(3600))
}

/// The other stream with the most lines by `count` (ties: first by name), if any has lines.
fn busiest(
    streams: &[Stream<'_>],
    skip: usize,
    count: impl Fn(&Stream<'_>) -> u64,
) -> Option<(String, u64)> {
    let mut best: Option<(String, u64)> = None;
    for (i, s) in streams.iter().enumerate() {
        if i == skip {
            continue;
        }
        let n = count(s);
        if n > 0 && best.as_ref().is_none_or(|(_, m)| n > *m) {
            best = Some((s.name.clone(), n));
        }
    }
    best
}
