//! A table of per-client detector state that keeps at most a capped number of entries in
//! memory and spills the rest as sorted runs through [`ecir_spill`]: the one mechanism behind
//! recon's 404 state per IP, the web-attack groups per (class, IP) and the card detector's
//! checkout clients.
//!
//! Merging tables and reading them back give the same entries whatever was spilled when
//! (values merge commutatively and associatively). A spill that cannot be written keeps the
//! entries in memory and stops spilling; a run that cannot be read back ends its merge there;
//! both are reported through [`FinishContext::warn`] when the table is read at the end.

use std::hash::Hash;

use rustc_hash::FxHashMap;

use crate::codec::Files;
use crate::FinishContext;

/// A value kept per key in a [`SpillMap`].
pub(crate) trait Spillable: Default {
    type Key: Ord + Copy + Hash;
    /// Appends the key and value as bytes (see [`crate::codec`]).
    fn encode(key: Self::Key, value: &Self, out: &mut Vec<u8>);
    /// Reads back what [`Spillable::encode`] wrote; `None` for damaged bytes.
    fn decode(bytes: &[u8], files: &mut Files) -> Option<(Self::Key, Self)>;
    /// Adds `other` (same key); commutative and associative.
    fn merge(&mut self, other: Self);
}

/// A key and its value, as a spilled record.
pub(crate) struct Entry<V: Spillable>(V::Key, V);

impl<V: Spillable> ecir_spill::Record for Entry<V> {
    type Key = V::Key;
    type Reader = Files;

    fn key(&self) -> V::Key {
        self.0
    }

    fn encode(&self, out: &mut Vec<u8>) {
        V::encode(self.0, &self.1, out);
    }

    fn decode(bytes: &[u8], files: &mut Files) -> Option<Self> {
        V::decode(bytes, files).map(|(k, v)| Entry(k, v))
    }

    fn combine(&mut self, other: Self) {
        self.1.merge(other.1);
    }
}

/// Up to `cap` entries in memory, the rest in sorted runs under `TMPDIR`.
pub(crate) struct SpillMap<V: Spillable> {
    map: FxHashMap<V::Key, V>,
    /// Entries held before a spill; `usize::MAX` once spilling failed.
    pub(crate) cap: usize,
    runs: ecir_spill::Runs<Entry<V>>,
    /// Why spilling failed.
    error: Option<String>,
}

impl<V: Spillable> SpillMap<V> {
    /// A table spilling under `TMPDIR` in a directory named after `tag`.
    pub(crate) fn new(cap: usize, tag: &'static str) -> Self {
        Self::with_dir(cap, std::env::temp_dir(), tag)
    }

    pub(crate) fn with_dir(cap: usize, dir: std::path::PathBuf, tag: &'static str) -> Self {
        SpillMap {
            map: FxHashMap::default(),
            cap,
            runs: ecir_spill::Runs::new(dir, tag),
            error: None,
        }
    }

    /// Entries held in memory.
    #[cfg(test)]
    pub(crate) fn in_memory(&self) -> usize {
        self.map.len()
    }

    /// Whether some entries are on disk.
    #[cfg(test)]
    pub(crate) fn has_spilled(&self) -> bool {
        !self.runs.is_empty()
    }

    /// The value of `key`, spilling the others first when the table is full.
    #[inline]
    pub(crate) fn get_or_default(&mut self, key: V::Key) -> &mut V {
        if self.map.len() >= self.cap && !self.map.contains_key(&key) {
            self.spill();
        }
        self.map.entry(key).or_default()
    }

    /// Writes the entries in memory as a run sorted by key; on failure they stay in memory
    /// and this table stops spilling.
    #[cold]
    fn spill(&mut self) {
        if self.map.is_empty() || self.cap == usize::MAX {
            return;
        }
        let all = sorted(self.map.drain());
        if let Err(e) = self.runs.spill(&all) {
            self.map.extend(all.into_iter().map(|e| (e.0, e.1)));
            self.cap = usize::MAX;
            self.error = Some(e.to_string());
        }
    }

    /// Writes the entries in memory out as a run and frees the table's memory (see
    /// [`crate::DetectorState::park`]); when writing fails they stay in memory.
    pub(crate) fn park(&mut self) {
        self.spill();
        if self.map.is_empty() {
            self.map = FxHashMap::default();
        }
    }

    /// Absorbs `other` (the same table built over other lines).
    pub(crate) fn merge(&mut self, other: SpillMap<V>) {
        if other.cap == usize::MAX {
            self.cap = usize::MAX;
        }
        self.error = self.error.take().or(other.error);
        if let Err(e) = self.runs.append(other.runs) {
            self.cap = usize::MAX;
            self.error.get_or_insert(e.to_string());
        }
        // Combining is commutative: fold the smaller table into the larger one, spilling
        // first when both would not fit.
        let mut theirs = other.map;
        if self.map.len().saturating_add(theirs.len()) > self.cap {
            if self.map.len() < theirs.len() {
                std::mem::swap(&mut self.map, &mut theirs);
            }
            self.spill();
        }
        if self.map.len() < theirs.len() {
            std::mem::swap(&mut self.map, &mut theirs);
        }
        for (k, v) in theirs {
            match self.map.entry(k) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(v),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(v);
                }
            }
        }
    }

    /// Every entry in key order, spilled ones combined with the rest. Problems (a spill not
    /// written, a run not read back) are reported through `ctx`; `what` names the state.
    pub(crate) fn into_sorted<'c>(
        self,
        ctx: &'c FinishContext,
        what: &'static str,
    ) -> impl Iterator<Item = (V::Key, V)> + 'c
    where
        V: 'c,
    {
        if let Some(e) = &self.error {
            ctx.warn(format!(
                "{what} could not be spilled to the temporary directory ({e}); it was kept in memory, so memory use grew with it. Set TMPDIR to a writable directory outside the evidence."
            ));
        }
        let runs = self.runs;
        let merge = runs.merge(sorted(self.map));
        merge.filter_map(move |r| {
            // The runs' files stay until the merge is done.
            let _ = &runs;
            match r {
                Ok(Entry(k, v)) => Some((k, v)),
                Err(e) => {
                    ctx.warn(format!(
                        "{what} spilled to the temporary directory could not be read back ({e}): the findings built on it may be incomplete. Keep TMPDIR out of reach of temporary-file cleaners during a scan, and rerun."
                    ));
                    None
                }
            }
        })
    }
}

/// Entries as records sorted by key (the order of a run).
fn sorted<V: Spillable>(entries: impl IntoIterator<Item = (V::Key, V)>) -> Vec<Entry<V>> {
    let mut all: Vec<Entry<V>> = entries.into_iter().map(|(k, v)| Entry(k, v)).collect();
    all.sort_unstable_by_key(|e| e.0);
    all
}
