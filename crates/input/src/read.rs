//! Opening an input: compression by magic bytes, memory maps for plain files, streaming
//! decompression for gzip (multi-member), and an honest account of damaged archives.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;
use memmap2::Mmap;

use crate::discover::describe_io;
use crate::hash::HashingReader;
use crate::lines::{Line, LineReader};

/// How an input is stored.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    /// A compression ecir recognises but does not read (name of it).
    Unsupported(&'static str),
}

impl Compression {
    pub fn as_str(&self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Unsupported(name) => name,
        }
    }
}

/// Recognises compression from the first bytes of a file.
pub fn sniff_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(b"BZh") && head.len() >= 4 && head[3].is_ascii_digit() {
        Compression::Unsupported("bzip2")
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Unsupported("xz")
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Unsupported("zstd")
    } else if head.starts_with(b"PK\x03\x04") {
        Compression::Unsupported("zip")
    } else {
        Compression::None
    }
}

/// An opened input, ready to be read once.
pub enum OpenInput {
    /// A plain file, mapped read-only (`None` for an empty file, which cannot be mapped) and
    /// guarded against the file shrinking meanwhile, and the open file itself (for reading it
    /// in order, e.g. to hash it, without mapping).
    Mapped {
        map: Option<crate::GuardedMap>,
        size: u64,
        file: File,
    },
    /// A gzip archive, to be streamed.
    Gzip { file: File, size: u64 },
    /// A compression ecir does not read; the file is still hashed.
    Unsupported {
        file: File,
        size: u64,
        kind: &'static str,
    },
}

/// Opens `path` read-only without updating its access time where the OS allows it (Linux
/// `O_NOATIME`, permitted to the file's owner and root); falls back silently to a plain
/// read-only open otherwise, so evidence metadata is disturbed as little as possible.
pub fn open_evidence(path: &Path) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        if let Ok(f) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOATIME)
            .open(path)
        {
            return Ok(f);
        }
    }
    File::open(path)
}

/// Opens `path` read-only and decides how to read it.
pub fn open_input(path: &Path) -> Result<OpenInput, String> {
    let mut file = open_evidence(path).map_err(|e| describe_io(&e))?;
    let md = file.metadata().map_err(|e| describe_io(&e))?;
    if md.is_dir() {
        return Err("is a directory".into());
    }
    let size = md.len();
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(describe_io(&e)),
        }
    }
    let file = open_evidence(path).map_err(|e| describe_io(&e))?;
    match sniff_compression(&head[..got]) {
        Compression::Gzip => Ok(OpenInput::Gzip { file, size }),
        Compression::Unsupported(kind) => Ok(OpenInput::Unsupported { file, size, kind }),
        Compression::None => {
            if size == 0 {
                return Ok(OpenInput::Mapped {
                    map: None,
                    size,
                    file,
                });
            }
            // SAFETY: the map is read-only and private to this process. A file that another
            // process shrinks meanwhile (log rotation) reads as zeros past its new end instead
            // of raising SIGBUS (see `shrink`), and the caller reports it.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| describe_io(&e))?;
            Ok(OpenInput::Mapped {
                map: Some(crate::GuardedMap::new(map)),
                size,
                file,
            })
        }
    }
}

/// Tells the kernel this process no longer needs the mapped pages of `map[offset..offset+len]`
/// (they stay in the page cache; touching them again faults them back in). Keeps resident
/// memory bounded while a large file is read front to back.
pub fn release_pages(map: &Mmap, offset: usize, len: usize) {
    #[cfg(unix)]
    {
        // SAFETY: the mapping is private and read-only, so dropping its pages loses nothing:
        // later reads fault the same file contents back in. No reference into the released
        // range is used after this call by the caller (the window has been fully processed).
        let _ =
            unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) };
    }
    #[cfg(not(unix))]
    let _ = (map, offset, len);
}

/// Releases (as [`release_pages`]) the 2 MiB-aligned span of `map` holding `range`: reading
/// a byte may have mapped a whole huge page of the page cache, or a 64 KiB block around it.
/// For bytes read outside the ranges being parsed (looking for chunk boundaries).
pub fn release_span(map: &Mmap, range: std::ops::Range<usize>) {
    const SPAN: usize = 2 << 20;
    let start = range.start / SPAN * SPAN;
    let end = range
        .end
        .max(range.start + 1)
        .div_ceil(SPAN)
        .saturating_mul(SPAN)
        .min(map.len());
    if end > start {
        release_pages(map, start, end - start);
    }
}

/// Maps the pages of `map[offset..offset+len]` in one call (`MADV_POPULATE_READ`, Linux 5.14
/// and later), instead of one page fault per few pages as a reader touches them. Only a hint:
/// where the kernel does not support it, pages fault in as usual.
pub fn prefault_pages(map: &Mmap, offset: usize, len: usize) {
    #[cfg(target_os = "linux")]
    {
        let _ = map.advise_range(memmap2::Advice::PopulateRead, offset, len);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (map, offset, len);
}

/// What streaming a gzip archive produced.
#[derive(Debug, Default)]
pub struct StreamOutcome {
    pub sha256: String,
    /// Compressed bytes hashed (the whole file unless reading it failed).
    pub bytes_read: u64,
    pub decompressed_bytes: u64,
    pub lines: u64,
    /// Damage, with how far reading got.
    pub error: Option<String>,
}

/// Counts the bytes a decoder pulls through it.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Streams the lines of a gzip archive (all members) to `f`, hashing the compressed bytes as
/// they are read. Damage stops decompression; the lines before it have been delivered, and the
/// rest of the file is still hashed.
pub fn stream_gzip(file: File, f: impl FnMut(Line<'_>)) -> StreamOutcome {
    let hashing = HashingReader::new(file);
    let buffered = BufReader::with_capacity(256 * 1024, hashing);
    let decoder = MultiGzDecoder::new(buffered);
    let mut counting = LineReader::new(Counting {
        inner: decoder,
        count: 0,
    });
    let result = counting.for_each(f);
    let lines = counting.lines();
    let counted = counting.into_inner();
    let decompressed = counted.count;
    let buffered = counted.inner.into_inner();
    let consumed_before = buffered.get_ref().count() - buffered.buffer().len() as u64;
    let hashing = buffered.into_inner();
    let (sha256, bytes_read, drain_err) = hashing.finish();
    let error = match (result, drain_err) {
        (Err(e), _) => Some(describe_gzip_error(
            &e,
            consumed_before,
            decompressed,
            lines,
        )),
        (Ok(()), Some(e)) => Some(format!(
            "read error after decompression: {}",
            describe_io(&e)
        )),
        (Ok(()), None) => None,
    };
    StreamOutcome {
        sha256,
        bytes_read,
        decompressed_bytes: decompressed,
        lines,
        error,
    }
}

fn describe_gzip_error(e: &io::Error, compressed_at: u64, decompressed: u64, lines: u64) -> String {
    let what = match e.kind() {
        io::ErrorKind::UnexpectedEof => "gzip stream truncated".to_string(),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            let msg = e.to_string();
            let lower = msg.to_ascii_lowercase();
            if lower.contains("crc") || lower.contains("checksum") {
                // The check sum is read at the end of a member, after all its data was
                // decompressed and handed on: the bad bytes are among the lines read.
                return format!(
                    "gzip check failed at the end of a member (its CRC or its length does not match the data: corrupted data), at about compressed byte {compressed_at}; {decompressed} bytes and {lines} lines were read, and the lines of that member may hold corrupted text"
                );
            } else {
                format!("gzip data damaged ({msg})")
            }
        }
        _ => format!("read error: {}", describe_io(e)),
    };
    format!(
        "{what} at about compressed byte {compressed_at}; {decompressed} bytes and {lines} lines recovered before the damage"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn run(bytes: &[u8]) -> (Vec<String>, StreamOutcome) {
        let path =
            std::env::temp_dir().join(format!("ecir-gz-{}-{}", std::process::id(), bytes.len()));
        std::fs::write(&path, bytes).unwrap();
        let file = File::open(&path).unwrap();
        let mut lines = Vec::new();
        let out = stream_gzip(file, |l| {
            lines.push(String::from_utf8_lossy(l.bytes).into_owned())
        });
        std::fs::remove_file(&path).unwrap();
        (lines, out)
    }

    #[test]
    fn multi_member_reads_all() {
        let mut data = gz(b"one\ntwo\n");
        data.extend(gz(b"three\n"));
        let (lines, out) = run(&data);
        assert_eq!(lines, vec!["one", "two", "three"]);
        assert!(out.error.is_none());
        assert_eq!(out.bytes_read, data.len() as u64);
        assert_eq!(out.sha256, crate::hash::sha256_hex(&data));
    }

    #[test]
    fn truncated_archive_keeps_lines_before_damage() {
        let text: String = (0..20000)
            .map(|i| format!("line number {i} with some padding text\n"))
            .collect();
        let data = gz(text.as_bytes());
        let cut = &data[..data.len() / 2];
        let (lines, out) = run(cut);
        let err = out.error.expect("damage reported");
        assert!(err.contains("truncated"), "{err}");
        assert!(lines.len() > 1000);
        assert_eq!(lines[0], "line number 0 with some padding text");
        assert_eq!(out.bytes_read, cut.len() as u64);
    }

    #[test]
    fn bad_crc_is_reported() {
        let mut data = gz(b"hello\nworld\n");
        let n = data.len();
        data[n - 8] ^= 0xff; // CRC32 field of the trailer
        let (lines, out) = run(&data);
        let err = out.error.unwrap();
        // The member's lines were read before its check sum: the message says they may be
        // corrupted, not that they came before the damage.
        assert!(
            err.contains("CRC or its length does not match")
                && err.contains("may hold corrupted text"),
            "{err}"
        );
        assert!(!err.contains("before the damage"), "{err}");
        assert_eq!(lines, vec!["hello", "world"]);
    }

    #[test]
    fn sniffs_magic() {
        assert_eq!(sniff_compression(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            sniff_compression(b"BZh9"),
            Compression::Unsupported("bzip2")
        );
        assert_eq!(sniff_compression(b"127.0.0.1 - -"), Compression::None);
    }
}
