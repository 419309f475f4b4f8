//! Spotting catch-all pages (soft 404s): sites that answer any path, even one that does not
//! exist, with 200 and the same page. Requests for paths an attacker guessed then look
//! answered; what gives the page away is that many different paths got a body of exactly the
//! same size. [`SizePaths`] keeps, per response size, a few of the distinct paths that got it,
//! in bounded state that merges to the same result however the lines were split.

use std::collections::BTreeMap;

/// Response sizes of answered requests, each with up to `N` distinct path hashes (0 for an
/// empty slot; `N` is all the check asks). The `cap` smallest sizes are kept, a choice
/// independent of line order and split; `bound` is then the smallest size left out, and
/// sizes at or above it are not kept.
pub(crate) struct SizePaths<const N: usize> {
    pub(crate) sizes: BTreeMap<u64, [u64; N]>,
    pub(crate) bound: Option<u64>,
    cap: usize,
}

impl<const N: usize> SizePaths<N> {
    /// An empty table keeping up to `cap` sizes.
    pub(crate) fn new(cap: usize) -> Self {
        SizePaths {
            sizes: BTreeMap::new(),
            bound: None,
            cap,
        }
    }

    /// Records that a path hashed to `path` (see [`path_hash`]) was answered with `size` bytes.
    pub(crate) fn add(&mut self, size: u64, path: u64) {
        if self.bound.is_some_and(|b| size >= b) {
            return;
        }
        let hashes = self.sizes.entry(size).or_insert([0; N]);
        let path = path.max(1);
        // The `N` smallest distinct hashes, in order (empty slots, 0, last): the same
        // whatever the order paths come in.
        if !hashes.contains(&path) {
            if let Some(slot) = hashes.iter().position(|&h| h == 0 || h > path) {
                hashes[slot..].rotate_right(1);
                hashes[slot] = path;
            }
        }
        self.limit();
    }

    /// Absorbs `other` (the same table over other lines).
    pub(crate) fn merge(&mut self, other: SizePaths<N>) {
        self.bound = match (self.bound, other.bound) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for (size, hashes) in other.sizes {
            for h in hashes.into_iter().filter(|&h| h != 0) {
                self.add(size, h);
            }
        }
        if let Some(b) = self.bound {
            self.sizes.split_off(&b);
        }
    }

    /// Keeps the `cap` smallest sizes.
    fn limit(&mut self) {
        while self.sizes.len() > self.cap {
            if let Some((largest, _)) = self.sizes.pop_last() {
                self.bound = Some(self.bound.map_or(largest, |b| b.min(largest)));
            }
        }
    }

    /// Distinct paths kept for `size` (at most `N`).
    #[cfg(test)]
    pub(crate) fn paths_with(&self, size: u64) -> usize {
        self.sizes
            .get(&size)
            .map_or(0, |h| h.iter().filter(|&&h| h != 0).count())
    }

    /// The sizes that `N` or more distinct paths got: the catch-all page's.
    pub(crate) fn shared_sizes(&self) -> std::collections::BTreeSet<u64> {
        self.sizes
            .iter()
            .filter(|(_, h)| h.iter().all(|&h| h != 0))
            .map(|(s, _)| *s)
            .collect()
    }
}

/// A path's hash for [`SizePaths`].
pub(crate) fn path_hash(path: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answered_sizes_keep_the_smallest_whatever_the_order() {
        // More sizes than kept, in a scrambled order, split over states; size 7 has four
        // paths (a shared size for N = 3), size 9 two.
        let cap = 5000;
        let n = cap as u64 + 500;
        let sizes: Vec<(u64, u64)> = (0..n)
            .map(|i| (i * 7919 % n + 10, i))
            .chain([(7, 4), (7, 1), (7, 2), (7, 2), (7, 3), (9, 1), (9, 2)])
            .collect();
        let fill = |parts: usize| {
            let mut states: Vec<SizePaths<3>> = (0..parts).map(|_| SizePaths::new(cap)).collect();
            for (k, &(size, path)) in sizes.iter().enumerate() {
                states[k % parts].add(size, path_hash(&format!("/p{path}")));
            }
            let mut it = states.into_iter();
            let mut all = it.next().unwrap();
            for s in it {
                all.merge(s);
            }
            all
        };
        let one = fill(1);
        assert_eq!(one.sizes.len(), cap);
        // Kept: 7, 9 and 10.. up to the cap; the first size left out is the bound.
        let last_kept = 10 + cap as u64 - 3;
        assert_eq!(one.sizes.keys().next_back(), Some(&last_kept));
        assert_eq!(one.bound, Some(last_kept + 1));
        assert_eq!((one.paths_with(7), one.paths_with(9)), (3, 2));
        assert_eq!(one.shared_sizes().into_iter().collect::<Vec<_>>(), vec![7]);
        // The three smallest hashes of size 7's four paths, in order.
        let mut want: Vec<u64> = (1..=4)
            .map(|p| path_hash(&format!("/p{p}")).max(1))
            .collect();
        want.sort_unstable();
        assert_eq!(one.sizes[&7].to_vec(), want[..3].to_vec());
        for parts in [2, 5] {
            let other = fill(parts);
            assert_eq!(other.sizes, one.sizes, "{parts} parts");
            assert_eq!(other.bound, one.bound);
        }
    }
}
