//! `ecir timeline`: every parsed event from every input on one time axis, streamed.
//!
//! Phase 1 parses each input (in parallel across files) with the same discovery, readers and
//! format detection as `ecir scan`, turns each event into an owned [`Record`], and writes
//! sorted runs to a spill directory in bounded chunks: a file already in time order becomes
//! one run; an out-of-order file becomes one run per chunk. Phase 2 k-way merges all runs by
//! (instant, file, line) — a total order, so the output does not depend on thread count — and
//! streams the result to a [`TimelineWriter`]. Memory is bounded by the chunk size per worker
//! and one buffered reader per run; it does not grow with the number of events.
//!
//! The caller chooses the spill directory and must keep it outside the evidence; this crate
//! creates a private subdirectory there and removes it when done. Inputs are only read.

pub mod record;
pub mod write;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ecir_formats::{Chosen, EventSink, ParseContext, Parser};
use ecir_input::{for_each_line_in, open_input, stream_gzip, OpenInput};
use ecir_model::{Event, SourceKind, Timestamp};
use rayon::prelude::*;

pub use record::Record;
pub use write::{csv_cell, OutputFormat, TimelineWriter, CSV_COLUMNS, ECS_VERSION};

/// What to put on the timeline.
#[derive(Clone, Debug)]
pub struct TimelineOptions {
    pub parse: ParseContext,
    /// Force an input format (`ecir formats`) instead of detecting it.
    pub format: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Keep only these client IPs (empty: all).
    pub ips: Vec<IpAddr>,
    /// Keep only these sources (empty: all).
    pub sources: Vec<SourceKind>,
    /// Keep only these (file as displayed, line) pairs, e.g. the events findings cite.
    pub only: Option<HashSet<(String, u64)>>,
    /// Paths this run writes; never read as input.
    pub exclude: Vec<PathBuf>,
    /// Where sorted runs are spilled (a private subdirectory is created and removed).
    pub spill_dir: PathBuf,
    /// Bytes of records a worker holds before it sorts and spills them.
    pub chunk_bytes: usize,
    /// Plain files larger than twice this are parsed in chunks of about this size in parallel.
    pub parse_chunk_bytes: usize,
    /// Worker threads (0: one per core).
    pub jobs: usize,
}

impl Default for TimelineOptions {
    fn default() -> Self {
        TimelineOptions {
            parse: ParseContext::default(),
            format: None,
            since: None,
            until: None,
            ips: Vec::new(),
            sources: Vec::new(),
            only: None,
            exclude: Vec::new(),
            spill_dir: std::env::temp_dir(),
            chunk_bytes: 32 << 20,
            parse_chunk_bytes: 32 << 20,
            jobs: 0,
        }
    }
}

/// Counts of what the timeline run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TimelineStats {
    pub files: u64,
    pub lines: u64,
    /// Events written.
    pub events: u64,
    /// Parsed events left out by the filters.
    pub filtered: u64,
    /// Parsed events without a timestamp (they cannot be placed on a time axis).
    pub untimed: u64,
    /// Lines that produced no event (unparseable, unknown format, too long…).
    pub skipped: u64,
    /// Sorted runs merged.
    pub runs: u64,
    /// Files whose events were not in time order.
    pub out_of_order_files: u64,
}

/// A problem with one input; the run goes on without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    pub path: String,
    pub message: String,
}

/// Errors that stop a timeline run.
#[derive(Debug)]
pub enum TimelineError {
    UnknownFormat(String),
    ThreadPool(String),
    Spill(String),
    Output(io::Error),
}

impl std::fmt::Display for TimelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimelineError::UnknownFormat(n) => write!(f, "unknown format '{n}'"),
            TimelineError::ThreadPool(e) => write!(f, "cannot start worker threads: {e}"),
            TimelineError::Spill(e) => write!(f, "temporary run files: {e}"),
            TimelineError::Output(e) => write!(f, "cannot write the timeline: {e}"),
        }
    }
}

impl std::error::Error for TimelineError {}

/// What a run produced besides the output.
#[derive(Debug, Default)]
pub struct TimelineOutcome {
    pub stats: TimelineStats,
    pub problems: Vec<InputProblem>,
}

/// Most runs merged at once; more are merged in passes.
const MAX_FAN_IN: usize = 64;

/// Removes the private spill directory when dropped.
struct SpillDir {
    path: PathBuf,
    next: AtomicU64,
}

impl SpillDir {
    fn create(parent: &Path) -> Result<SpillDir, TimelineError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = parent.join(format!(".ecir-timeline-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(|e| TimelineError::Spill(format!("{}: {e}", path.display())))?;
        Ok(SpillDir {
            path,
            next: AtomicU64::new(0),
        })
    }

    fn new_run(&self) -> io::Result<(PathBuf, BufWriter<File>)> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let p = self.path.join(format!("run-{n:06}.bin"));
        let f = File::create(&p)?;
        Ok((p, BufWriter::with_capacity(1 << 20, f)))
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Runs the timeline over `roots`, writing every kept event to `writer` in time order.
pub fn timeline<W: Write>(
    roots: &[PathBuf],
    opts: &TimelineOptions,
    writer: &mut TimelineWriter<W>,
) -> Result<TimelineOutcome, TimelineError> {
    let forced = match &opts.format {
        Some(n) => {
            Some(ecir_formats::by_name(n).ok_or_else(|| TimelineError::UnknownFormat(n.clone()))?)
        }
        None => None,
    };
    let discovered = ecir_input::discover(roots, &opts.exclude);
    let mut outcome = TimelineOutcome::default();
    for e in &discovered.errors {
        outcome.problems.push(InputProblem {
            path: ecir_input::path_text(&e.path),
            message: e.message.clone(),
        });
    }
    let files: Vec<String> = discovered.files.iter().map(|f| f.display()).collect();
    writer.set_files(files.clone());
    let spill = SpillDir::create(&opts.spill_dir)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs)
        .build()
        .map_err(|e| TimelineError::ThreadPool(e.to_string()))?;
    let results: Vec<Result<FileRuns, TimelineError>> = pool.install(|| {
        discovered
            .files
            .par_iter()
            .enumerate()
            .map(|(i, f)| read_file(&f.path, &files[i], i as u32, forced, opts, &spill))
            .collect()
    });
    let mut runs = Vec::new();
    for r in results {
        let r = r?;
        let s = &mut outcome.stats;
        s.files += 1;
        s.lines += r.lines;
        s.filtered += r.filtered;
        s.untimed += r.untimed;
        s.skipped += r.skipped;
        s.out_of_order_files += u64::from(r.out_of_order);
        runs.extend(r.runs);
        if let Some(p) = r.problem {
            outcome.problems.push(p);
        }
    }
    outcome.stats.runs = runs.len() as u64;
    // Merge in passes until few enough runs remain to merge straight into the output.
    while runs.len() > MAX_FAN_IN {
        let mut next = Vec::new();
        for group in runs.chunks(MAX_FAN_IN) {
            let (path, mut w) = spill.new_run().map_err(spill_err)?;
            merge(group, |r| r.encode(&mut w)).map_err(spill_err)?;
            w.flush().map_err(spill_err)?;
            for p in group {
                let _ = std::fs::remove_file(p);
            }
            next.push(path);
        }
        runs = next;
    }
    merge(&runs, |r| writer.write(r)).map_err(TimelineError::Output)?;
    outcome.stats.events = writer.written;
    Ok(outcome)
}

fn spill_err(e: io::Error) -> TimelineError {
    TimelineError::Spill(e.to_string())
}

/// K-way merge of sorted run files by [`Record::key`].
fn merge(runs: &[PathBuf], mut out: impl FnMut(&Record) -> io::Result<()>) -> io::Result<()> {
    let mut readers = Vec::with_capacity(runs.len());
    for p in runs {
        readers.push(BufReader::with_capacity(256 * 1024, File::open(p)?));
    }
    let mut heads: Vec<Option<Record>> = Vec::with_capacity(runs.len());
    let mut heap = BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        let rec = Record::decode(r)?;
        if let Some(rec) = &rec {
            heap.push(Reverse((rec.key(), i)));
        }
        heads.push(rec);
    }
    while let Some(Reverse((_, i))) = heap.pop() {
        let rec = heads[i].take().expect("a head for every heap entry");
        out(&rec)?;
        if let Some(n) = Record::decode(&mut readers[i])? {
            heap.push(Reverse((n.key(), i)));
            heads[i] = Some(n);
        }
    }
    Ok(())
}

struct FileRuns {
    runs: Vec<PathBuf>,
    lines: u64,
    filtered: u64,
    untimed: u64,
    skipped: u64,
    out_of_order: bool,
    problem: Option<InputProblem>,
}

/// A run file being written, with the key of its last record.
type OpenRun = (PathBuf, BufWriter<File>, (i64, u32, u64));

/// Collects one file's records into sorted, spilled runs.
struct Collector<'a> {
    opts: &'a TimelineOptions,
    display: &'a str,
    file: u32,
    spill: &'a SpillDir,
    buf: Vec<Record>,
    buf_bytes: usize,
    /// The run being appended to and the key of its last record.
    open: Option<OpenRun>,
    runs: Vec<PathBuf>,
    first_key: Option<(i64, u32, u64)>,
    last_key: Option<(i64, u32, u64)>,
    out_of_order: bool,
    lines: u64,
    filtered: u64,
    untimed: u64,
    skipped: u64,
    error: Option<io::Error>,
}

impl<'a> Collector<'a> {
    fn new(opts: &'a TimelineOptions, display: &'a str, file: u32, spill: &'a SpillDir) -> Self {
        Collector {
            opts,
            display,
            file,
            spill,
            buf: Vec::new(),
            buf_bytes: 0,
            open: None,
            runs: Vec::new(),
            first_key: None,
            last_key: None,
            out_of_order: false,
            lines: 0,
            filtered: 0,
            untimed: 0,
            skipped: 0,
            error: None,
        }
    }

    fn keep(&self, ev: &Event<'_>, ts: Timestamp, line: u64) -> bool {
        let o = self.opts;
        // Compare instants only: the same instant written in another offset is inside the range.
        if o.since.is_some_and(|s| ts.utc_ms < s.utc_ms)
            || o.until.is_some_and(|u| ts.utc_ms > u.utc_ms)
        {
            return false;
        }
        if !o.ips.is_empty() && !ev.client_ip.is_some_and(|ip| o.ips.contains(&ip)) {
            return false;
        }
        let source = ev.source.unwrap_or(SourceKind::Unknown);
        if !o.sources.is_empty() && !o.sources.contains(&source) {
            return false;
        }
        if let Some(only) = &o.only {
            // Lookups allocate only for events that passed the cheaper filters.
            if !only.contains(&(self.display.to_string(), line)) {
                return false;
            }
        }
        true
    }

    fn flush(&mut self) {
        if self.buf.is_empty() || self.error.is_some() {
            return;
        }
        self.buf.sort_unstable_by_key(Record::key);
        let first = self.buf[0].key();
        let last = self.buf[self.buf.len() - 1].key();
        let result = (|| -> io::Result<()> {
            let append = matches!(&self.open, Some((_, _, k)) if first >= *k);
            if !append {
                if let Some((p, mut w, _)) = self.open.take() {
                    w.flush()?;
                    self.runs.push(p);
                }
                let (p, w) = self.spill.new_run()?;
                self.open = Some((p, w, last));
            }
            let (_, w, k) = self.open.as_mut().expect("an open run");
            for r in &self.buf {
                r.encode(w)?;
            }
            *k = last;
            Ok(())
        })();
        if let Err(e) = result {
            self.error = Some(e);
        }
        self.buf.clear();
        self.buf_bytes = 0;
    }

    fn finish(mut self) -> io::Result<(Vec<PathBuf>, Self)> {
        self.flush();
        // The finished collector is kept for its counts only: give its sort buffer back, or
        // every chunk of a large file would hold one until the whole file is parsed.
        self.buf = Vec::new();
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some((p, mut w, _)) = self.open.take() {
            w.flush()?;
            self.runs.push(p);
        }
        Ok((std::mem::take(&mut self.runs), self))
    }
}

impl EventSink for Collector<'_> {
    fn event(&mut self, ev: &Event<'_>, line: u64, raw: &[u8]) {
        let Some(ts) = ev.ts else {
            self.untimed += 1;
            return;
        };
        if !self.keep(ev, ts, line) {
            self.filtered += 1;
            return;
        }
        let Some(rec) = Record::from_event(ev, self.file, line, raw) else {
            return;
        };
        let key = rec.key();
        if self.last_key.is_some_and(|k| key < k) {
            self.out_of_order = true;
        }
        self.last_key = Some(key);
        self.first_key.get_or_insert(key);
        self.buf_bytes += rec.weight();
        self.buf.push(rec);
        if self.buf_bytes >= self.opts.chunk_bytes {
            self.flush();
        }
    }

    fn skip(&mut self, _line: u64, _reason: &'static str, _raw: &[u8]) {
        self.skipped += 1;
    }
}

fn sample(bytes: &[u8]) -> Vec<&[u8]> {
    let head = &bytes[..bytes.len().min(256 * 1024)];
    let mut v = Vec::new();
    for_each_line_in(head, 1, |l| {
        if v.len() < ecir_formats::SAMPLE_LINES * 2 && !l.too_long {
            v.push(l.bytes);
        }
    });
    v
}

fn read_file(
    path: &Path,
    display: &str,
    index: u32,
    forced: Option<Chosen>,
    opts: &TimelineOptions,
    spill: &SpillDir,
) -> Result<FileRuns, TimelineError> {
    let mut c = Collector::new(opts, display, index, spill);
    let mut problem = None;
    // This file's modification time, for formats without a year (syslog).
    let parse_ctx = &opts.parse.for_file(path);
    let feed = |c: &mut Collector<'_>, p: &mut dyn Parser, n: u64, b: &[u8], long: bool| {
        c.lines += 1;
        if long {
            c.skipped += 1;
        } else {
            // As `ecir scan` reads it: a record after crash padding is read.
            p.feed(n, ecir_input::after_nul_padding(b), c);
        }
    };
    match open_input(path) {
        Err(e) => problem = Some(e),
        Ok(OpenInput::Mapped { map, .. }) => {
            let bytes: &[u8] = map.as_ref().map_or(&[], |m| &m[..]);
            match forced.or_else(|| ecir_formats::detect(&sample(bytes))) {
                Some(ch) => {
                    // Large files are parsed in record-aligned chunks in parallel, each
                    // chunk producing its own sorted runs.
                    let is_start = |l: &[u8]| ch.format.is_record_start(l);
                    let chunk = opts.parse_chunk_bytes.max(1 << 10);
                    let ranges = if bytes.len() > 2 * chunk {
                        // Each cut's pages are released as soon as it is found (see
                        // `split_chunks_then`).
                        ecir_input::split_chunks_then(bytes, chunk, Some(&is_start), &mut |r| {
                            if let Some(m) = map.as_ref() {
                                ecir_input::release_span(m, r);
                            }
                        })
                    } else {
                        std::iter::once(0..bytes.len()).collect()
                    };
                    let mut bases = Vec::with_capacity(ranges.len());
                    let mut next = 1u64;
                    // Pages of the mapped file are released after each pass over a range
                    // (counting, then parsing), so resident memory stays at the chunks in
                    // flight rather than the whole file.
                    let release = |r: &std::ops::Range<usize>| {
                        if let Some(m) = map.as_ref() {
                            ecir_input::release_pages(m, r.start, r.len());
                        }
                    };
                    for r in &ranges {
                        bases.push(next);
                        next += ecir_input::newline_count(&bytes[r.clone()]);
                        release(r);
                    }
                    let parts: Vec<io::Result<(Vec<PathBuf>, Collector<'_>)>> = ranges
                        .par_iter()
                        .zip(bases.par_iter())
                        .map(|(r, &base)| {
                            let mut part = Collector::new(opts, display, index, spill);
                            let mut p = ch.format.parser(ch.variant, parse_ctx);
                            for_each_line_in(&bytes[r.clone()], base, |l| {
                                feed(&mut part, p.as_mut(), l.number, l.bytes, l.too_long)
                            });
                            p.finish(&mut part);
                            release(r);
                            part.finish()
                        })
                        .collect();
                    let mut prev_last = None;
                    for part in parts {
                        let (runs, part) = part.map_err(spill_err)?;
                        c.runs.extend(runs);
                        c.lines += part.lines;
                        c.filtered += part.filtered;
                        c.untimed += part.untimed;
                        c.skipped += part.skipped;
                        c.out_of_order |= part.out_of_order
                            || matches!((prev_last, part.first_key), (Some(a), Some(b)) if b < a);
                        prev_last = part.last_key.or(prev_last);
                    }
                }
                None => {
                    c.lines = ecir_input::newline_count(bytes);
                    c.skipped = c.lines;
                }
            }
            if map.as_ref().is_some_and(|m| m.shrank()) {
                problem = Some(
                    "part of the file could no longer be read while it was exported (it shrank, e.g. truncated by log rotation, or the device failed): those pages read as zeros and were skipped; export from a copy made after rotation".into(),
                );
            }
        }
        Ok(OpenInput::Gzip { file, .. }) => {
            let mut buffered: Vec<(u64, Vec<u8>, bool)> = Vec::new();
            let mut size = 0usize;
            let mut parser: Option<Option<Box<dyn Parser>>> = None;
            let start = |buffered: &mut Vec<(u64, Vec<u8>, bool)>, c: &mut Collector<'_>| {
                let s: Vec<&[u8]> = buffered
                    .iter()
                    .filter(|x| !x.2)
                    .map(|x| x.1.as_slice())
                    .collect();
                let mut p = forced
                    .or_else(|| ecir_formats::detect(&s))
                    .map(|ch| ch.format.parser(ch.variant, parse_ctx));
                for (n, b, long) in buffered.drain(..) {
                    match p.as_mut() {
                        Some(p) => feed(c, p.as_mut(), n, &b, long),
                        None => {
                            c.lines += 1;
                            c.skipped += 1;
                        }
                    }
                }
                p
            };
            let out = stream_gzip(file, |l| match &mut parser {
                Some(Some(p)) => feed(&mut c, p.as_mut(), l.number, l.bytes, l.too_long),
                Some(None) => {
                    c.lines += 1;
                    c.skipped += 1;
                }
                None => {
                    buffered.push((l.number, l.bytes.to_vec(), l.too_long));
                    size += l.bytes.len();
                    if buffered.len() >= ecir_formats::SAMPLE_LINES * 2 || size >= 256 * 1024 {
                        parser = Some(start(&mut buffered, &mut c));
                    }
                }
            });
            let mut parser = match parser {
                Some(p) => p,
                None => start(&mut buffered, &mut c),
            };
            if let Some(p) = parser.as_mut() {
                p.finish(&mut c);
            }
            problem = out.error;
        }
        Ok(OpenInput::Unsupported { kind, .. }) => {
            problem = Some(format!("compressed with {kind}, which ecir does not read"));
        }
    }
    let (runs, c) = c.finish().map_err(spill_err)?;
    Ok(FileRuns {
        runs,
        lines: c.lines,
        filtered: c.filtered,
        untimed: c.untimed,
        skipped: c.skipped,
        out_of_order: c.out_of_order,
        problem: problem.map(|message| InputProblem {
            path: display.to_string(),
            message,
        }),
    })
}

#[cfg(test)]
mod tests;
