//! Splitting bytes into numbered lines, in memory or from a stream, with bounded memory.
//!
//! A line ends at `\n`; a trailing `\r` is dropped; a last line without a newline still
//! counts. Lines longer than [`MAX_LINE_LEN`] are delivered cut to that length and flagged, so
//! a file without newlines can never make ecir allocate without bound.

use std::io::{self, Read};
use std::ops::Range;

/// Longest line kept, in bytes; longer lines are cut and flagged `too_long`.
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// One physical line.
#[derive(Copy, Clone, Debug)]
pub struct Line<'a> {
    /// 1-based line number within the file (decompressed stream for archives).
    pub number: u64,
    /// The bytes without the line terminator, at most [`MAX_LINE_LEN`].
    pub bytes: &'a [u8],
    /// The line was longer than [`MAX_LINE_LEN`] and was cut.
    pub too_long: bool,
}

fn trim_cr(b: &[u8]) -> &[u8] {
    match b.last() {
        Some(b'\r') => &b[..b.len() - 1],
        _ => b,
    }
}

/// Calls `f` for every line of `bytes`, numbering from `first_number`. Returns lines seen.
pub fn for_each_line_in<'a>(
    bytes: &'a [u8],
    first_number: u64,
    mut f: impl FnMut(Line<'a>),
) -> u64 {
    let mut number = first_number;
    let mut start = 0usize;
    for end in memchr::memchr_iter(b'\n', bytes) {
        emit(&bytes[start..end], number, &mut f);
        number += 1;
        start = end + 1;
    }
    if start < bytes.len() {
        emit(&bytes[start..], number, &mut f);
        number += 1;
    }
    number - first_number
}

fn emit<'a>(raw: &'a [u8], number: u64, f: &mut impl FnMut(Line<'a>)) {
    let too_long = raw.len() > MAX_LINE_LEN;
    let bytes = if too_long { &raw[..MAX_LINE_LEN] } else { raw };
    f(Line {
        number,
        bytes: trim_cr(bytes),
        too_long,
    })
}

/// `bytes` without a leading run of NUL bytes when a record follows it: a crash or power
/// loss leaves the blocks a log had allocated but not written as zeros, and the next record
/// is appended after them on the same line. A line of NULs only (or NULs inside the text)
/// stays as it is, to be skipped with its reason. Every reader of lines (scan, timeline)
/// passes a line through this before its parser.
#[inline]
pub fn after_nul_padding(bytes: &[u8]) -> &[u8] {
    if bytes.first() != Some(&0) {
        return bytes;
    }
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let rest = &bytes[start..];
    if rest.iter().all(u8::is_ascii_whitespace) || memchr::memchr(0, rest).is_some() {
        bytes
    } else {
        rest
    }
}

/// Number of lines in `bytes` by the rules above.
pub fn newline_count(bytes: &[u8]) -> u64 {
    let n = memchr::memchr_iter(b'\n', bytes).count() as u64;
    n + u64::from(!bytes.is_empty() && bytes[bytes.len() - 1] != b'\n')
}

/// A predicate saying whether a record may start at a line.
pub type RecordStart<'a> = &'a (dyn Fn(&[u8]) -> bool + Sync);

/// Splits `bytes` into ranges of about `target` bytes that end just after a newline. When
/// `is_record_start` is given, a chunk may only start at a line for which it is true (so a
/// multi-line record is never split).
pub fn split_chunks(
    bytes: &[u8],
    target: usize,
    is_record_start: Option<RecordStart<'_>>,
) -> Vec<Range<usize>> {
    split_chunks_then(bytes, target, is_record_start, &mut |_| {})
}

/// [`split_chunks`], calling `looked_at` after each cut with the bytes read to find it (from
/// `target` bytes into the chunk to the cut, and on to the end of the line after it when
/// `is_record_start` read that line), so that the caller can release a mapping's
/// pages there at once: reading one byte may map a whole huge page of a file's page cache
/// (2 MiB), and a 4 GiB file has 256 cuts at the default chunk size.
pub fn split_chunks_then(
    bytes: &[u8],
    target: usize,
    is_record_start: Option<RecordStart<'_>>,
    looked_at: &mut dyn FnMut(Range<usize>),
) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let target = target.max(1);
    while start < bytes.len() {
        let mut cut = (start + target).min(bytes.len());
        if cut < bytes.len() {
            cut = match memchr::memchr(b'\n', &bytes[cut..]) {
                Some(i) => cut + i + 1,
                None => bytes.len(),
            };
            // The end of the last byte read: the cut, or the end of the line the record
            // test read after it.
            let mut read = cut;
            if let Some(pred) = is_record_start {
                while cut < bytes.len() {
                    let end = memchr::memchr(b'\n', &bytes[cut..]).map_or(bytes.len(), |i| cut + i);
                    read = read.max(end);
                    if pred(trim_cr(&bytes[cut..end])) {
                        break;
                    }
                    cut = (end + 1).min(bytes.len());
                }
            }
            looked_at((start + target).min(cut)..read.max(cut));
        }
        out.push(start..cut);
        start = cut;
    }
    out
}

/// Reads lines from a stream through a fixed buffer.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Valid data is `buf[pos..end]`.
    pos: usize,
    end: usize,
    eof: bool,
    number: u64,
    /// Bytes of the current overlong line already discarded.
    discarding: bool,
    long_line: Vec<u8>,
}

const READ_BUF: usize = 256 * 1024;

impl<R: Read> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: vec![0u8; READ_BUF + MAX_LINE_LEN],
            pos: 0,
            end: 0,
            eof: false,
            number: 0,
            discarding: false,
            long_line: Vec::new(),
        }
    }

    /// Lines delivered so far.
    pub fn lines(&self) -> u64 {
        self.number
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Calls `f` for each line until the end of the stream or an error. On error, the lines
    /// before the damage have been delivered; a partial last line is delivered too.
    pub fn for_each(&mut self, mut f: impl FnMut(Line<'_>)) -> io::Result<()> {
        self.run(&mut f)
    }

    fn run(&mut self, f: &mut dyn FnMut(Line<'_>)) -> io::Result<()> {
        loop {
            // Deliver complete lines in the buffer.
            while let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..self.end]) {
                let line_end = self.pos + i;
                self.number += 1;
                if self.discarding {
                    let bytes = std::mem::take(&mut self.long_line);
                    f(Line {
                        number: self.number,
                        bytes: trim_cr(&bytes),
                        too_long: true,
                    });
                    self.discarding = false;
                } else {
                    let raw = &self.buf[self.pos..line_end];
                    let too_long = raw.len() > MAX_LINE_LEN;
                    let raw = if too_long { &raw[..MAX_LINE_LEN] } else { raw };
                    f(Line {
                        number: self.number,
                        bytes: trim_cr(raw),
                        too_long,
                    });
                }
                self.pos = line_end + 1;
            }
            if self.eof {
                if self.pos < self.end || self.discarding {
                    self.number += 1;
                    if self.discarding {
                        let bytes = std::mem::take(&mut self.long_line);
                        f(Line {
                            number: self.number,
                            bytes: trim_cr(&bytes),
                            too_long: true,
                        });
                        self.discarding = false;
                    } else {
                        let raw = &self.buf[self.pos..self.end];
                        let too_long = raw.len() > MAX_LINE_LEN;
                        let raw = if too_long { &raw[..MAX_LINE_LEN] } else { raw };
                        f(Line {
                            number: self.number,
                            bytes: trim_cr(raw),
                            too_long,
                        });
                    }
                    self.pos = self.end;
                }
                return Ok(());
            }
            // Make room: move the partial line to the front.
            let pending = self.end - self.pos;
            if pending > MAX_LINE_LEN {
                // Overlong line: keep its first MAX_LINE_LEN bytes, drop the rest as it comes.
                if !self.discarding {
                    self.long_line.clear();
                    self.long_line
                        .extend_from_slice(&self.buf[self.pos..self.pos + MAX_LINE_LEN]);
                    self.discarding = true;
                }
                self.pos = 0;
                self.end = 0;
            } else if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                self.end = pending;
                self.pos = 0;
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    if self.discarding {
                        // Only look for the end of the overlong line.
                        match memchr::memchr(b'\n', &self.buf[..n]) {
                            Some(i) => {
                                self.buf.copy_within(i..n, 0);
                                self.end = n - i;
                            }
                            None => self.end = 0,
                        }
                    } else {
                        self.end += n;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Deliver what was read before the damage, then report it.
                    self.eof = true;
                    let _ = self.run(f);
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_after_crash_padding_is_read_and_padding_alone_is_not() {
        let rec = b"203.0.113.5 - - [03/Nov/2026:10:00:00 +0900] \"GET /.env HTTP/1.1\" 200 9";
        let mut padded = vec![0u8; 4096];
        padded.extend_from_slice(rec);
        assert_eq!(after_nul_padding(&padded), &rec[..]);
        assert_eq!(after_nul_padding(rec), &rec[..]);
        for kept in [&[0u8; 10][..], b"\0\0  ", b"\0\0abc\0def", b"abc\0"] {
            assert_eq!(after_nul_padding(kept), kept);
        }
    }

    fn collect_slice(b: &[u8]) -> Vec<(u64, Vec<u8>, bool)> {
        let mut v = Vec::new();
        for_each_line_in(b, 1, |l| v.push((l.number, l.bytes.to_vec(), l.too_long)));
        v
    }

    fn collect_stream(b: &[u8]) -> Vec<(u64, Vec<u8>, bool)> {
        let mut v = Vec::new();
        // A reader that returns tiny pieces to exercise buffer handling.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(7000);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        LineReader::new(Trickle(b))
            .for_each(|l| v.push((l.number, l.bytes.to_vec(), l.too_long)))
            .unwrap();
        v
    }

    #[test]
    fn crlf_and_last_line() {
        let input = b"a\r\nb\n\nc";
        let want = vec![
            (1, b"a".to_vec(), false),
            (2, b"b".to_vec(), false),
            (3, b"".to_vec(), false),
            (4, b"c".to_vec(), false),
        ];
        assert_eq!(collect_slice(input), want);
        assert_eq!(collect_stream(input), want);
        assert_eq!(newline_count(input), 4);
        assert_eq!(newline_count(b"a\n"), 1);
    }

    #[test]
    fn overlong_lines_are_cut_not_buffered() {
        let mut input = vec![b'x'; MAX_LINE_LEN * 5];
        input.extend_from_slice(b"\nshort\n");
        input.extend(vec![b'y'; MAX_LINE_LEN + 3]);
        for got in [collect_slice(&input), collect_stream(&input)] {
            assert_eq!(got.len(), 3);
            assert!(got[0].2 && got[0].1.len() == MAX_LINE_LEN);
            assert_eq!(got[1], (2, b"short".to_vec(), false));
            assert!(got[2].2 && got[2].1.len() == MAX_LINE_LEN);
        }
    }

    #[test]
    fn chunks_end_at_newlines_and_respect_records() {
        let input = b"A1\nb\nb\nA2\nb\nA3\n";
        let chunks = split_chunks(input, 2, None);
        assert!(chunks.iter().all(|r| input[r.end - 1] == b'\n'));
        let pred = |l: &[u8]| l.starts_with(b"A");
        let chunks = split_chunks(input, 2, Some(&pred));
        let starts: Vec<_> = chunks.iter().map(|r| input[r.start]).collect();
        assert!(starts.iter().all(|&c| c == b'A'));
        assert_eq!(chunks.last().unwrap().end, input.len());

        // Each cut says which bytes finding it read: from `target` into its chunk to the cut.
        let mut looked = Vec::new();
        let again = split_chunks_then(input, 2, Some(&pred), &mut |r| looked.push(r));
        assert_eq!(again, chunks);
        let line_end = |at: usize| {
            input[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(input.len(), |i| at + i)
        };
        let want: Vec<_> = chunks
            .iter()
            .filter(|c| c.start + 2 < input.len())
            .map(|c| c.start + 2..line_end(c.end).max(c.end))
            .collect();
        assert_eq!(looked, want);
    }
}
