//! Reading one input file end to end: open, sniff, detect the format, parse (in parallel
//! chunks for large plain files), account for every line, and hash for the chain of custody.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};

use ecir_audit::scan_findings::{edge_text, EDGE_TEXT_BYTES};
use ecir_audit::HourTally;
use ecir_detect::{DetectConfig, DetectorSet, Origin};
use ecir_formats::{skip, Chosen, EventSink, Parser};
use ecir_input::{
    after_nul_padding, for_each_line_in, newline_count, open_input, InputFile, OpenInput,
};
use ecir_model::report::SkippedSample;
use ecir_model::{Event, InputSummary, SourceKind, Timestamp};

use crate::traffic::Traffic;
use crate::{Progress, ScanOptions};

/// Skipped lines kept as samples per file.
const MAX_SAMPLES: usize = 5;
/// Bytes looked at for format detection.
const SAMPLE_BYTES: usize = 256 * 1024;

pub(crate) struct FileEnv<'a> {
    pub opts: &'a ScanOptions,
    pub forced: Option<Chosen>,
    pub config: &'a Arc<DetectConfig>,
    pub progress: &'a Progress,
}

/// Detector and traffic state handed from one file to the next one a worker reads, so that a
/// run of files builds state (and its caches) once, as a run of chunks does within a file.
pub(crate) type Carried = (DetectorSet, Traffic);

/// What one file contributed (with the state carried into it).
pub struct FileResult {
    pub summary: InputSummary,
    pub detectors: DetectorSet,
    pub traffic: Traffic,
    /// Dated lines per local hour (hours since the epoch in each line's own offset) with the
    /// first and last line of each, for the `log-integrity` findings; bounded by the hours the
    /// file spans, not by its lines.
    pub hours: BTreeMap<i64, HourTally>,
}

/// Accounting and detection over a run of consecutive chunks (and files); merges in order.
struct Work<'a> {
    file: &'a Arc<str>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    detectors: DetectorSet,
    traffic: Traffic,
    lines: u64,
    parsed: u64,
    events: u64,
    skipped: u64,
    filtered: u64,
    by_reason: BTreeMap<&'static str, u64>,
    samples: Vec<SkippedSample>,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    /// Dated lines per local hour; the current run of lines in one hour is counted in `cur`
    /// and flushed when the hour changes, so a line costs a comparison and a short copy
    /// (kept as the run's last line), not a map update.
    hours: BTreeMap<i64, HourTally>,
    cur: HourTally,
    cur_hour: i64,
    /// The last dated line of the current run (up to one byte past `EDGE_TEXT_BYTES`, so a
    /// cut shows).
    cur_last_raw: Vec<u8>,
    /// Lines holding several records separated by bare CRs.
    split: SplitTally,
}

/// Lines whose records were split at bare carriage returns, for the file's warnings.
#[derive(Default)]
struct SplitTally {
    /// Lines split, and the records found on them.
    lines: u64,
    records: u64,
    /// The first such line.
    first_line: Option<u64>,
    /// Records after a line's first that could not be read, by reason.
    unread_by_reason: BTreeMap<&'static str, u64>,
    /// The first line too long to read that holds a CR (a file with CR-only line ends).
    overlong_with_cr: Option<u64>,
    /// Lines read from after a leading run of NUL bytes (crash padding, see
    /// [`after_nul_padding`]), the NUL bytes passed over, and the first such line.
    nul_padded: u64,
    nul_bytes: u64,
    first_nul_padded: Option<u64>,
}

impl SplitTally {
    fn merge(&mut self, o: SplitTally) {
        self.lines += o.lines;
        self.records += o.records;
        self.first_line = min_some(self.first_line, o.first_line);
        self.overlong_with_cr = min_some(self.overlong_with_cr, o.overlong_with_cr);
        self.nul_padded += o.nul_padded;
        self.nul_bytes += o.nul_bytes;
        self.first_nul_padded = min_some(self.first_nul_padded, o.first_nul_padded);
        for (r, n) in o.unread_by_reason {
            *self.unread_by_reason.entry(r).or_default() += n;
        }
    }

    /// What the reader should know, if anything happened.
    fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let unread: u64 = self.unread_by_reason.values().sum();
        if self.first_line.is_none() && unread > 0 {
            // Records of a JSON document sharing a line with a record read before them.
            w.push(format!(
                "{unread} record{} on lines already counted could not be read ({}), counted in extra_skipped_by_reason",
                if unread == 1 { "" } else { "s" },
                self.unread_reasons()
            ));
        }
        if let Some(first) = self.first_line {
            let mut msg = format!(
                "{} line{} (first: line {first}) held {} records separated by a bare carriage return (CR without LF); each record was read on its own and is cited by its line's number",
                self.lines,
                if self.lines == 1 { "" } else { "s" },
                self.records,
            );
            if unread > 0 {
                msg.push_str(&format!(
                    "; {unread} of them could not be read ({}), counted in extra_skipped_by_reason",
                    self.unread_reasons()
                ));
            }
            w.push(msg);
        }
        if let Some(first) = self.first_nul_padded {
            w.push(format!(
                "{} line{} (first: line {first}) began with NUL bytes ({} in all), as a crash or power loss leaves them; each was read from its first other byte, and evidence and skipped samples show the text from there",
                self.nul_padded,
                if self.nul_padded == 1 { "" } else { "s" },
                self.nul_bytes,
            ));
        }
        if let Some(line) = self.overlong_with_cr {
            w.push(format!(
                "line {line} is longer than ecir reads ({} KiB) and holds carriage returns: the file may end its lines with CR alone (classic Mac); hint: convert a copy with `tr '\\r' '\\n' < FILE > COPY` and scan the copy",
                ecir_input::MAX_LINE_LEN / 1024
            ));
        }
        w
    }
}

impl SplitTally {
    /// `reason count` for each reason records could not be read.
    fn unread_reasons(&self) -> String {
        let reasons: Vec<String> = self
            .unread_by_reason
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        reasons.join(", ")
    }
}

fn min_some(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

impl<'a> Work<'a> {
    fn new(file: &'a Arc<str>, env: &FileEnv<'_>) -> Self {
        Work::continuing(file, env, None)
    }

    /// A file's accounting, with the detector and traffic state of the files before it in
    /// the same run (or fresh state).
    fn continuing(file: &'a Arc<str>, env: &FileEnv<'_>, carried: Option<Carried>) -> Self {
        let (detectors, traffic) =
            carried.unwrap_or_else(|| (DetectorSet::new(env.config), Traffic::default()));
        Work {
            file,
            since: env.opts.since,
            until: env.opts.until,
            detectors,
            traffic,
            lines: 0,
            parsed: 0,
            events: 0,
            skipped: 0,
            filtered: 0,
            by_reason: BTreeMap::new(),
            samples: Vec::new(),
            first: None,
            last: None,
            hours: BTreeMap::new(),
            cur: HourTally::default(),
            cur_hour: 0,
            cur_last_raw: Vec::new(),
            split: SplitTally::default(),
        }
    }

    /// Gives back what memory the detector and traffic state can while this run waits to
    /// be merged (see [`ecir_detect::DetectorState::park`]).
    fn park(&mut self) {
        self.detectors.park();
        self.traffic.park();
    }

    #[inline]
    fn count_hour(&mut self, t: &Timestamp, line: u64, raw: &[u8]) {
        let h = ecir_audit::facts::local_hour(t);
        if h != self.cur_hour || self.cur.lines == 0 {
            self.flush_hour();
            self.cur_hour = h;
            self.cur.first_line = line;
            self.cur.first_ts = Some(*t);
            self.cur.first_text = edge_text(raw);
        }
        self.cur.lines += 1;
        self.cur.last_line = line;
        self.cur.last_ts = Some(*t);
        self.cur_last_raw.clear();
        self.cur_last_raw
            .extend_from_slice(&raw[..raw.len().min(EDGE_TEXT_BYTES + 1)]);
    }

    fn flush_hour(&mut self) {
        if self.cur.lines > 0 {
            let mut run = std::mem::take(&mut self.cur);
            run.last_text = edge_text(&self.cur_last_raw);
            self.hours.entry(self.cur_hour).or_default().merge(run);
        }
    }

    /// Per-hour tallies, with the pending run flushed.
    fn take_hours(&mut self) -> BTreeMap<i64, HourTally> {
        self.flush_hour();
        std::mem::take(&mut self.hours)
    }

    /// Feeds one physical line to the parser, handling lines too long to parse.
    #[inline]
    fn line(&mut self, parser: &mut dyn Parser, number: u64, bytes: &[u8], too_long: bool) {
        self.lines += 1;
        if too_long {
            if self.split.overlong_with_cr.is_none() && memchr::memchr(b'\r', bytes).is_some() {
                self.split.overlong_with_cr = Some(number);
            }
            self.skip(number, skip::TOO_LONG, bytes);
        } else {
            let record = after_nul_padding(bytes);
            if record.len() < bytes.len() {
                self.split.nul_padded += 1;
                self.split.nul_bytes += (bytes.len() - record.len()) as u64;
                self.split.first_nul_padded.get_or_insert(number);
            }
            parser.feed(number, record, self);
        }
    }

    fn merge(&mut self, mut o: Work<'a>) {
        self.flush_hour();
        for (h, t) in o.take_hours() {
            self.hours.entry(h).or_default().merge(t);
        }
        self.detectors.merge(o.detectors);
        self.traffic.merge(o.traffic);
        self.lines += o.lines;
        self.parsed += o.parsed;
        self.events += o.events;
        self.skipped += o.skipped;
        self.filtered += o.filtered;
        for (r, n) in o.by_reason {
            *self.by_reason.entry(r).or_default() += n;
        }
        self.split.merge(o.split);
        self.samples.extend(o.samples);
        self.samples.sort_by_key(|s| s.line);
        self.samples.truncate(MAX_SAMPLES);
        for t in [o.first, o.last].into_iter().flatten() {
            self.span(t);
        }
    }

    fn span(&mut self, t: Timestamp) {
        if self.first.is_none_or(|f| t < f) {
            self.first = Some(t);
        }
        if self.last.is_none_or(|l| t > l) {
            self.last = Some(t);
        }
    }
}

impl EventSink for Work<'_> {
    #[inline]
    fn event(&mut self, ev: &Event<'_>, line: u64, raw: &[u8]) {
        self.parsed += 1;
        self.record(ev, line, raw, true);
    }

    fn extra_event(&mut self, ev: &Event<'_>, line: u64, raw: &[u8]) {
        self.record(ev, line, raw, false);
    }

    fn skip(&mut self, line: u64, reason: &'static str, raw: &[u8]) {
        self.skipped += 1;
        *self.by_reason.entry(reason).or_default() += 1;
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(SkippedSample {
                line,
                reason: reason.to_string(),
                // 512 bytes at most, `…` when cut.
                text: edge_text(raw),
            });
        }
    }

    fn absorbed(&mut self, n: u64) {
        self.parsed += n;
    }

    fn extra_skip(&mut self, _line: u64, reason: &'static str, _raw: &[u8]) {
        *self.split.unread_by_reason.entry(reason).or_default() += 1;
    }

    fn split_at_cr(&mut self, line: u64, records: u64) {
        self.split.lines += 1;
        self.split.records += records;
        self.split.first_line = min_some(self.split.first_line, Some(line));
    }
}

impl Work<'_> {
    /// One event; `new_line` when it also accounts for its line (per-hour line tallies).
    #[inline]
    fn record(&mut self, ev: &Event<'_>, line: u64, raw: &[u8], new_line: bool) {
        self.events += 1;
        if let Some(t) = ev.ts {
            self.span(t);
            if new_line {
                self.count_hour(&t, line, raw);
            }
            // Compare instants only: the same instant written in another offset is inside.
            if self.since.is_some_and(|s| t.utc_ms < s.utc_ms)
                || self.until.is_some_and(|u| t.utc_ms > u.utc_ms)
            {
                self.filtered += 1;
                return;
            }
        }
        self.traffic.observe(ev);
        let origin = Origin {
            file: self.file,
            line,
            raw,
        };
        self.detectors.observe(ev, &origin);
    }
}

/// Bytes of a compressed file decompressed to tell which kind of log it is before the run.
const SAMPLE_GZIP_SURVEY_BYTES: usize = 4 << 20;
/// Lines of a compressed file held while its sample is gathered, at most (blank lines cost
/// a few dozen bytes each).
const SAMPLE_BUFFERED_LINES: usize = 200_000;
/// Bytes kept of a line too long to parse while the sample is gathered: more than its
/// skipped sample shows.
const LONG_LINE_KEPT: usize = 4096;

/// Bytes of a file's start searched for sample lines, at most. Lines too long to parse and
/// blank lines are passed over without counting against [`SAMPLE_BYTES`]: they say nothing
/// about the format, and a few records padded past the line limit at the top of a file
/// (a POST body in a WAF audit log) would otherwise use up the sample and leave the whole
/// file `unknown`.
const SAMPLE_SEARCH_BYTES: usize = 64 << 20;

/// How much of a file's start its format sample has taken: the lines that can show the
/// format (not cut at the line limit, not blank) and their bytes, and all bytes searched.
#[derive(Default)]
struct SampleBudget {
    lines: usize,
    bytes: usize,
    searched: usize,
}

impl SampleBudget {
    /// Counts one line as delivered (cut at the line limit when `too_long`); whether it can
    /// show the format.
    fn count(&mut self, bytes: &[u8], too_long: bool) -> bool {
        self.searched += bytes.len() + 1;
        let shows = !too_long && !bytes.iter().all(u8::is_ascii_whitespace);
        if shows {
            self.lines += 1;
            self.bytes += bytes.len();
        }
        shows
    }

    /// Whether the sample is complete: twice the lines a detection reads, about
    /// [`SAMPLE_BYTES`] of them, or [`SAMPLE_SEARCH_BYTES`] searched.
    fn full(&self) -> bool {
        self.lines >= ecir_formats::SAMPLE_LINES * 2
            || self.bytes >= SAMPLE_BYTES
            || self.searched >= SAMPLE_SEARCH_BYTES
    }
}

/// The first lines of `bytes` that can show its format, until the [`SampleBudget`] is full.
fn sample_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let limit = bytes.len().min(SAMPLE_SEARCH_BYTES);
    let (mut v, mut budget, mut at) = (Vec::new(), SampleBudget::default(), 0usize);
    while at < limit && !budget.full() {
        let end = match memchr::memchr(b'\n', &bytes[at..limit]) {
            Some(i) => at + i,
            // The last line, or one running past what is searched.
            None if limit == bytes.len() => bytes.len(),
            None => break,
        };
        for_each_line_in(&bytes[at..end], 1, |l| {
            if budget.count(l.bytes, l.too_long) {
                v.push(l.bytes);
            }
        });
        at = end + 1;
    }
    v
}

/// The kind of evidence `input` holds, from the same sample its format detection reads (a
/// cheap look before the run, so detectors know which sources the run has).
pub(crate) fn survey_source(input: &InputFile, forced: Option<Chosen>) -> Option<SourceKind> {
    if let Some(c) = forced {
        return Some(c.format.source());
    }
    match open_input(&input.path).ok()? {
        OpenInput::Mapped { map, .. } => {
            let bytes: &[u8] = map.as_ref().map_or(&[], |m| &m[..]);
            ecir_formats::detect(&sample_lines(bytes)).map(|c| c.format.source())
        }
        OpenInput::Gzip { file, .. } => {
            use std::io::Read;
            let mut head = Vec::with_capacity(SAMPLE_BYTES);
            let decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
            let _ = decoder
                .take(SAMPLE_GZIP_SURVEY_BYTES as u64)
                .read_to_end(&mut head);
            ecir_formats::detect(&sample_lines(&head)).map(|c| c.format.source())
        }
        OpenInput::Unsupported { .. } => None,
    }
}

/// The error of a mapped file whose pages could no longer be read while it was read (it
/// shrank, or the device failed).
const SHRANK: &str = "part of the file could no longer be read while it was scanned (it shrank, e.g. truncated by log rotation with copytruncate, or the device failed): those pages read as zeros and were skipped; scan a copy made after rotation";

pub(crate) fn process(
    input: &InputFile,
    env: &FileEnv<'_>,
    carried: Option<Carried>,
) -> FileResult {
    let display: Arc<str> = Arc::from(input.display());
    let raw_name = ecir_input::os_bytes(input.path.as_os_str());
    let mut summary = InputSummary {
        path: display.to_string(),
        path_bytes: std::str::from_utf8(&raw_name)
            .is_err()
            .then(|| ecir_input::hex(&raw_name)),
        bytes: input.size,
        compression: "none".into(),
        format: "unknown".into(),
        format_basis: "none".into(),
        source: SourceKind::Unknown.as_str().into(),
        ..Default::default()
    };
    let (mut work, chosen) = match open_input(&input.path) {
        Err(e) => {
            summary.errors.push(format!("cannot read: {e}"));
            (Work::continuing(&display, env, carried), None)
        }
        Ok(OpenInput::Mapped { map, size, file }) => {
            summary.bytes = size;
            let bytes: &[u8] = map.as_ref().map_or(&[], |m| &m[..]);
            let first = Work::continuing(&display, env, carried);
            let read = read_mapped(
                bytes,
                map.as_deref(),
                &file,
                &display,
                env,
                first,
                &mut summary,
            );
            if map.as_ref().is_some_and(|m| m.shrank()) {
                summary.errors.push(SHRANK.into());
            }
            read
        }
        Ok(OpenInput::Gzip { file, size }) => {
            summary.bytes = size;
            summary.compression = "gzip".into();
            read_gzip(file, &display, env, carried, &mut summary)
        }
        Ok(OpenInput::Unsupported { file, size, kind }) => {
            summary.bytes = size;
            summary.compression = kind.into();
            let (sha, n, err) = ecir_input::HashingReader::new(file).finish();
            summary.sha256 = sha;
            summary.bytes_read = n;
            summary.errors.push(format!(
                "compressed with {kind}, which ecir does not read; the file was hashed but not analysed"
            ));
            if let Some(e) = err {
                summary.errors.push(format!("read error: {e}"));
            }
            (Work::continuing(&display, env, carried), None)
        }
    };
    env.progress.files_done.fetch_add(1, Ordering::Relaxed);
    finish_summary(&mut summary, &work, chosen, env);
    let hours = work.take_hours();
    FileResult {
        summary,
        detectors: work.detectors,
        traffic: work.traffic,
        hours,
    }
}

fn finish_summary(s: &mut InputSummary, w: &Work<'_>, chosen: Option<Chosen>, env: &FileEnv<'_>) {
    if let Some(c) = chosen {
        s.format = c.name().into();
        s.format_confidence = (c.confidence * 1000.0).round() / 1000.0;
        s.format_basis = if env.forced.is_some() {
            "forced"
        } else {
            "detected"
        }
        .into();
        s.source = c.format.source().as_str().into();
    } else if w.lines > 0 && s.errors.is_empty() {
        s.warnings.push(
            "format not recognised: lines counted as skipped (unknown-format); `ecir formats` lists the formats ecir reads, `--format NAME` forces one".into(),
        );
    }
    s.lines = w.lines;
    s.parsed = w.parsed;
    s.skipped = w.skipped;
    s.filtered_out = w.filtered;
    s.skipped_by_reason = w
        .by_reason
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    s.extra_skipped_by_reason = w
        .split
        .unread_by_reason
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    s.warnings.extend(w.split.warnings());
    s.skipped_samples = w.samples.clone();
    s.first_ts = w.first;
    s.last_ts = w.last;
}

/// Lines of a file whose format is unknown: counted and sampled, not parsed.
struct Unknown;
impl Parser for Unknown {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink) {
        sink.skip(line, skip::UNKNOWN_FORMAT, bytes);
    }
}

fn choose(sample: &[&[u8]], env: &FileEnv<'_>) -> Option<Chosen> {
    env.forced.or_else(|| ecir_formats::detect(sample))
}

/// Fewest chunks offered to another worker at once. Each run taken over holds a detector
/// state until it is merged (the card detector's alone keeps tens of MB of evidence lines),
/// so runs are not split finer than this: at most a few states are alive at once, and the
/// last runs of a file are not shared out chunk by chunk.
const MIN_TAKEOVER_CHUNKS: usize = 4;

/// Bytes the hashing pass reads at a time.
const HASH_BLOCK: usize = 1 << 20;

/// Bytes of a chunk mapped in, parsed and released at a time (then up to the next newline).
const PAGE_WINDOW: usize = 2 << 20;

/// Consecutive ranges covering `bytes`, each ending just after the first newline at or past
/// `size` bytes from its start (the last one at the end): whole lines, so reading the ranges
/// one after another gives the same lines as reading `bytes` at once.
fn windows(bytes: &[u8], size: usize) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= bytes.len() {
            return None;
        }
        let end = bytes
            .get(at + size..)
            .and_then(|rest| memchr::memchr(b'\n', rest))
            .map_or(bytes.len(), |i| at + size + i + 1);
        let w = at..end;
        at = end;
        Some(w)
    })
}

/// The line counts of a file's chunks, published in order by the hashing pass, so that a run
/// of chunks a worker takes over in the middle of the file knows its first line number.
struct ChunkLines {
    /// The counts published so far, chunk by chunk in order.
    counted: Mutex<Vec<u64>>,
    published: Condvar,
}

impl ChunkLines {
    fn new(chunks: usize) -> Self {
        ChunkLines {
            counted: Mutex::new(Vec::with_capacity(chunks)),
            published: Condvar::new(),
        }
    }

    /// Publishes the line count of the next chunk.
    fn publish(&self, lines: u64) {
        let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
        counted.push(lines);
        self.published.notify_all();
    }

    /// The first line number of `chunk`, once the chunks before it are counted. Only a run
    /// taken over by another worker asks, and the hashing pass runs ahead of parsing, so
    /// this rarely waits and never for long.
    fn first_line(&self, chunk: usize) -> u64 {
        let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
        while counted.len() < chunk {
            counted = self
                .published
                .wait(counted)
                .unwrap_or_else(|e| e.into_inner());
        }
        1 + counted[..chunk].iter().sum::<u64>()
    }
}

/// Reads the file in order with `pread` (not through the map, so hashing adds nothing to
/// resident memory), hashing every byte and counting each chunk's lines as it goes.
fn hash_and_count(
    file: &std::fs::File,
    bytes: &[u8],
    ranges: &[std::ops::Range<usize>],
    lines: &ChunkLines,
) -> Result<String, String> {
    let mut rest = CountRest {
        lines,
        bytes,
        ranges,
        next: 0,
    };
    let mut hasher = ecir_input::Sha256Stream::default();
    let mut buf = vec![0u8; HASH_BLOCK.min(bytes.len().max(1))];
    let mut at = 0usize;
    let mut last = b'\n';
    for (k, r) in ranges.iter().enumerate() {
        let mut newlines = 0u64;
        while at < r.end {
            let want = (r.end - at).min(buf.len());
            match read_at(file, &mut buf[..want], at as u64) {
                Ok(0) => {
                    return Err(format!(
                        "the file shrank while it was read: {at} of {} bytes hashed",
                        bytes.len()
                    ))
                }
                Ok(got) => {
                    let piece = &buf[..got];
                    hasher.update(piece);
                    newlines += memchr::memchr_iter(b'\n', piece).count() as u64;
                    last = piece[got - 1];
                    at += got;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read error after {at} bytes: {e}")),
            }
        }
        let unterminated = u64::from(!r.is_empty() && last != b'\n');
        lines.publish(newlines + unterminated);
        rest.next = k + 1;
    }
    Ok(hasher.finish_hex())
}

/// When dropped, publishes the line counts of the chunks the hashing pass did not count
/// (it stopped at a read error, or unwound) from the map, so no run waits for them.
struct CountRest<'r> {
    lines: &'r ChunkLines,
    bytes: &'r [u8],
    ranges: &'r [std::ops::Range<usize>],
    next: usize,
}

impl Drop for CountRest<'_> {
    fn drop(&mut self) {
        for r in &self.ranges[self.next..] {
            self.lines.publish(newline_count(&self.bytes[r.clone()]));
        }
    }
}

fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_at(buf, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        file.seek_read(buf, offset)
    }
}

/// What every run of chunks of one mapped file shares.
struct MappedRun<'r, 'a> {
    bytes: &'r [u8],
    map: Option<&'r memmap2::Mmap>,
    ranges: &'r [std::ops::Range<usize>],
    lines: &'r ChunkLines,
    chosen: Option<Chosen>,
    parse_ctx: &'r ecir_formats::ParseContext,
    display: &'a Arc<str>,
    env: &'r FileEnv<'r>,
}

/// A run's detector state and the line number after its last chunk.
type ChunkState<'a> = (Work<'a>, u64);

/// Chunks are folded in order with few states alive ([`crate::ordered`]): the hashing pass
/// reads the file on one worker while the others parse from the start, and when it is done
/// that worker takes over the second half of what is left.
impl<'a> crate::ordered::OrderedFold for MappedRun<'_, 'a> {
    type State = ChunkState<'a>;

    fn fresh(&self, at: usize) -> ChunkState<'a> {
        (Work::new(self.display, self.env), self.lines.first_line(at))
    }

    fn step(&self, (work, line): ChunkState<'a>, chunks: std::ops::Range<usize>) -> ChunkState<'a> {
        self.parse_chunks(chunks.start, chunks.end, work, line)
    }

    fn merge(&self, left: &mut ChunkState<'a>, right: ChunkState<'a>) {
        left.0.merge(right.0);
        left.1 = right.1;
    }

    fn min_offer(&self) -> usize {
        MIN_TAKEOVER_CHUNKS
    }

    fn park(&self, state: &mut ChunkState<'a>) {
        state.0.park();
    }
}

impl<'a> MappedRun<'_, 'a> {
    /// One parser per chunk (chunks start at record boundaries). A chunk is parsed in
    /// windows of about [`PAGE_WINDOW`] ending at a newline: each window's pages are mapped
    /// in one call before it is parsed and released from this process after (`MADV_DONTNEED`;
    /// they stay in the page cache), so about one window per worker is resident whatever
    /// the file's size.
    fn parse_chunks(
        &self,
        lo: usize,
        hi: usize,
        mut work: Work<'a>,
        mut line: u64,
    ) -> (Work<'a>, u64) {
        for r in &self.ranges[lo..hi] {
            let mut parser: Box<dyn Parser> = match self.chosen {
                Some(c) => c.format.parser(c.variant, self.parse_ctx),
                None => Box::new(Unknown),
            };
            let slice = &self.bytes[r.clone()];
            for w in windows(slice, PAGE_WINDOW) {
                if let Some(m) = self.map {
                    ecir_input::prefault_pages(m, r.start + w.start, w.len());
                }
                line += for_each_line_in(&slice[w.clone()], line, |l| {
                    work.line(parser.as_mut(), l.number, l.bytes, l.too_long)
                });
                if let Some(m) = self.map {
                    ecir_input::release_pages(m, r.start + w.start, w.len());
                }
            }
            // A few pages at window edges are mapped again after their window was released
            // (the search for the next window's end, its first line): the whole chunk is
            // released once more when it is done.
            parser.finish(&mut work);
            if let Some(m) = self.map {
                ecir_input::release_pages(m, r.start, r.len());
            }
            self.env
                .progress
                .done_bytes
                .fetch_add(slice.len() as u64, Ordering::Relaxed);
        }
        (work, line)
    }
}

fn read_mapped<'a>(
    bytes: &[u8],
    map: Option<&memmap2::Mmap>,
    file: &std::fs::File,
    display: &'a Arc<str>,
    env: &FileEnv<'_>,
    first: Work<'a>,
    summary: &mut InputSummary,
) -> (Work<'a>, Option<Chosen>) {
    let chosen = choose(&sample_lines(bytes), env);
    let chunk = env.opts.chunk_size.max(1024);
    let ranges = if bytes.len() > chunk + chunk / 2 {
        let pred = chosen.map(|c| c.format);
        let is_start = move |l: &[u8]| pred.is_none_or(|f| f.is_record_start(l));
        // Finding each cut touches a few pages, and the kernel maps a block around every
        // page touched (64 KiB, or a whole 2 MiB huge page of the page cache): released at
        // once, not when each chunk is done, or they would add from 16 to 512 MiB per 4 GiB
        // of file to the resident set.
        ecir_input::split_chunks_then(bytes, chunk, Some(&is_start), &mut |r| {
            if let Some(m) = map {
                ecir_input::release_span(m, r);
            }
        })
    } else {
        std::iter::once(0..bytes.len()).collect()
    };
    let lines = ChunkLines::new(ranges.len());
    let parse_ctx = with_mtime(&env.opts.parse, display);
    let runs = MappedRun {
        bytes,
        map,
        ranges: &ranges,
        lines: &lines,
        chosen,
        parse_ctx: &parse_ctx,
        display,
        env,
    };
    // The hashing pass reads the file in order on one worker while the others parse from
    // the start; when it is done that worker takes over the second half of what is left.
    let (hashed, work) = rayon::join(
        || hash_and_count(file, bytes, &ranges, &lines),
        || crate::ordered::fold_in_order(&runs, ranges.len(), (first, 1)).0,
    );
    match hashed {
        Ok(sha) => summary.sha256 = sha,
        Err(e) => summary.errors.push(e),
    }
    summary.bytes_read = bytes.len() as u64;
    (work, chosen)
}

/// A line of a compressed file held while its format sample is gathered.
enum Buffered {
    /// Its number, bytes and whether it was too long to parse.
    Line(u64, Vec<u8>, bool),
    /// A run of empty lines.
    Empty { first: u64, count: u64 },
}

fn read_gzip<'a>(
    file: std::fs::File,
    display: &'a Arc<str>,
    env: &FileEnv<'_>,
    carried: Option<Carried>,
    summary: &mut InputSummary,
) -> (Work<'a>, Option<Chosen>) {
    enum State {
        Sampling(Vec<Buffered>, SampleBudget),
        Parsing(Box<dyn Parser>),
    }
    let mut work = Work::continuing(display, env, carried);
    let mut state = State::Sampling(Vec::new(), SampleBudget::default());
    let mut chosen: Option<Chosen> = None;
    let parse_ctx = &with_mtime(&env.opts.parse, display);
    let start = |buffered: Vec<Buffered>, work: &mut Work<'_>, chosen: &mut Option<Chosen>| {
        let sample: Vec<&[u8]> = buffered
            .iter()
            .filter_map(|b| match b {
                Buffered::Line(_, bytes, false) => Some(bytes.as_slice()),
                _ => None,
            })
            .collect();
        *chosen = choose(&sample, env);
        let mut parser: Box<dyn Parser> = match chosen {
            Some(c) => c.format.parser(c.variant, parse_ctx),
            None => Box::new(Unknown),
        };
        for b in &buffered {
            match b {
                Buffered::Line(n, bytes, long) => work.line(parser.as_mut(), *n, bytes, *long),
                Buffered::Empty { first, count } => {
                    for n in *first..first + count {
                        work.line(parser.as_mut(), n, b"", false);
                    }
                }
            }
        }
        parser
    };
    let outcome = ecir_input::stream_gzip(file, |l| match &mut state {
        State::Parsing(p) => work.line(p.as_mut(), l.number, l.bytes, l.too_long),
        State::Sampling(buf, budget) => {
            // As for mapped files (`sample_lines`): long and blank lines do not count
            // against the sample. A long line is only ever skipped: its start (with a CR kept
            // when it held one, for the CR-only hint) is all that is buffered, and a run of
            // empty lines is one entry.
            match buf.last_mut() {
                Some(Buffered::Empty { first, count })
                    if l.bytes.is_empty() && !l.too_long && *first + *count == l.number =>
                {
                    *count += 1;
                }
                _ if l.bytes.is_empty() && !l.too_long => buf.push(Buffered::Empty {
                    first: l.number,
                    count: 1,
                }),
                _ if l.too_long => {
                    let mut kept = l.bytes[..l.bytes.len().min(LONG_LINE_KEPT)].to_vec();
                    if !kept.contains(&b'\r') && memchr::memchr(b'\r', l.bytes).is_some() {
                        kept.push(b'\r');
                    }
                    buf.push(Buffered::Line(l.number, kept, true));
                }
                _ => buf.push(Buffered::Line(l.number, l.bytes.to_vec(), false)),
            }
            budget.count(l.bytes, l.too_long);
            if budget.full() || buf.len() >= SAMPLE_BUFFERED_LINES {
                let buffered = std::mem::take(buf);
                let p = start(buffered, &mut work, &mut chosen);
                state = State::Parsing(p);
            }
        }
    });
    let mut parser = match state {
        State::Parsing(p) => p,
        State::Sampling(buf, _) => start(buf, &mut work, &mut chosen),
    };
    parser.finish(&mut work);
    env.progress
        .done_bytes
        .fetch_add(outcome.bytes_read, Ordering::Relaxed);
    summary.sha256 = outcome.sha256;
    summary.bytes_read = outcome.bytes_read;
    summary.decompressed_bytes = Some(outcome.decompressed_bytes);
    if let Some(e) = outcome.error {
        summary.errors.push(e);
    }
    (work, chosen)
}

/// The run's parse settings plus this file's modification time (syslog year inference).
fn with_mtime(base: &ecir_formats::ParseContext, path: &str) -> ecir_formats::ParseContext {
    let mut c = base.clone();
    c.file_mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| Timestamp::new(d.as_millis() as i64, 0));
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, data: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("ecir-scan-{}-{name}", std::process::id()));
        std::fs::write(&p, data).unwrap();
        p
    }

    /// Three chunks of lines, the last one without a final newline.
    fn sample() -> (Vec<u8>, Vec<std::ops::Range<usize>>) {
        let mut bytes = Vec::new();
        for i in 0..3000 {
            bytes.extend_from_slice(format!("line {i} of the sample\n").as_bytes());
        }
        bytes.extend_from_slice(b"unterminated");
        let ranges = ecir_input::split_chunks(&bytes, 20_000, None);
        assert!(ranges.len() >= 3);
        (bytes, ranges)
    }

    #[test]
    fn windows_hold_whole_lines_and_give_the_same_lines() {
        let mut bytes = Vec::new();
        for i in 0..500 {
            let text = "x".repeat(i * 7 % 90);
            bytes.extend_from_slice(format!("line {i} {text}\r\n").as_bytes());
            if i == 250 {
                bytes.extend_from_slice(&[b'y'; 3000]);
                bytes.extend_from_slice(b"\n\n");
            }
        }
        bytes.extend_from_slice(b"unterminated");
        let lines = |b: &[u8], ws: &mut dyn Iterator<Item = std::ops::Range<usize>>| {
            let mut got = Vec::new();
            let mut n = 1;
            for w in ws {
                n += for_each_line_in(&b[w], n, |l| got.push((l.number, l.bytes.to_vec())));
            }
            got
        };
        let whole = lines(&bytes, &mut std::iter::once(0..bytes.len()));
        assert_eq!(whole.len(), 503);
        for size in [0, 1, 10, 100, 1000, 5000, 1 << 20] {
            let ws: Vec<_> = windows(&bytes, size).collect();
            assert_eq!(ws.first().map(|w| w.start), Some(0));
            assert_eq!(ws.last().map(|w| w.end), Some(bytes.len()));
            for pair in ws.windows(2) {
                assert_eq!(pair[0].end, pair[1].start, "size {size}: contiguous");
                assert_eq!(
                    bytes[pair[0].end - 1],
                    b'\n',
                    "size {size}: ends after a newline"
                );
                assert!(pair[0].len() > size, "size {size}: at least the size");
            }
            assert_eq!(lines(&bytes, &mut ws.into_iter()), whole, "size {size}");
        }
        assert_eq!(windows(b"", 10).count(), 0);
    }

    #[test]
    fn hashing_pass_counts_each_chunks_lines_and_hashes_every_byte() {
        let (bytes, ranges) = sample();
        let path = temp_file("whole", &bytes);
        let file = std::fs::File::open(&path).unwrap();
        let lines = ChunkLines::new(ranges.len());
        let sha = hash_and_count(&file, &bytes, &ranges, &lines).unwrap();
        assert_eq!(sha, ecir_input::sha256_hex(&bytes));
        let mut first = 1;
        for (k, r) in ranges.iter().enumerate() {
            assert_eq!(lines.first_line(k), first, "chunk {k}");
            first += newline_count(&bytes[r.clone()]);
        }
        assert_eq!(first, 3002);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_file_that_shrank_is_reported_and_line_numbers_still_come() {
        let (bytes, ranges) = sample();
        // The file on disk is shorter than the mapped bytes: reading stops early.
        let path = temp_file("short", &bytes[..bytes.len() / 3]);
        let file = std::fs::File::open(&path).unwrap();
        let lines = ChunkLines::new(ranges.len());
        let err = hash_and_count(&file, &bytes, &ranges, &lines).unwrap_err();
        assert!(err.contains("shrank"), "{err}");
        // Every chunk's first line is known (no run would wait forever) and right.
        let last = ranges.len() - 1;
        let want = 1 + ranges[..last]
            .iter()
            .map(|r| newline_count(&bytes[r.clone()]))
            .sum::<u64>();
        assert_eq!(lines.first_line(last), want);
        std::fs::remove_file(path).unwrap();
    }
}
