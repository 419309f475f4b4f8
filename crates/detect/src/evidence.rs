//! Keeping the most telling evidence lines and time spans in bounded, mergeable state.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use ecir_model::finding::MAX_EVIDENCE;
use ecir_model::text::evidence_text;
use ecir_model::{Evidence, Timestamp};

use crate::Origin;

/// Makes an evidence record for `origin`.
pub fn evidence(origin: &Origin<'_>, ts: Option<Timestamp>, weight: u32) -> Evidence {
    Evidence {
        file: Arc::clone(origin.file),
        line: origin.line,
        ts,
        text: evidence_text(origin.raw),
        weight,
    }
}

/// The order of evidence lines, best first: heavier, then earlier, then by file and line.
pub(crate) fn order(a: &Evidence, b: &Evidence) -> Ordering {
    b.weight
        .cmp(&a.weight)
        .then(a.ts.cmp(&b.ts))
        .then(a.file.cmp(&b.file))
        .then(a.line.cmp(&b.line))
}

/// The best [`MAX_EVIDENCE`] lines by (weight desc, time, file, line): a total order, so
/// merging kept sets gives the same result however the lines were split.
///
/// Kept as a heap whose top is the worst line kept: once full, an offer that does not beat
/// it is refused with one comparison and without building its text.
#[derive(Default, Debug, Clone)]
pub struct TopEvidence {
    heap: BinaryHeap<Ranked>,
}

/// An evidence line ordered worst-last by [`order`], so a max-heap's top is the worst.
#[derive(Debug, Clone)]
struct Ranked(Evidence);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        order(&self.0, &other.0) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        order(&self.0, &other.0)
    }
}

impl TopEvidence {
    /// Whether a line would rank before the worst kept one (always, while not full).
    fn admits(&self, file: &str, line: u64, ts: Option<Timestamp>, weight: u32) -> bool {
        if self.heap.len() < MAX_EVIDENCE {
            return true;
        }
        match self.heap.peek() {
            None => true,
            Some(Ranked(w)) => {
                weight > w.weight
                    || (weight == w.weight && (ts, file, line) < (w.ts, &*w.file, w.line))
            }
        }
    }

    pub fn offer(&mut self, origin: &Origin<'_>, ts: Option<Timestamp>, weight: u32) {
        if self.admits(origin.file, origin.line, ts, weight) {
            self.insert(evidence(origin, ts, weight));
        }
    }

    pub fn push(&mut self, e: Evidence) {
        if self.admits(&e.file, e.line, e.ts, e.weight) {
            self.insert(e);
        }
    }

    fn insert(&mut self, e: Evidence) {
        if self.heap.len() >= MAX_EVIDENCE {
            self.heap.pop();
        }
        self.heap.push(Ranked(e));
    }

    pub fn merge(&mut self, other: TopEvidence) {
        for Ranked(e) in other.heap {
            self.push(e);
        }
    }

    /// The kept lines, best first.
    pub fn into_vec(self) -> Vec<Evidence> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.0)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// The kept lines, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Evidence> {
        self.heap.iter().map(|r| &r.0)
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// First and last time seen.
#[derive(Default, Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

impl Span {
    pub fn add(&mut self, ts: Option<Timestamp>) {
        if let Some(t) = ts {
            if self.first.is_none_or(|f| t < f) {
                self.first = Some(t);
            }
            if self.last.is_none_or(|l| t > l) {
                self.last = Some(t);
            }
        }
    }

    pub fn merge(&mut self, other: Span) {
        self.add(other.first);
        self.add(other.last);
    }
}

/// Where a value was first seen: ordered by time, then file name, then line (a total order on
/// the lines of a scan).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeenAt {
    pub ts: Option<Timestamp>,
    pub file: Arc<str>,
    pub line: u64,
}

/// Up to `cap` distinct texts, those first seen earliest (by [`SeenAt`]): a sample that reads
/// like the start of what a client did.
///
/// It merges to the same result however the lines were split into chunks: a text among the
/// `cap` earliest overall is among the `cap` earliest of the part that holds its first
/// sighting (every text ranked before it there is ranked before it overall), and a text kept
/// by some part with a later sighting than its first ranks behind the `cap` texts that pushed
/// its first sighting out.
#[derive(Debug, Clone)]
pub struct EarliestDistinct {
    /// Sorted by [`SeenAt`]; texts distinct.
    items: Vec<(SeenAt, String)>,
    cap: usize,
}

impl Default for EarliestDistinct {
    /// An empty sample of up to 10 texts.
    fn default() -> Self {
        EarliestDistinct::new(10)
    }
}

impl EarliestDistinct {
    pub fn new(cap: usize) -> Self {
        EarliestDistinct {
            items: Vec::new(),
            cap,
        }
    }

    /// Offers the text of a line; `text` is only called when the line could enter the sample.
    pub fn offer(
        &mut self,
        origin: &Origin<'_>,
        ts: Option<Timestamp>,
        text: impl FnOnce() -> String,
    ) {
        if self.items.len() >= self.cap {
            if let Some((worst, _)) = self.items.last() {
                // Not earlier than the latest kept: refused (a kept text keeps its earlier
                // sighting).
                if (ts, &**origin.file, origin.line) >= (worst.ts, &*worst.file, worst.line) {
                    return;
                }
            }
        }
        let at = SeenAt {
            ts,
            file: Arc::clone(origin.file),
            line: origin.line,
        };
        self.insert(at, text());
    }

    pub fn insert(&mut self, at: SeenAt, text: String) {
        if let Some(i) = self.items.iter().position(|(_, t)| *t == text) {
            if self.items[i].0 <= at {
                return;
            }
            // Seen earlier than we knew: it moves up.
            self.items.remove(i);
        } else if self.items.len() >= self.cap {
            match self.items.last() {
                Some((worst, _)) if at < *worst => {
                    self.items.pop();
                }
                _ => return,
            }
        }
        let pos = self.items.partition_point(|(a, _)| *a < at);
        self.items.insert(pos, (at, text));
    }

    pub fn merge(&mut self, other: EarliestDistinct) {
        for (at, text) in other.items {
            self.insert(at, text);
        }
    }

    /// How many texts it keeps.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The kept texts with where each was first seen, earliest first.
    pub fn items(&self) -> &[(SeenAt, String)] {
        &self.items
    }

    /// The kept texts, earliest first.
    pub fn into_texts(self) -> Vec<String> {
        self.items.into_iter().map(|(_, t)| t).collect()
    }
}

/// Up to `cap` smallest distinct values, plus whether more were seen: a bounded set that
/// merges deterministically.
#[derive(Debug, Clone)]
pub struct SmallestSet<T: Ord + Clone> {
    items: Vec<T>,
    cap: usize,
    overflow: bool,
}

impl<T: Ord + Clone> Default for SmallestSet<T> {
    /// An empty set keeping up to 10 values.
    fn default() -> Self {
        SmallestSet::new(10)
    }
}

impl<T: Ord + Clone> SmallestSet<T> {
    pub fn new(cap: usize) -> Self {
        SmallestSet {
            items: Vec::new(),
            cap,
            overflow: false,
        }
    }

    pub fn insert(&mut self, v: T) {
        match self.items.binary_search(&v) {
            Ok(_) => {}
            Err(pos) => {
                if self.items.len() < self.cap {
                    self.items.insert(pos, v);
                } else {
                    self.overflow = true;
                    if pos < self.items.len() {
                        self.items.insert(pos, v);
                        self.items.pop();
                    }
                }
            }
        }
    }

    pub fn merge(&mut self, other: SmallestSet<T>) {
        self.overflow |= other.overflow;
        for v in other.items {
            self.insert(v);
        }
    }

    /// Number of distinct values, when not more than the cap.
    pub fn exact_len(&self) -> Option<usize> {
        (!self.overflow).then_some(self.items.len())
    }

    pub fn items(&self) -> &[T] {
        &self.items
    }

    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// How many values it keeps.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Records that more values were seen than kept (a set read back from a spill).
    pub fn mark_overflow(&mut self, overflow: bool) {
        self.overflow |= overflow;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_evidence_merge_is_split_independent() {
        let file: Arc<str> = Arc::from("f");
        let mk = |i: u64| (i, (i * 7919 % 13) as u32);
        let mut whole = TopEvidence::default();
        let mut a = TopEvidence::default();
        let mut b = TopEvidence::default();
        for i in 0..200u64 {
            let (line, w) = mk(i);
            let o = Origin {
                file: &file,
                line,
                raw: b"x",
            };
            let ts = Some(Timestamp::from_secs(i as i64, 0));
            whole.offer(&o, ts, w);
            if i % 3 == 0 { &mut a } else { &mut b }.offer(&o, ts, w);
        }
        a.merge(b);
        assert_eq!(a.into_vec(), whole.into_vec());
    }

    /// The sample of one sequence of lines, split into contiguous parts at `cuts` and merged
    /// in `order` (indices of parts).
    fn earliest_of(texts: &[String], cuts: &[usize], order: &[usize]) -> Vec<String> {
        let file: Arc<str> = Arc::from("access.log");
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(texts.len());
        let mut parts: Vec<EarliestDistinct> = bounds
            .windows(2)
            .map(|w| {
                let mut part = EarliestDistinct::default();
                for (i, t) in texts.iter().enumerate().take(w[1]).skip(w[0]) {
                    let o = Origin {
                        file: &file,
                        line: i as u64 + 1,
                        raw: b"x",
                    };
                    part.offer(&o, Some(Timestamp::from_secs(i as i64 / 3, 0)), || {
                        t.clone()
                    });
                }
                part
            })
            .collect();
        let mut merged = EarliestDistinct::default();
        for &i in order {
            merged.merge(std::mem::take(&mut parts[i]));
        }
        merged.into_texts()
    }

    #[test]
    fn earliest_distinct_is_the_first_ten_whatever_the_split() {
        // 40 distinct paths, each asked for several times, in a scrambled order.
        let texts: Vec<String> = (0..400u64)
            .map(|i| format!("/p{}", (i * 7919 + i / 13) % 40))
            .collect();
        let mut first = Vec::new();
        for t in &texts {
            if !first.contains(t) && first.len() < 10 {
                first.push(t.clone());
            }
        }
        assert_eq!(earliest_of(&texts, &[], &[0]), first);
        for (cuts, order) in [
            (vec![5], vec![0, 1]),
            (vec![5], vec![1, 0]),
            (vec![3, 17, 200], vec![2, 0, 3, 1]),
            (
                vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
                vec![11, 3, 7, 0, 1, 2, 4, 5, 6, 8, 9, 10],
            ),
        ] {
            assert_eq!(earliest_of(&texts, &cuts, &order), first, "cuts {cuts:?}");
        }
    }

    #[test]
    fn smallest_set_overflows() {
        let mut s = SmallestSet::new(2);
        s.insert(5);
        s.insert(3);
        assert_eq!(s.exact_len(), Some(2));
        s.insert(9);
        assert_eq!(s.exact_len(), None);
        assert_eq!(s.items(), &[3, 5]);
    }
}
