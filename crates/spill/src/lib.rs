//! Sorted runs of records spilled to a private temporary directory, and their streaming k-way
//! merge: how run-wide per-client state (requests per IP in `ecir-scan`, 404s per IP in the
//! recon detector) stays bounded in memory while its figures stay exact.
//!
//! A holder of keyed records keeps at most a capped number in memory; when full it sorts them
//! by key and writes them as one run file. At the end all runs (plus what is still in memory)
//! are merged in key order, records with equal keys combined, one record per source in memory
//! at a time. Combining must be commutative and associative, so the result does not depend on
//! which records were spilled when (that depends on how chunks and threads met).
//!
//! The directory is created on the first spill under the parent the holder names (normally
//! [`std::env::temp_dir`], i.e. `TMPDIR`), never beside the evidence, readable by this user
//! only, named `.ecir-TAG-PID-…` (hidden, so a scan of that directory skips it). Run files are
//! removed when their last holder drops them (also while unwinding from a panic), the
//! directory with the last run. At most [`MAX_RUNS`] runs are kept: beyond that the smallest
//! are merged into one (runs grow in tiers, so a record is rewritten a few times), and a final
//! merge opens a bounded number of files.
//!
//! [`Spool`] is the simpler holder: blocks of bytes beyond a memory cap appended to one file,
//! all read back at the end, for state needed whole only when a detector finishes.
//!
//! This crate knows files only as its own temporary runs; it never reads evidence.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Runs kept before the smallest are merged into one.
pub const MAX_RUNS: usize = 32;
/// Buffer of each run reader and writer.
const IO_BUF: usize = 64 * 1024;

/// A record that can be spilled: ordered by a key, combinable, written as bytes.
pub trait Record: Sized {
    type Key: Ord + Copy;
    /// State shared by the records one merge reads back (for example interned file names).
    type Reader: Default;
    fn key(&self) -> Self::Key;
    /// Appends the record's bytes to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads back what [`Record::encode`] wrote; `None` for damaged bytes.
    fn decode(bytes: &[u8], reader: &mut Self::Reader) -> Option<Self>;
    /// Adds `other` (same key) into `self`; must be commutative and associative.
    fn combine(&mut self, other: Self);
}

/// The private directory of one holder's runs; removed when the last run holding it is
/// dropped.
#[derive(Debug)]
struct SpillDir {
    path: PathBuf,
    next: AtomicU64,
}

impl SpillDir {
    fn create(parent: &Path, tag: &str) -> io::Result<SpillDir> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = parent.join(format!(
            ".ecir-{tag}-{}-{nanos}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(&path)?;
        Ok(SpillDir {
            path,
            next: AtomicU64::new(0),
        })
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// One sorted run file with `records` records; the file is removed on drop.
#[derive(Debug)]
struct Run {
    path: PathBuf,
    records: u64,
    _dir: Arc<SpillDir>,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Spilled runs of records of type `R`.
#[derive(Debug)]
pub struct Runs<R> {
    /// Where the directory is created on the first spill.
    parent: PathBuf,
    /// Names the directory (`.ecir-TAG-…`).
    tag: &'static str,
    dir: Option<Arc<SpillDir>>,
    runs: Vec<Run>,
    _records: std::marker::PhantomData<fn() -> R>,
}

impl<R: Record> Runs<R> {
    pub fn new(parent: PathBuf, tag: &'static str) -> Self {
        Runs {
            parent,
            tag,
            dir: None,
            runs: Vec::new(),
            _records: std::marker::PhantomData,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Records on disk (counting a key once per run it is in).
    pub fn records(&self) -> u64 {
        self.runs.iter().map(|r| r.records).sum()
    }

    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// Where the spill directory is (or would be created).
    pub fn parent(&self) -> &Path {
        &self.parent
    }

    /// Writes `sorted` (ascending keys, each key once) as a new run.
    pub fn spill<'a>(&mut self, sorted: impl IntoIterator<Item = &'a R>) -> io::Result<()>
    where
        R: 'a,
    {
        let run = self.write_run(|w| {
            let mut buf = Vec::new();
            let mut n = 0u64;
            for r in sorted {
                write_record(w, &mut buf, r)?;
                n += 1;
            }
            Ok(n)
        })?;
        self.runs.push(run);
        self.limit()
    }

    /// Takes over `other`'s runs (their files stay where they are).
    pub fn append(&mut self, other: Runs<R>) -> io::Result<()> {
        if other.runs.is_empty() {
            return Ok(());
        }
        if self.dir.is_none() {
            self.dir = other.dir.clone();
        }
        self.runs.extend(other.runs);
        self.limit()
    }

    /// When there are more than [`MAX_RUNS`] runs, merges the smallest into one, leaving
    /// half of [`MAX_RUNS`] and the merged one: runs grow in tiers, so a record is rewritten
    /// a few times over a long spill, not once per merge. When that fails, the runs stay as
    /// they were.
    fn limit(&mut self) -> io::Result<()> {
        if self.runs.len() <= MAX_RUNS {
            return Ok(());
        }
        let mut all = std::mem::take(&mut self.runs);
        all.sort_by_key(|r| r.records);
        let keep = all.split_off(all.len() - MAX_RUNS / 2);
        self.runs = all;
        // The merge owns its readers, so the new run can be written while it streams.
        let mut it = self.merge(Vec::new());
        let merged = self.write_run(|w| {
            let mut buf = Vec::new();
            let mut n = 0u64;
            for r in &mut it {
                write_record(w, &mut buf, &r?)?;
                n += 1;
            }
            Ok(n)
        });
        drop(it);
        match merged {
            Ok(run) => {
                self.runs = keep;
                self.runs.push(run);
                Ok(())
            }
            Err(e) => {
                self.runs.extend(keep);
                Err(e)
            }
        }
    }

    fn write_run(
        &mut self,
        fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<u64>,
    ) -> io::Result<Run> {
        // From here the file is owned by `run`, so it is removed if writing fails.
        let (mut run, file) = new_file(&mut self.dir, &self.parent, self.tag, "run")?;
        let mut w = BufWriter::with_capacity(IO_BUF, file);
        run.records = fill(&mut w)?;
        w.flush()?;
        Ok(run)
    }

    /// All records in key order, equal keys combined: the runs plus `memory` (sorted by key,
    /// each key once). A run that cannot be opened or read yields one error and ends there;
    /// the other sources go on.
    pub fn merge(&self, memory: Vec<R>) -> Merge<R> {
        let mut sources = Vec::with_capacity(self.runs.len() + 1);
        for r in &self.runs {
            sources.push(match File::open(&r.path) {
                Ok(f) => Source::File {
                    reader: BufReader::with_capacity(IO_BUF, f),
                    left: r.records,
                },
                Err(e) => Source::Failed(Some(e)),
            });
        }
        sources.push(Source::Memory(memory.into_iter()));
        let mut m = Merge {
            heads: Vec::with_capacity(sources.len()),
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            buf: Vec::new(),
            reader: R::Reader::default(),
            errors: Vec::new(),
        };
        for i in 0..m.sources.len() {
            let head = m.pull(i);
            if let Some(h) = &head {
                m.heap.push(Reverse((h.key(), i)));
            }
            m.heads.push(head);
        }
        m
    }
}

/// Appends one length-prefixed record to a run.
fn write_record<R: Record>(w: &mut impl Write, buf: &mut Vec<u8>, r: &R) -> io::Result<()> {
    buf.clear();
    r.encode(buf);
    let len = u32::try_from(buf.len()).map_err(|_| io::Error::other("record too large"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(buf)
}

enum Source<R> {
    File {
        reader: BufReader<File>,
        left: u64,
    },
    Memory(std::vec::IntoIter<R>),
    /// Could not be read (the error, until it is reported).
    Failed(Option<io::Error>),
}

/// Streaming k-way merge of runs; yields each key once, combined over all sources. Ties in
/// the heap go to the lower source index, so the order of combining is fixed.
pub struct Merge<R: Record> {
    sources: Vec<Source<R>>,
    heads: Vec<Option<R>>,
    heap: BinaryHeap<Reverse<(R::Key, usize)>>,
    buf: Vec<u8>,
    reader: R::Reader,
    /// Read errors not reported yet.
    errors: Vec<io::Error>,
}

impl<R: Record> Merge<R> {
    /// The next record of source `i`; a read error ends the source and is kept for reporting.
    fn pull(&mut self, i: usize) -> Option<R> {
        let got = match &mut self.sources[i] {
            Source::Memory(it) => return it.next(),
            Source::Failed(e) => {
                self.errors.extend(e.take());
                return None;
            }
            Source::File { left: 0, .. } => return None,
            Source::File { reader, left } => {
                *left -= 1;
                read_record(reader, &mut self.buf, &mut self.reader)
            }
        };
        match got {
            Ok(r) => Some(r),
            Err(e) => {
                self.errors.push(e);
                self.sources[i] = Source::Failed(None);
                None
            }
        }
    }

    fn advance(&mut self, i: usize) -> R {
        let rec = self.heads[i].take().expect("a head for every heap entry");
        let next = self.pull(i);
        if let Some(n) = &next {
            self.heap.push(Reverse((n.key(), i)));
        }
        self.heads[i] = next;
        rec
    }
}

/// Reads one length-prefixed record.
/// Reads one length-prefixed block into `buf`. The buffer grows with the bytes actually
/// read, so a damaged length never allocates more than the file holds.
fn read_block(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u64::from(u32::from_le_bytes(len));
    buf.clear();
    r.take(len).read_to_end(buf)?;
    if buf.len() as u64 != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "run record cut short",
        ));
    }
    Ok(())
}

fn read_record<R: Record>(
    r: &mut impl Read,
    buf: &mut Vec<u8>,
    reader: &mut R::Reader,
) -> io::Result<R> {
    read_block(r, buf)?;
    R::decode(buf, reader)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "damaged run record"))
}

impl<R: Record> Iterator for Merge<R> {
    type Item = io::Result<R>;

    /// Records in key order; a read error comes as one `Err` item before the records that
    /// follow it.
    fn next(&mut self) -> Option<io::Result<R>> {
        if let Some(e) = self.errors.pop() {
            return Some(Err(e));
        }
        let Reverse((key, i)) = self.heap.pop()?;
        let mut rec = self.advance(i);
        while let Some(Reverse((k, j))) = self.heap.peek().copied() {
            if k != key {
                break;
            }
            self.heap.pop();
            let other = self.advance(j);
            rec.combine(other);
        }
        Some(Ok(rec))
    }
}

/// Blocks of bytes kept in memory up to a cap and beyond it appended to a private temporary
/// file, all read back at the end: for state a detector needs whole only when it finishes,
/// in no particular order until then (the admin detector's kept requests). Unlike [`Runs`],
/// nothing is sorted or combined.
#[derive(Debug)]
pub struct Spool {
    parent: PathBuf,
    tag: &'static str,
    /// Bytes of blocks kept in memory before the next ones are written to disk;
    /// `usize::MAX` once writing failed.
    mem_cap: usize,
    memory: Vec<Vec<u8>>,
    memory_bytes: usize,
    dir: Option<Arc<SpillDir>>,
    /// Files written, each holding `records` length-prefixed blocks; the last one may be
    /// open in `writer`. Blocks are written whole, unbuffered (they are large): a block is
    /// counted once `write_all` returned, so a failed write loses nothing counted (a torn
    /// tail past the counted blocks is never read).
    files: Vec<Run>,
    writer: Option<File>,
}

impl Spool {
    /// A spool keeping up to `mem_cap` bytes of blocks in memory, writing the rest under
    /// `parent` in a directory named after `tag`.
    pub fn new(parent: PathBuf, tag: &'static str, mem_cap: usize) -> Self {
        Spool {
            parent,
            tag,
            mem_cap,
            memory: Vec::new(),
            memory_bytes: 0,
            dir: None,
            files: Vec::new(),
            writer: None,
        }
    }

    /// Whether some blocks are on disk.
    pub fn has_spilled(&self) -> bool {
        !self.files.is_empty()
    }

    /// Bytes of the blocks held in memory.
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    /// Adds a block: in memory while under the cap, else appended to the spool file. When
    /// writing fails, the block stays in memory, the spool stops writing (everything after
    /// stays in memory) and the error is returned, once.
    pub fn push(&mut self, block: Vec<u8>) -> io::Result<()> {
        if self.memory_bytes + block.len() <= self.mem_cap {
            self.memory_bytes += block.len();
            self.memory.push(block);
            return Ok(());
        }
        match self.write(&block) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.mem_cap = usize::MAX;
                self.writer = None;
                self.memory_bytes += block.len();
                self.memory.push(block);
                Err(e)
            }
        }
    }

    fn write(&mut self, block: &[u8]) -> io::Result<()> {
        let len = u32::try_from(block.len()).map_err(|_| io::Error::other("block too large"))?;
        if self.writer.is_none() {
            let (run, file) = new_file(&mut self.dir, &self.parent, self.tag, "spool")?;
            self.files.push(run);
            self.writer = Some(file);
        }
        let (Some(w), Some(run)) = (self.writer.as_mut(), self.files.last_mut()) else {
            return Err(io::Error::other("spool file not open"));
        };
        let mut framed = Vec::with_capacity(4 + block.len());
        framed.extend_from_slice(&len.to_le_bytes());
        framed.extend_from_slice(block);
        w.write_all(&framed)?;
        run.records += 1;
        Ok(())
    }

    /// Closes the open file (nothing is buffered).
    fn close(&mut self) -> io::Result<()> {
        self.writer = None;
        Ok(())
    }

    /// Takes over `other`'s blocks (its files stay where they are), then writes blocks out
    /// until the memory held is within the cap again: however many spools are merged into
    /// one, it holds one cap's worth. When writing fails, the blocks stay in memory, the
    /// spool stops writing (as in [`Spool::push`]) and the error is returned; nothing is lost.
    pub fn append(&mut self, mut other: Spool) -> io::Result<()> {
        self.close()?;
        other.close()?;
        if self.dir.is_none() {
            self.dir = other.dir.take();
        }
        self.files.append(&mut other.files);
        self.memory_bytes += other.memory_bytes;
        self.memory.append(&mut other.memory);
        if other.mem_cap == usize::MAX {
            self.mem_cap = usize::MAX;
        }
        while self.memory_bytes > self.mem_cap {
            let Some(block) = self.memory.pop() else {
                break;
            };
            if let Err(e) = self.write(&block) {
                self.mem_cap = usize::MAX;
                self.writer = None;
                self.memory.push(block);
                return Err(e);
            }
            self.memory_bytes -= block.len();
        }
        Ok(())
    }

    /// Calls `f` with every block, those on disk first, leaving them in the spool (a first
    /// pass over what [`Spool::into_blocks`] gives next). A file that cannot be read ends the
    /// pass with its error.
    pub fn for_each_block(&mut self, mut f: impl FnMut(&[u8])) -> io::Result<()> {
        self.close()?;
        let mut block = Vec::new();
        for run in &self.files {
            let mut reader = BufReader::with_capacity(IO_BUF, File::open(&run.path)?);
            for _ in 0..run.records {
                read_block(&mut reader, &mut block)?;
                f(&block);
            }
        }
        for b in &self.memory {
            f(b);
        }
        Ok(())
    }

    /// Every block, those on disk first. A file that cannot be read yields one error and ends
    /// there; the other files and the blocks in memory still come.
    pub fn into_blocks(mut self) -> SpoolBlocks {
        let closed = self.close().err();
        SpoolBlocks {
            files: std::mem::take(&mut self.files).into_iter(),
            current: None,
            memory: std::mem::take(&mut self.memory).into_iter(),
            pending_error: closed,
        }
    }
}

/// A new empty file `PREFIX-N.bin`, readable by this user only, in the holder's private
/// directory (created under `parent` on first use), as a [`Run`] that removes it when
/// dropped, with the file open for writing.
fn new_file(
    dir: &mut Option<Arc<SpillDir>>,
    parent: &Path,
    tag: &str,
    prefix: &str,
) -> io::Result<(Run, File)> {
    let dir = match dir {
        Some(d) => Arc::clone(d),
        None => Arc::clone(dir.insert(Arc::new(SpillDir::create(parent, tag)?))),
    };
    let n = dir.next.fetch_add(1, Ordering::Relaxed);
    let path = dir.path.join(format!("{prefix}-{n:06}.bin"));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let file = o.open(&path)?;
    Ok((
        Run {
            path,
            records: 0,
            _dir: dir,
        },
        file,
    ))
}

/// The blocks of a [`Spool`], read back one at a time (files are removed once read).
pub struct SpoolBlocks {
    files: std::vec::IntoIter<Run>,
    /// The file being read, its reader and the blocks left in it.
    current: Option<(Run, BufReader<File>, u64)>,
    memory: std::vec::IntoIter<Vec<u8>>,
    pending_error: Option<io::Error>,
}

impl Iterator for SpoolBlocks {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
        if let Some(e) = self.pending_error.take() {
            return Some(Err(e));
        }
        loop {
            if let Some((_, reader, left)) = &mut self.current {
                if *left > 0 {
                    *left -= 1;
                    let mut block = Vec::new();
                    let read = read_block(reader, &mut block).map(|()| block);
                    if read.is_err() {
                        self.current = None;
                    }
                    return Some(read);
                }
                self.current = None;
            }
            let Some(run) = self.files.next() else {
                return self.memory.next().map(Ok);
            };
            match File::open(&run.path) {
                Ok(f) => {
                    let left = run.records;
                    self.current = Some((run, BufReader::with_capacity(IO_BUF, f), left));
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Count(u32, u64);

    impl Record for Count {
        type Key = u32;
        type Reader = ();
        fn key(&self) -> u32 {
            self.0
        }
        fn encode(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.0.to_le_bytes());
            out.extend_from_slice(&self.1.to_le_bytes());
        }
        fn decode(b: &[u8], _: &mut ()) -> Option<Self> {
            Some(Count(
                u32::from_le_bytes(b.get(..4)?.try_into().ok()?),
                u64::from_le_bytes(b.get(4..12)?.try_into().ok()?),
            ))
        }
        fn combine(&mut self, o: Self) {
            self.1 += o.1;
        }
    }

    #[test]
    fn many_runs_merge_in_tiers_and_lose_nothing() {
        let mut runs: Runs<Count> = Runs::new(std::env::temp_dir(), "spill-test");
        for r in 0..200u32 {
            let v: Vec<Count> = (0..50).map(|k| Count(k + r % 7, 1)).collect();
            runs.spill(&v).unwrap();
            assert!(runs.len() <= MAX_RUNS);
        }
        // Tiers: more than one run holds merged records (a single merge of everything would
        // leave one big run and fresh small ones).
        assert!(runs.runs.iter().filter(|r| r.records > 50).count() > 1);
        let got: Vec<Count> = runs.merge(Vec::new()).map(|r| r.unwrap()).collect();
        let mut want = std::collections::BTreeMap::new();
        for r in 0..200u32 {
            for k in 0..50 {
                *want.entry(k + r % 7).or_insert(0u64) += 1;
            }
        }
        let want: Vec<Count> = want.into_iter().map(|(k, n)| Count(k, n)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_damaged_length_reads_what_is_there_and_fails() {
        let mut bytes = 5u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"hello");
        bytes.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        bytes.extend_from_slice(b"only ten b");
        let mut r = std::io::Cursor::new(bytes);
        let mut buf = Vec::new();
        read_block(&mut r, &mut buf).unwrap();
        assert_eq!(buf, b"hello");
        let e = read_block(&mut r, &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        // What the file holds, not what the length claims (4 GiB).
        assert!(buf.capacity() < 1 << 20, "{}", buf.capacity());
    }

    #[test]
    fn runs_merge_combines_equal_keys_and_clean_up() {
        let parent = std::env::temp_dir();
        let mut runs: Runs<Count> = Runs::new(parent, "spill-test");
        // More runs than MAX_RUNS, so they are merged on the way.
        for r in 0..(MAX_RUNS as u32 + 5) {
            let v: Vec<Count> = (0..50).map(|k| Count(k * (r % 3 + 1), 1)).collect();
            runs.spill(&v).unwrap();
        }
        assert!(runs.len() <= MAX_RUNS);
        let dir = runs.dir.as_ref().unwrap().path.clone();
        assert!(dir.is_dir());
        let got: Vec<Count> = runs
            .merge(vec![Count(0, 100), Count(1000, 1)])
            .map(|r| r.unwrap())
            .collect();
        let mut want = std::collections::BTreeMap::new();
        for r in 0..(MAX_RUNS as u32 + 5) {
            for k in 0..50 {
                *want.entry(k * (r % 3 + 1)).or_insert(0u64) += 1;
            }
        }
        *want.entry(0).or_default() += 100;
        *want.entry(1000).or_default() += 1;
        let want: Vec<Count> = want.into_iter().map(|(k, n)| Count(k, n)).collect();
        assert_eq!(got, want);
        drop(runs);
        assert!(!dir.exists(), "spill directory removed");
    }

    #[test]
    fn spool_gives_back_every_block_and_cleans_up() {
        let parent = std::env::temp_dir();
        let block = |i: u32| -> Vec<u8> { (0..(i % 7) * 100).map(|k| (k + i) as u8).collect() };
        let mut a = Spool::new(parent.clone(), "spool-test", 1000);
        let mut b = Spool::new(parent, "spool-test", 0);
        for i in 0..40 {
            a.push(block(i)).unwrap();
            b.push(block(100 + i)).unwrap();
        }
        assert!(a.has_spilled() && b.has_spilled());
        assert!(a.memory_bytes() <= 1000 && b.memory_bytes() == 0);
        let dirs = [&a, &b].map(|s| s.dir.as_ref().unwrap().path.clone());
        let mut c = Spool::new(std::env::temp_dir(), "spool-test", 1000);
        for i in 203..206 {
            c.push(block(i)).unwrap();
        }
        assert!(!c.has_spilled() && c.memory_bytes() > 0);
        a.append(b).unwrap();
        a.append(c).unwrap();
        assert!(
            a.memory_bytes() <= 1000,
            "merged spools hold one cap's worth: {}",
            a.memory_bytes()
        );
        a.push(block(7)).unwrap();
        let mut first_pass = Vec::new();
        a.for_each_block(|b| first_pass.push(b.to_vec())).unwrap();
        first_pass.sort();
        let mut got: Vec<Vec<u8>> = a.into_blocks().map(|b| b.unwrap()).collect();
        let mut want: Vec<Vec<u8>> = (0..40)
            .chain(100..140)
            .chain(203..206)
            .chain([7])
            .map(block)
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(first_pass, want, "a first pass leaves the blocks in place");
        for d in dirs {
            assert!(!d.exists(), "spool directory removed");
        }
    }

    #[test]
    fn unwritable_spool_keeps_blocks_in_memory() {
        let mut s = Spool::new(
            PathBuf::from("/nonexistent/ecir-spill-test"),
            "spool-test",
            4,
        );
        s.push(vec![1, 2, 3]).unwrap();
        assert!(s.push(vec![4, 5]).is_err(), "the failure is reported");
        s.push(vec![6]).unwrap();
        assert!(!s.has_spilled());
        let got: Vec<Vec<u8>> = s.into_blocks().map(|b| b.unwrap()).collect();
        assert_eq!(got, vec![vec![1, 2, 3], vec![4, 5], vec![6]]);

        // Merged past the cap, the blocks that cannot be written stay in memory.
        let mut a = Spool::new(
            PathBuf::from("/nonexistent/ecir-spill-test"),
            "spool-test",
            4,
        );
        let mut b = Spool::new(std::env::temp_dir(), "spool-test", 4);
        a.push(vec![1, 2, 3]).unwrap();
        b.push(vec![4, 5]).unwrap();
        assert!(a.append(b).is_err(), "the failure is reported");
        let mut got: Vec<Vec<u8>> = a.into_blocks().map(|b| b.unwrap()).collect();
        got.sort();
        assert_eq!(got, vec![vec![1, 2, 3], vec![4, 5]]);
    }

    #[test]
    fn unwritable_parent_is_an_error() {
        let mut runs: Runs<Count> =
            Runs::new(PathBuf::from("/nonexistent/ecir-spill-test"), "spill-test");
        assert!(runs.spill(&[Count(1, 1)]).is_err());
        assert!(runs.is_empty());
    }
}
