//! Reading one evidence file once: SHA-256, line count, format, the timestamp of every line
//! (through the `ecir-formats` parsers, or a generic leading-timestamp sniff for formats they
//! do not know), lines per local hour, out-of-order and future timestamps, and card numbers.

use std::collections::BTreeMap;
use std::path::Path;

use ecir_formats::{Chosen, EventSink, ParseContext, Parser};
use ecir_input::discover::describe_io as describe_io_error;
use ecir_input::{open_evidence, HashingReader, LineReader};
use ecir_model::{Event, SourceKind, Timestamp};

use crate::card::find_cards;

/// Timestamps earlier than the previous line's by more than this count as going backwards
/// (web servers log the request's start time when it ends, so small steps back are normal).
pub const BACKWARDS_TOLERANCE_MS: i64 = 5 * 60 * 1000;
/// Card-number locations kept per file (all are counted).
pub const MAX_CARD_LOCATIONS: usize = 100;
/// Lines buffered for format detection.
const SAMPLE_LINES: usize = 128;
const SAMPLE_BYTES: usize = 256 * 1024;

/// A card number found in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardHit {
    pub line: u64,
    pub masked: String,
    pub brand: &'static str,
    pub context: &'static str,
}

/// A timestamp out of order or out of range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeAnomaly {
    pub line: u64,
    pub ts: Timestamp,
    /// The previous line's time (for a step backwards).
    pub previous: Option<Timestamp>,
}

/// Everything the audit needs to know about one file.
#[derive(Clone, Debug, Default)]
pub struct FileFacts {
    pub path: String,
    pub size: u64,
    pub modified: Option<Timestamp>,
    pub sha256: String,
    /// SHA-256 of the lines as read (decompressed for an archive), each followed by `\n`:
    /// equal for a log and its `gunzip -k` or `zcat >` copy. `None` when the file is damaged,
    /// unreadable or a line was too long to read whole.
    pub content_sha256: Option<String>,
    pub bytes_read: u64,
    /// `none`, `gzip`, or an unsupported compression's name.
    pub compression: String,
    /// Format name, `generic-timestamp`, `apache-error-log`, `nginx-error-log` (the generic
    /// leading-timestamp sniff), or `unknown`.
    pub format: String,
    pub source: Option<SourceKind>,
    pub lines: u64,
    /// Lines with a timestamp.
    pub dated_lines: u64,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// Dated lines per local hour (hours since the epoch in the line's own offset).
    pub hours: BTreeMap<i64, u64>,
    pub backwards: u64,
    pub first_backwards: Option<TimeAnomaly>,
    pub future: u64,
    pub first_future: Option<TimeAnomaly>,
    /// Lines dated after the end of the audit but not in the future.
    pub after_as_of: u64,
    pub cards: Vec<CardHit>,
    pub cards_total: u64,
    /// Damage: the file was not read whole (truncated or corrupt archive, read error,
    /// unsupported compression).
    pub damage: Option<String>,
    /// The file could not be opened at all.
    pub unreadable: Option<String>,
    /// Why the file is not a log (a README, a binary login record, a saved web page, …): it
    /// is hashed and searched for card numbers but forms no stream. See [`not_a_log`].
    pub not_log: Option<String>,
    /// Bytes of the head examined for text-likeness, and how many of them were NUL or other
    /// control characters (besides tab, CR, LF, FF, ESC).
    pub head_bytes: u64,
    pub head_binary: u64,
}

impl FileFacts {
    pub fn is_compressed(&self) -> bool {
        self.compression != "none"
    }
}

/// Local hour index of a timestamp, in the offset it was written in.
pub fn local_hour(ts: &Timestamp) -> i64 {
    (ts.utc_ms.div_euclid(1000) + i64::from(ts.offset_secs)).div_euclid(3600)
}

/// Per-line accounting while a file is read.
struct Acc {
    facts: FileFacts,
    future_after: Option<Timestamp>,
    after_as_of: Option<Timestamp>,
    prev: Option<Timestamp>,
    /// The run's parse settings plus this file's modification time (syslog year inference).
    ctx: ParseContext,
    cards: bool,
    /// Hash of the lines read; `None` once a line was cut.
    content: Option<ecir_input::Sha256Stream>,
}

/// Head bytes examined to tell text from binary.
const HEAD_PROBE: u64 = 64 * 1024;

impl Acc {
    fn stamp(&mut self, line: u64, ts: Timestamp) {
        let f = &mut self.facts;
        f.dated_lines += 1;
        *f.hours.entry(local_hour(&ts)).or_default() += 1;
        if f.first_ts.is_none_or(|t| ts < t) {
            f.first_ts = Some(ts);
        }
        if f.last_ts.is_none_or(|t| ts > t) {
            f.last_ts = Some(ts);
        }
        if let Some(p) = self.prev {
            if p.utc_ms - ts.utc_ms > BACKWARDS_TOLERANCE_MS {
                f.backwards += 1;
                if f.first_backwards.is_none() {
                    f.first_backwards = Some(TimeAnomaly {
                        line,
                        ts,
                        previous: Some(p),
                    });
                }
            }
        }
        if self.future_after.is_some_and(|a| ts > a) {
            f.future += 1;
            if f.first_future.is_none() {
                f.first_future = Some(TimeAnomaly {
                    line,
                    ts,
                    previous: None,
                });
            }
        } else if self.after_as_of.is_some_and(|a| ts > a) {
            f.after_as_of += 1;
        }
        self.prev = Some(ts);
    }

    fn raw_line(&mut self, line: u64, bytes: &[u8], too_long: bool) {
        self.facts.lines += 1;
        if too_long {
            self.content = None;
        } else if let Some(h) = &mut self.content {
            h.update(bytes);
            h.update(b"\n");
        }
        if self.facts.head_bytes < HEAD_PROBE {
            let take = bytes
                .len()
                .min((HEAD_PROBE - self.facts.head_bytes) as usize);
            self.facts.head_bytes += take as u64 + 1;
            self.facts.head_binary += bytes[..take]
                .iter()
                .filter(|b| **b < 0x20 && !matches!(b, b'\t' | b'\r' | 0x0c | 0x1b))
                .count() as u64;
        }
        if self.cards && bytes.len() >= 13 {
            for m in find_cards(bytes) {
                self.facts.cards_total += 1;
                if self.facts.cards.len() < MAX_CARD_LOCATIONS {
                    self.facts.cards.push(CardHit {
                        line,
                        masked: m.masked,
                        brand: m.brand,
                        context: m.context,
                    });
                }
            }
        }
    }
}

impl EventSink for Acc {
    fn event(&mut self, ev: &Event<'_>, line: u64, _raw: &[u8]) {
        if let Some(ts) = ev.ts {
            self.stamp(line, ts);
        }
    }
    /// A line the format's parser makes no event of (an error-log line that is not a
    /// ModSecurity alert, say) still counts where it carries a leading timestamp.
    fn skip(&mut self, line: u64, _reason: &'static str, raw: &[u8]) {
        if let Some(ts) = leading_timestamp(raw, &self.ctx) {
            self.stamp(line, ts);
        }
    }
}

/// How lines get their timestamps.
enum Stamper {
    Parser(Box<dyn Parser>),
    Generic,
    None,
}

impl Stamper {
    fn feed(&mut self, acc: &mut Acc, line: u64, bytes: &[u8], too_long: bool) {
        match self {
            Stamper::Parser(p) if !too_long => p.feed(line, bytes, acc),
            Stamper::Generic => {
                if let Some(ts) = leading_timestamp(bytes, &acc.ctx) {
                    acc.stamp(line, ts);
                }
            }
            _ => {}
        }
    }
}

/// The shape of a line's leading timestamp, as far as the generic sniff is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeadingShape {
    /// ISO 8601 / RFC 3339 (application logs).
    Iso,
    /// `[Wed Dec 31 01:37:14.000000 2025] [core:error] …` (Apache httpd 2.4) or
    /// `[Wed Dec 31 01:37:14 2025] [error] …` (2.2): an Apache `error_log`.
    ApacheError,
    /// `2026/11/20 10:00:00 [error] …`: an nginx `error.log`.
    NginxError,
}

/// A timestamp at the start of a line (after an optional `[`): ISO 8601 / RFC 3339 with `T`
/// or space, optional fraction and offset — the shape of Monolog (EC-CUBE 4, Magento),
/// WordPress/WooCommerce and most application logs — or the prefix of an Apache or nginx
/// error log. Offset-less times are read in `ctx.tz`.
pub fn leading_timestamp(line: &[u8], ctx: &ParseContext) -> Option<Timestamp> {
    leading_timestamp_shape(line, ctx).map(|(t, _)| t)
}

/// [`leading_timestamp`], with the shape it had.
pub fn leading_timestamp_shape(
    line: &[u8],
    ctx: &ParseContext,
) -> Option<(Timestamp, LeadingShape)> {
    if let Some(t) = apache_error_time(line, ctx) {
        return Some((t, LeadingShape::ApacheError));
    }
    if let Some(t) = nginx_error_time(line, ctx) {
        return Some((t, LeadingShape::NginxError));
    }
    let start = usize::from(line.first() == Some(&b'['));
    let b = line.get(start..)?;
    if b.len() < 19 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let mut end = 19;
    if b.get(end) == Some(&b'.') {
        end += 1;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    match b.get(end) {
        Some(b'Z') => end += 1,
        Some(b'+' | b'-') => {
            let mut k = end + 1;
            while k < b.len() && k < end + 6 && (b[k].is_ascii_digit() || b[k] == b':') {
                k += 1;
            }
            end = k;
        }
        _ => {}
    }
    ecir_formats::time::iso8601(&b[..end], ctx).map(|t| (t, LeadingShape::Iso))
}

/// `[Www Mmm dd HH:MM:SS[.ffffff] yyyy]`, the Apache httpd error-log prefix, read in `ctx.tz`.
fn apache_error_time(line: &[u8], ctx: &ParseContext) -> Option<Timestamp> {
    if line.first() != Some(&b'[') {
        return None;
    }
    let close = line.iter().take(40).position(|c| *c == b']')?;
    let inner = std::str::from_utf8(&line[1..close]).ok()?;
    let mut it = inner.split(' ').filter(|p| !p.is_empty());
    let (dow, mon, day, hms, year) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || dow.len() != 3 || !dow.bytes().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let mon = ecir_formats::time::month_abbr(mon.as_bytes())?;
    let day: u32 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    if year.len() != 4 || !year.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (clock, frac) = hms.split_once('.').unwrap_or((hms, ""));
    if clock.len() != 8 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let iso = if frac.is_empty() {
        format!("{year}-{mon:02}-{day:02} {clock}")
    } else {
        format!("{year}-{mon:02}-{day:02} {clock}.{frac}")
    };
    ecir_formats::time::iso8601(iso.as_bytes(), ctx)
}

/// `YYYY/MM/DD HH:MM:SS `, the nginx error-log prefix, read in `ctx.tz`.
fn nginx_error_time(line: &[u8], ctx: &ParseContext) -> Option<Timestamp> {
    let b = line.get(..19)?;
    if b[4] != b'/' || b[7] != b'/' || b[10] != b' ' || line.get(19).is_some_and(|c| *c != b' ') {
        return None;
    }
    let mut iso = [0u8; 19];
    iso.copy_from_slice(b);
    iso[4] = b'-';
    iso[7] = b'-';
    ecir_formats::time::iso8601(&iso, ctx)
}

/// The format name the generic sniff gives a sample it recognises well enough (at least 30 %
/// of its non-blank lines start with a timestamp): `apache-error-log` or `nginx-error-log`
/// when most of those are error-log prefixes, else `generic-timestamp`.
fn generic_fits(sample: &[&[u8]], ctx: &ParseContext) -> Option<&'static str> {
    let lines: Vec<&&[u8]> = sample
        .iter()
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    let shapes: Vec<LeadingShape> = lines
        .iter()
        .filter_map(|l| leading_timestamp_shape(l, ctx).map(|(_, s)| s))
        .collect();
    let hits = shapes.len();
    if hits == 0 || hits * 10 < lines.len() * 3 {
        return None;
    }
    let count = |k: LeadingShape| shapes.iter().filter(|s| **s == k).count();
    Some(if count(LeadingShape::ApacheError) * 2 > hits {
        "apache-error-log"
    } else if count(LeadingShape::NginxError) * 2 > hits {
        "nginx-error-log"
    } else {
        "generic-timestamp"
    })
}

/// Options for reading files.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    pub parse: ParseContext,
    /// Timestamps after this instant are counted as in the future.
    pub future_after: Option<Timestamp>,
    /// Timestamps after this instant (and not in the future) are counted as after the audit.
    pub after_as_of: Option<Timestamp>,
    /// Search lines for card numbers.
    pub cards: bool,
    /// Compute [`FileFacts::content_sha256`].
    pub content_hash: bool,
}

/// Reads `path` once and returns its facts. Never fails: problems are recorded in the facts.
pub fn read_file(path: &Path, display: &str, opts: &ReadOptions) -> FileFacts {
    let mut acc = Acc {
        facts: FileFacts {
            path: display.to_string(),
            compression: "none".into(),
            format: "unknown".into(),
            ..Default::default()
        },
        future_after: opts.future_after,
        after_as_of: opts.after_as_of,
        prev: None,
        ctx: opts.parse.clone(),
        cards: opts.cards,
        content: opts.content_hash.then(ecir_input::Sha256Stream::default),
    };
    let file = match open_evidence(path) {
        Ok(f) => f,
        Err(e) => {
            acc.facts.unreadable = Some(describe_io_error(&e));
            return acc.facts;
        }
    };
    if let Ok(md) = file.metadata() {
        acc.facts.size = md.len();
        acc.facts.modified = md.modified().ok().and_then(|m| {
            let d = m.duration_since(std::time::UNIX_EPOCH).ok()?;
            Some(Timestamp::new(d.as_millis() as i64, 0))
        });
        acc.ctx.file_mtime = acc.facts.modified;
    }
    let mut head = [0u8; 8];
    let got = {
        use std::io::Read;
        let mut f = &file;
        let mut got = 0;
        while got < head.len() {
            match f.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        got
    };
    let file = match open_evidence(path) {
        Ok(f) => f,
        Err(e) => {
            acc.facts.unreadable = Some(describe_io_error(&e));
            return acc.facts;
        }
    };
    let mut state = LineState::Sampling(Vec::new(), 0);
    match ecir_input::sniff_compression(&head[..got]) {
        ecir_input::Compression::Gzip => {
            acc.facts.compression = "gzip".into();
            let out = ecir_input::stream_gzip(file, |l| {
                state.line(&mut acc, l.number, l.bytes, l.too_long)
            });
            state.finish(&mut acc);
            acc.facts.sha256 = out.sha256;
            acc.facts.bytes_read = out.bytes_read;
            acc.facts.damage = out.error;
        }
        ecir_input::Compression::Unsupported(kind) => {
            acc.facts.compression = kind.into();
            let (sha, n, err) = HashingReader::new(file).finish();
            acc.facts.sha256 = sha;
            acc.facts.bytes_read = n;
            acc.facts.damage = Some(match err {
                Some(e) => format!("read error: {}", describe_io_error(&e)),
                None => format!("compressed with {kind}, which ecir does not read: hashed but its lines were not examined"),
            });
        }
        ecir_input::Compression::None => {
            let mut reader = LineReader::new(HashingReader::new(file));
            let result = reader.for_each(|l| state.line(&mut acc, l.number, l.bytes, l.too_long));
            state.finish(&mut acc);
            let (sha, n, err) = reader.into_inner().finish();
            acc.facts.sha256 = sha;
            acc.facts.bytes_read = n;
            if let Some(e) = result.err().or(err) {
                acc.facts.damage = Some(format!("read error: {}", describe_io_error(&e)));
            }
        }
    }
    acc.facts.not_log = not_a_log(&acc.facts);
    if acc.facts.damage.is_none() && acc.facts.lines > 0 {
        acc.facts.content_sha256 = acc.content.take().map(|h| h.finish_hex());
    }
    acc.facts
}

/// File names that are never logs, whatever they hold: documentation, office documents,
/// saved web pages and images, and the binary login records of `last`/`lastb`.
fn non_log_name(path: &str) -> Option<&'static str> {
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let base = crate::naming::parse_name(&name).base;
    if ["wtmp", "btmp", "utmp", "lastlog", "faillog"].contains(&base.as_str()) {
        return Some("a binary login record (read it with `last -f`), not a text log");
    }
    if [
        "readme",
        "license",
        "licence",
        "copying",
        "changelog",
        "notes",
    ]
    .iter()
    .any(|p| name.starts_with(p))
    {
        return Some("a document (by its name), not a log");
    }
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "md" | "rst" | "pdf" | "doc" | "docx" | "xls" | "xlsx" | "odt" | "ods" | "ppt" | "pptx" => {
            Some("a document (by its name), not a log")
        }
        "html" | "htm" | "xhtml" | "css" | "js" | "svg" => {
            Some("a web page or asset (by its name), not a log")
        }
        "png" | "jpg" | "jpeg" | "gif" | "webp" | "ico" | "bmp" | "tif" | "tiff" => {
            Some("an image (by its name), not a log")
        }
        _ => None,
    }
}

/// Why a file is not a log, if it is not: no line carries a timestamp, its format is not a
/// known log format, and it is binary (NUL or other control bytes in more than 1 % of its
/// head) or its name says it is something else. A file with timestamps is always a log, and
/// a text file of unknown name without timestamps stays a (failing) log stream: it may be a
/// log ecir cannot time.
pub fn not_a_log(f: &FileFacts) -> Option<String> {
    if f.dated_lines > 0 || f.unreadable.is_some() || f.format != "unknown" || f.lines == 0 {
        return None;
    }
    if let Some(why) = non_log_name(&f.path) {
        return Some(format!("{why}; no line carries a timestamp"));
    }
    if f.damage.is_none() && f.head_binary * 100 > f.head_bytes {
        return Some(format!(
            "binary content ({} of the first {} bytes are control characters) and no timestamp: not a text log",
            f.head_binary, f.head_bytes
        ));
    }
    None
}

/// Sampling the head of a file to choose how to stamp it, then stamping every line.
enum LineState {
    Sampling(Vec<(u64, Vec<u8>, bool)>, usize),
    Running(Stamper),
}

impl LineState {
    fn line(&mut self, acc: &mut Acc, number: u64, bytes: &[u8], too_long: bool) {
        acc.raw_line(number, bytes, too_long);
        match self {
            LineState::Running(s) => s.feed(acc, number, bytes, too_long),
            LineState::Sampling(buf, size) => {
                buf.push((number, bytes.to_vec(), too_long));
                *size += bytes.len();
                if buf.len() >= SAMPLE_LINES || *size >= SAMPLE_BYTES {
                    let buf = std::mem::take(buf);
                    *self = LineState::Running(Self::start(buf, acc));
                }
            }
        }
    }

    fn start(buffered: Vec<(u64, Vec<u8>, bool)>, acc: &mut Acc) -> Stamper {
        let sample: Vec<&[u8]> = buffered
            .iter()
            .filter(|(_, _, long)| !long)
            .map(|(_, b, _)| b.as_slice())
            .collect();
        let chosen: Option<Chosen> = ecir_formats::detect(&sample);
        let mut stamper = match chosen {
            Some(c) => {
                acc.facts.format = c.name().into();
                acc.facts.source = Some(c.format.source());
                Stamper::Parser(c.format.parser(c.variant, &acc.ctx))
            }
            None => match generic_fits(&sample, &acc.ctx) {
                Some(name) => {
                    acc.facts.format = name.into();
                    Stamper::Generic
                }
                None => Stamper::None,
            },
        };
        for (n, b, long) in &buffered {
            stamper.feed(acc, *n, b, *long);
        }
        stamper
    }

    fn finish(&mut self, acc: &mut Acc) {
        if let LineState::Sampling(buf, _) = self {
            let buf = std::mem::take(buf);
            *self = LineState::Running(Self::start(buf, acc));
        }
        if let LineState::Running(Stamper::Parser(p)) = self {
            p.finish(acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ParseContext {
        ParseContext {
            tz: "Asia/Tokyo".parse().unwrap(),
            ..Default::default()
        }
    }

    fn at(line: &str) -> Option<(String, LeadingShape)> {
        leading_timestamp_shape(line.as_bytes(), &ctx()).map(|(t, s)| (t.to_rfc3339(), s))
    }

    #[test]
    fn web_server_error_log_prefixes_carry_timestamps() {
        use LeadingShape::*;
        assert_eq!(
            at("[Wed Dec 31 01:37:14.250000 2025] [core:error] [pid 1] [client 192.0.2.1:5] AH00128: File does not exist: /x"),
            Some(("2025-12-31T01:37:14.250+09:00".into(), ApacheError))
        );
        assert_eq!(
            at("[Wed Dec 31 01:37:14 2025] [error] [client 192.0.2.1] File does not exist: /x"),
            Some(("2025-12-31T01:37:14+09:00".into(), ApacheError))
        );
        assert_eq!(
            at("[Fri Nov  6 08:00:00 2026] [notice] Apache configured"),
            Some(("2026-11-06T08:00:00+09:00".into(), ApacheError))
        );
        assert_eq!(
            at("2026/11/20 10:00:00 [error] 12#12: *3 open() failed, client: 192.0.2.1"),
            Some(("2026-11-20T10:00:00+09:00".into(), NginxError))
        );
        assert_eq!(
            at("2026-11-20 10:00:00 app.INFO hello"),
            Some(("2026-11-20T10:00:00+09:00".into(), Iso))
        );
        // Look-alikes are not timestamps.
        for l in [
            "[Wed Dec 32 01:37:14 2025] [error] x",
            "[Wed Foo 31 01:37:14 2025] [error] x",
            "[client 192.0.2.1] x",
            "[Wed Dec 31 01:37:14 2025 extra] x",
            "2026/13/20 10:00:00 [error] x",
            "2026/11/20 10:00:00x",
        ] {
            assert_eq!(at(l), None, "{l}");
        }
    }
}
