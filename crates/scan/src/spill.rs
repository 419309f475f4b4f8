//! Sorted runs of fixed-size records spilled to a private temporary directory, and their
//! streaming k-way merge: how run-wide per-client state stays bounded in memory while its
//! figures stay exact.
//!
//! A holder of keyed records keeps at most a capped number in memory; when full it sorts them
//! by key and writes them as one run file. At the end all runs (plus what is still in memory)
//! are merged in key order, records with equal keys combined, one record per source in memory
//! at a time. Combining must be commutative and associative, so the result does not depend on
//! which records were spilled when (that depends on how chunks and threads met).
//!
//! The directory is created on the first spill under [`std::env::temp_dir`] (`TMPDIR`), never
//! beside the evidence, readable by this user only, named `.ecir-scan-PID-…` (hidden, so a scan
//! of that directory skips it). Run files are removed when their last holder drops them (also
//! while unwinding from a panic), the directory with the last run. At most [`MAX_RUNS`] runs
//! are kept: beyond that they are merged into one, so a final merge opens a bounded number of
//! files.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Runs kept before they are merged into one.
pub(crate) const MAX_RUNS: usize = 32;
/// Buffer of each run reader and writer.
const IO_BUF: usize = 64 * 1024;

/// A record that can be spilled: fixed size on disk, ordered by a key, combinable.
pub(crate) trait Record: Sized {
    /// Bytes of one encoded record.
    const SIZE: usize;
    type Key: Ord + Copy;
    fn key(&self) -> Self::Key;
    fn encode(&self, out: &mut [u8]);
    fn decode(bytes: &[u8]) -> Self;
    /// Adds `other` (same key) into `self`; must be commutative and associative.
    fn combine(&mut self, other: Self);
}

/// The private directory of one scan's runs; removed when the last run holding it is dropped.
#[derive(Debug)]
struct SpillDir {
    path: PathBuf,
    next: AtomicU64,
}

impl SpillDir {
    fn create(parent: &Path) -> io::Result<SpillDir> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = parent.join(format!(
            ".ecir-scan-{}-{nanos}-{}",
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
pub(crate) struct Runs<R> {
    /// Where the directory is created on the first spill.
    parent: PathBuf,
    dir: Option<Arc<SpillDir>>,
    runs: Vec<Run>,
    _records: std::marker::PhantomData<fn() -> R>,
}

impl<R: Record> Runs<R> {
    pub fn new(parent: PathBuf) -> Self {
        Runs {
            parent,
            dir: None,
            runs: Vec::new(),
            _records: std::marker::PhantomData,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Records on disk (counting a key once per run it is in).
    #[cfg(test)]
    pub fn records(&self) -> u64 {
        self.runs.iter().map(|r| r.records).sum()
    }

    #[cfg(test)]
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
            let mut buf = vec![0u8; R::SIZE];
            let mut n = 0u64;
            for r in sorted {
                r.encode(&mut buf);
                w.write_all(&buf)?;
                n += 1;
            }
            Ok(n)
        })?;
        self.runs.push(run);
        self.limit()
    }

    /// Takes over `other`'s runs (their files stay where they are).
    pub fn append(&mut self, other: Runs<R>) -> io::Result<()> {
        if self.dir.is_none() {
            self.dir = other.dir.clone();
        }
        self.runs.extend(other.runs);
        self.limit()
    }

    /// Merges all runs into one when there are more than [`MAX_RUNS`].
    fn limit(&mut self) -> io::Result<()> {
        if self.runs.len() <= MAX_RUNS {
            return Ok(());
        }
        // The merge owns its readers, so the new run can be written while it streams.
        let mut it = self.merge(Vec::new())?;
        let merged = self.write_run(|w| {
            let mut buf = vec![0u8; R::SIZE];
            let mut n = 0u64;
            for r in &mut it {
                r?.encode(&mut buf);
                w.write_all(&buf)?;
                n += 1;
            }
            Ok(n)
        })?;
        self.runs = vec![merged];
        Ok(())
    }

    fn write_run(
        &mut self,
        fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<u64>,
    ) -> io::Result<Run> {
        let dir = match &self.dir {
            Some(d) => Arc::clone(d),
            None => {
                let d = Arc::new(SpillDir::create(&self.parent)?);
                self.dir = Some(Arc::clone(&d));
                d
            }
        };
        let n = dir.next.fetch_add(1, Ordering::Relaxed);
        let path = dir.path.join(format!("run-{n:06}.bin"));
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let file = o.open(&path)?;
        // From here the file is owned by `run`, so it is removed if writing fails.
        let mut run = Run {
            path,
            records: 0,
            _dir: dir,
        };
        let mut w = BufWriter::with_capacity(IO_BUF, file);
        run.records = fill(&mut w)?;
        w.flush()?;
        Ok(run)
    }

    /// All records in key order, equal keys combined: the runs plus `memory` (sorted by key,
    /// each key once).
    pub fn merge(&self, memory: Vec<R>) -> io::Result<Merge<R>> {
        let mut sources = Vec::with_capacity(self.runs.len() + 1);
        for r in &self.runs {
            sources.push(Source::File {
                reader: BufReader::with_capacity(IO_BUF, File::open(&r.path)?),
                left: r.records,
            });
        }
        sources.push(Source::Memory(memory.into_iter()));
        let mut m = Merge {
            heads: Vec::with_capacity(sources.len()),
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            buf: vec![0u8; R::SIZE],
            failed: false,
        };
        for i in 0..m.sources.len() {
            let head = m.pull(i)?;
            if let Some(h) = &head {
                m.heap.push(Reverse((h.key(), i)));
            }
            m.heads.push(head);
        }
        Ok(m)
    }
}

enum Source<R> {
    File { reader: BufReader<File>, left: u64 },
    Memory(std::vec::IntoIter<R>),
}

/// Streaming k-way merge of runs; yields each key once, combined over all sources. Ties in
/// the heap go to the lower source index, so the order of combining is fixed.
pub(crate) struct Merge<R: Record> {
    sources: Vec<Source<R>>,
    heads: Vec<Option<R>>,
    heap: BinaryHeap<Reverse<(R::Key, usize)>>,
    buf: Vec<u8>,
    failed: bool,
}

impl<R: Record> Merge<R> {
    fn pull(&mut self, i: usize) -> io::Result<Option<R>> {
        match &mut self.sources[i] {
            Source::Memory(it) => Ok(it.next()),
            Source::File { reader, left } => {
                if *left == 0 {
                    return Ok(None);
                }
                reader.read_exact(&mut self.buf)?;
                *left -= 1;
                Ok(Some(R::decode(&self.buf)))
            }
        }
    }

    fn advance(&mut self, i: usize) -> io::Result<R> {
        let rec = self.heads[i].take().expect("a head for every heap entry");
        let next = self.pull(i)?;
        if let Some(n) = &next {
            self.heap.push(Reverse((n.key(), i)));
        }
        self.heads[i] = next;
        Ok(rec)
    }
}

impl<R: Record> Iterator for Merge<R> {
    type Item = io::Result<R>;

    fn next(&mut self) -> Option<io::Result<R>> {
        if self.failed {
            return None;
        }
        let Reverse((key, i)) = self.heap.pop()?;
        let mut rec = match self.advance(i) {
            Ok(r) => r,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        while let Some(Reverse((k, j))) = self.heap.peek().copied() {
            if k != key {
                break;
            }
            self.heap.pop();
            match self.advance(j) {
                Ok(r) => rec.combine(r),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        Some(Ok(rec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Count(u32, u64);

    impl Record for Count {
        const SIZE: usize = 12;
        type Key = u32;
        fn key(&self) -> u32 {
            self.0
        }
        fn encode(&self, out: &mut [u8]) {
            out[..4].copy_from_slice(&self.0.to_le_bytes());
            out[4..12].copy_from_slice(&self.1.to_le_bytes());
        }
        fn decode(b: &[u8]) -> Self {
            Count(
                u32::from_le_bytes(b[..4].try_into().unwrap()),
                u64::from_le_bytes(b[4..12].try_into().unwrap()),
            )
        }
        fn combine(&mut self, o: Self) {
            self.1 += o.1;
        }
    }

    #[test]
    fn runs_merge_combines_equal_keys_and_clean_up() {
        let parent = std::env::temp_dir();
        let mut runs: Runs<Count> = Runs::new(parent);
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
            .unwrap()
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
    fn unwritable_parent_is_an_error() {
        let mut runs: Runs<Count> = Runs::new(PathBuf::from("/nonexistent/ecir-spill-test"));
        assert!(runs.spill(&[Count(1, 1)]).is_err());
        assert!(runs.is_empty());
    }
}
