//! JSON records inside a JSON document, as cloud diagnostics write them: Azure blobs hold
//! `{"records": [ {…}, {…} ]}`, pretty-printed over many lines or one record per line inside
//! the wrapper; plain JSON lines (one object per line) are read the same way.
//!
//! The assembler tracks brace depth (string- and escape-aware) and buffers one record at a
//! time, never the document. An object whose first key is `records` is the wrapper: its lines
//! are skipped as `json-wrapper`, and the objects of its array are the records. Each record
//! becomes one event citing its first line; its other lines are absorbed. Accounting is per
//! physical line: a line belongs to the record open when it starts, else to the first record
//! starting on it; a further record on an already counted line is an
//! [`EventSink::extra_event`], or an [`EventSink::extra_skip`] when it cannot be read. As for
//! records split at a bare CR, a line counts as parsed when any record on it was read: a
//! record that cannot be read and ends on its line leaves the line's verdict to the line's
//! end, and a later record read on it takes the line. A record larger than [`MAX_RECORD_BYTES`] or
//! [`MAX_RECORD_LINES`] is skipped as `record-too-long` (every line counted, the buffer
//! released at once); a record still open at the end of the input, or cut off by a line that
//! starts a new object (`{"…`), is skipped as `truncated-record`.

use serde_json::{Map, Value};

use crate::waf_common::JsonRecordFn;
use crate::{skip, EventSink, ParseContext, Parser, RecordLines};

/// Most bytes one record may have.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// Most lines one record may have.
pub const MAX_RECORD_LINES: u64 = 50_000;
/// Bytes of a record's text handed to the sink as its raw line.
const RAW_CAP: usize = 4096;

/// Whether a line may start a record of a JSON-lines or one-record-per-line document: it
/// starts (after blanks) with `{"`. Pretty-printed records start with a bare `{`, which
/// a nested object may also be, so such files are never split.
pub fn is_object_line(line: &[u8]) -> bool {
    let t = trim_start(line);
    t.starts_with(b"{\"") || t.starts_with(b"{ \"")
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

struct Open {
    first_line: u64,
    /// Lines this record accounts for (not a line already counted when it opened, nor a
    /// line the caller skipped without feeding it).
    own: RecordLines,
    lines: u64,
    buf: Vec<u8>,
    depth: u32,
    in_str: bool,
    esc: bool,
    /// First key at depth 1: 0 waiting, 1 reading, 2 done.
    key_state: u8,
    key: Vec<u8>,
    oversized: bool,
}

enum Step {
    /// The rest of the line was consumed; the record is still open.
    More,
    /// The record closed after `usize` bytes.
    Closed(usize),
    /// The object is a `records` wrapper; its first key ended after `usize` bytes.
    Wrapper(usize),
}

impl Open {
    fn scan(&mut self, b: &[u8]) -> Step {
        for (i, &c) in b.iter().enumerate() {
            if self.in_str {
                if self.esc {
                    self.esc = false;
                } else if c == b'\\' {
                    self.esc = true;
                } else if c == b'"' {
                    self.in_str = false;
                    if self.key_state == 1 {
                        self.key_state = 2;
                        if self.key == b"records" {
                            return Step::Wrapper(i + 1);
                        }
                    }
                } else if self.key_state == 1 && self.key.len() < 16 {
                    self.key.push(c);
                }
                continue;
            }
            match c {
                b'"' => {
                    self.in_str = true;
                    if self.depth == 1 && self.key_state == 0 {
                        self.key_state = 1;
                    }
                }
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        if !self.oversized {
                            self.buf.extend_from_slice(&b[..=i]);
                        }
                        return Step::Closed(i + 1);
                    }
                }
                _ => {}
            }
        }
        if !self.oversized {
            self.buf.extend_from_slice(b);
        }
        Step::More
    }
}

/// A parser of JSON records (see the module doc), mapped by the format's `parse` function.
pub(crate) struct JsonRecordsParser {
    pub ctx: ParseContext,
    pub parse: JsonRecordFn,
    open: Option<Open>,
    /// The line being fed.
    line: u64,
    /// The current line, when a record that ended on it could not be read: the line is
    /// skipped with this reason at its end, unless a later record on it is read (then that
    /// record counts the line, as for records split at a bare CR, and this one is an extra
    /// skip).
    deferred: Option<(&'static str, Vec<u8>)>,
}

/// Bytes of an unreadable record kept as its skipped sample.
const SAMPLE_CAP: usize = 512;

impl JsonRecordsParser {
    pub fn new(ctx: ParseContext, parse: JsonRecordFn) -> Self {
        JsonRecordsParser {
            ctx,
            parse,
            open: None,
            line: 0,
            deferred: None,
        }
    }

    /// Skips the current line if its only records could not be read.
    fn flush_deferred(&mut self, sink: &mut dyn EventSink) {
        if let Some((reason, raw)) = self.deferred.take() {
            sink.skip(self.line, reason, &raw);
        }
    }

    /// Skips every line the open record accounts for, with `reason`.
    fn drop_open(&mut self, reason: &'static str, sink: &mut dyn EventSink) {
        if let Some(o) = self.open.take() {
            skip_owned(&o, reason, sink);
        }
    }

    fn complete(&mut self, sink: &mut dyn EventSink) {
        let Some(o) = self.open.take() else { return };
        if o.oversized {
            return; // its lines were skipped as they came
        }
        if o.buf.len() > MAX_RECORD_BYTES {
            return skip_owned(&o, skip::RECORD_TOO_LONG, sink);
        }
        let result = serde_json::from_slice::<Map<String, Value>>(&o.buf)
            .map_err(|_| skip::UNPARSEABLE)
            .and_then(|m| (self.parse)(&m, &self.ctx).map(|r| (r, m)));
        match result {
            Ok((r, m)) => {
                let owned = o.own.len();
                let raw: Vec<u8> = if o.buf.contains(&b'\n') {
                    serde_json::to_vec(&m).unwrap_or_default()
                } else {
                    o.buf
                };
                let raw = &raw[..raw.len().min(RAW_CAP)];
                let ev = r.event();
                match owned {
                    // The line's earlier record was unreadable: this one counts the line.
                    0 if o.first_line == self.line && self.deferred.is_some() => {
                        if let Some((reason, sample)) = self.deferred.take() {
                            sink.extra_skip(self.line, reason, &sample);
                        }
                        sink.event(&ev, o.first_line, raw);
                    }
                    0 => sink.extra_event(&ev, o.first_line, raw),
                    n => {
                        sink.event(&ev, o.first_line, raw);
                        if n > 1 {
                            sink.absorbed(n - 1);
                        }
                    }
                }
            }
            // A record that owns the line it ended on: that line waits for the line's end.
            Err(reason) if o.own.last() == Some(self.line) && self.deferred.is_none() => {
                for (i, l) in o.own.iter().enumerate() {
                    let raw = if i == 0 { sample(&o.buf) } else { &[][..] };
                    if l == self.line {
                        self.deferred = Some((reason, raw.to_vec()));
                    } else {
                        sink.skip(l, reason, raw);
                    }
                }
            }
            // A further unreadable record on a line already counted.
            Err(reason) if o.own.is_empty() => {
                sink.extra_skip(o.first_line, reason, sample(&o.buf));
            }
            Err(reason) => skip_owned(&o, reason, sink),
        }
    }
}

fn sample(buf: &[u8]) -> &[u8] {
    &buf[..buf.len().min(SAMPLE_CAP)]
}

fn skip_owned(o: &Open, reason: &'static str, sink: &mut dyn EventSink) {
    for (i, l) in o.own.iter().enumerate() {
        let raw = if i == 0 { sample(&o.buf) } else { &[][..] };
        sink.skip(l, reason, raw);
    }
}

impl Parser for JsonRecordsParser {
    fn feed(&mut self, line: u64, bytes: &[u8], sink: &mut dyn EventSink) {
        self.line = line;
        // A line that starts a new object while a record is open: the open one was cut off.
        if self.open.is_some() && is_object_line(bytes) {
            self.drop_open(skip::TRUNCATED_RECORD, sink);
        }
        let mut accounted = false;
        if let Some(o) = &mut self.open {
            o.lines += 1;
            accounted = true;
            if o.oversized {
                sink.skip(line, skip::RECORD_TOO_LONG, bytes);
            } else {
                o.own.push(line);
            }
        } else if let Some(reason) = crate::precheck(bytes) {
            return sink.skip(line, reason, bytes);
        }
        let mut junk = false;
        let mut i = 0;
        while i < bytes.len() {
            let Some(o) = &mut self.open else {
                match bytes[i] {
                    b'{' => {
                        let own = if accounted {
                            RecordLines::default()
                        } else {
                            RecordLines::starting_at(line)
                        };
                        accounted = true;
                        self.open = Some(Open {
                            first_line: line,
                            own,
                            lines: 1,
                            buf: vec![b'{'],
                            depth: 1,
                            in_str: false,
                            esc: false,
                            key_state: 0,
                            key: Vec::new(),
                            oversized: false,
                        });
                    }
                    c if c.is_ascii_whitespace()
                        || matches!(c, b',' | b'[' | b']' | b'}' | b':') => {}
                    _ => {
                        junk = true;
                        break;
                    }
                }
                i += 1;
                continue;
            };
            match o.scan(&bytes[i..]) {
                Step::More => i = bytes.len(),
                Step::Closed(n) => {
                    i += n;
                    self.complete(sink);
                }
                Step::Wrapper(n) => {
                    i += n;
                    // The wrapper's earlier lines are structure; this line is free again.
                    let o = self.open.take().expect("open");
                    for l in o.own.iter().filter(|&l| l != line) {
                        sink.skip(l, skip::JSON_WRAPPER, b"");
                    }
                    if o.own.last() == Some(line) {
                        accounted = false;
                    }
                }
            }
        }
        if let Some(o) = &mut self.open {
            if !o.oversized {
                o.buf.push(b'\n');
                if o.buf.len() > MAX_RECORD_BYTES || o.lines > MAX_RECORD_LINES {
                    skip_owned(o, skip::RECORD_TOO_LONG, sink);
                    o.oversized = true;
                    o.own.clear();
                    o.buf = Vec::new();
                }
            }
        }
        self.flush_deferred(sink);
        if !accounted {
            let reason = if junk {
                skip::UNPARSEABLE
            } else {
                skip::JSON_WRAPPER
            };
            sink.skip(line, reason, bytes);
        }
    }

    fn finish(&mut self, sink: &mut dyn EventSink) {
        self.flush_deferred(sink);
        self.drop_open(skip::TRUNCATED_RECORD, sink);
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::Collect;
    use crate::{by_name, skip, ParseContext};

    /// Feeds `(line, text)` pairs as a caller that skipped the missing numbers would.
    fn feed(lines: &[(u64, &str)]) -> Collect {
        let chosen = by_name("azure-appgw-waf").unwrap();
        let mut p = chosen
            .format
            .parser(chosen.variant, &ParseContext::default());
        let mut c = Collect::default();
        for (line, text) in lines {
            p.feed(*line, text.as_bytes(), &mut c);
        }
        p.finish(&mut c);
        c
    }

    #[test]
    fn a_line_the_caller_skipped_is_not_skipped_again_with_the_record() {
        // Line 2 was too long to parse: the caller counted it (`line-too-long`) and did not
        // feed it. The record cut off by the end of the input owns lines 1, 3 and 4 only.
        let c = feed(&[(1, "{\"a\": {\"b\":"), (3, "1,"), (4, "\"c\": 2")]);
        let t = skip::TRUNCATED_RECORD;
        assert_eq!(c.skips, vec![(1, t), (3, t), (4, t)]);
        // The same for a wrapper whose key comes after the gap.
        let rec = r#"{"category": "ApplicationGatewayFirewallLog", "time": "2024-05-28T08:58:53Z", "properties": {"clientIp": "192.0.2.1", "requestUri": "/", "ruleId": "920350", "action": "Matched"}}"#;
        let c = feed(&[(1, "{"), (3, "\"records\": ["), (4, rec), (5, "]}")]);
        assert_eq!(c.events.iter().map(|e| e.0).collect::<Vec<_>>(), vec![4]);
        let w = skip::JSON_WRAPPER;
        assert_eq!(c.skips, vec![(1, w), (3, w), (5, w)]);
    }
}
