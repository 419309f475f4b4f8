//! Folding a sequence of items (files, or chunks of one file) in order on the rayon pool,
//! with few states alive at once.
//!
//! One worker folds items from the start into one state; the second half of what is left
//! is offered to idle workers, recursively. Whoever claims a half first folds it: the worker
//! that just finished the first half, going on with its state, or an idle worker, with a
//! fresh state. Finished runs are merged in order as soon as they touch, and a worker whose
//! next items were taken over hands its state in at once instead of holding it while it
//! helps elsewhere. So the states alive at once are bounded by the number of workers (each
//! folding one, plus the finished runs between them), whatever the number of items, and a
//! sequence is folded in a handful of long runs: detector state and its caches are built a
//! handful of times, not once per item.
//!
//! Merging must be associative (the runs are merged in item order, but in whatever grouping
//! the timing gives); the tests across thread counts and chunk sizes check that it is.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// What to fold, and how.
pub(crate) trait OrderedFold: Sync {
    type State: Send;

    /// A new state that will cover the items from `at` on.
    fn fresh(&self, at: usize) -> Self::State;

    /// Folds `items` (in order) into `state`, which covers the items just before them.
    fn step(&self, state: Self::State, items: Range<usize>) -> Self::State;

    /// Appends `right`, the state of the items just after `left`'s, to `left`.
    fn merge(&self, left: &mut Self::State, right: Self::State);

    /// The fewest items offered to another worker at once (at least 1): a range is split
    /// only when both halves have at least this many.
    fn min_offer(&self) -> usize;

    /// Called on a finished run's state that must wait for a run before it to finish
    /// before it can be merged: lets it give back memory meanwhile. Default: nothing.
    fn park(&self, _state: &mut Self::State) {}
}

/// Folds items `0..n` into `first` (a state covering nothing yet), in order.
pub(crate) fn fold_in_order<F: OrderedFold>(fold: &F, n: usize, first: F::State) -> F::State {
    let runner = Runner {
        fold,
        items: n,
        done: Mutex::new(BTreeMap::new()),
    };
    if let Some((start, state)) = runner.run(0, 0, n, first) {
        runner.deposit(start, n, state);
    }
    let done = std::mem::take(&mut *runner.lock());
    // Every run is finished, and runs that touch were merged: one run, `0..n`.
    let mut runs = done.into_values();
    let mut all = match runs.next() {
        Some(d) => d.state,
        None => fold.fresh(0),
    };
    for d in runs {
        fold.merge(&mut all, d.state);
    }
    all
}

/// A finished run of items `start..end` (its map key is `start`).
struct Done<S> {
    end: usize,
    state: S,
}

struct Runner<'f, F: OrderedFold> {
    fold: &'f F,
    /// Items in all.
    items: usize,
    /// Finished runs not yet merged with the run before them, by first item. Two that touch
    /// are merged at once, so another worker is still folding (or merging) between any two
    /// of them.
    done: Mutex<BTreeMap<usize, Done<F::State>>>,
}

impl<F: OrderedFold> Runner<'_, F> {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<usize, Done<F::State>>> {
        self.done.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Folds items `lo..hi` into `state`, which covers items `start..lo`. Returns the first
    /// item the state covers and the state, or `None` when the state was handed to
    /// [`Runner::deposit`] because another worker took over part of the range.
    fn run(
        &self,
        start: usize,
        lo: usize,
        hi: usize,
        state: F::State,
    ) -> Option<(usize, F::State)> {
        let min = self.fold.min_offer().max(1);
        if hi - lo < 2 * min {
            return Some((start, self.fold.step(state, lo..hi)));
        }
        let mid = lo + (hi - lo) / 2;
        let claimed = AtomicBool::new(false);
        let (left, ()) = rayon::join(
            || {
                let went_on = self.run(start, lo, mid, state);
                if claimed.swap(true, Ordering::AcqRel) {
                    // Another worker folds the second half: hand this state in now.
                    if let Some((start, state)) = went_on {
                        self.deposit(start, mid, state);
                    }
                    return None;
                }
                let (start, state) = went_on.unwrap_or_else(|| self.resume(mid));
                self.run(start, mid, hi, state)
            },
            || {
                if !claimed.swap(true, Ordering::AcqRel) {
                    if let Some((start, state)) = self.run(mid, mid, hi, self.fold.fresh(mid)) {
                        self.deposit(start, hi, state);
                    }
                }
            },
        );
        left
    }

    /// Files the finished run `start..end`, merged with the finished runs it touches (the
    /// left one first). Merging happens outside the lock (it may itself run on the pool,
    /// and a worker waiting there may take a job that deposits): a run taken out to be
    /// merged is looked at again once merged, and the runs still in the map when the fold
    /// ends are merged in order by [`fold_in_order`]. A run that must wait for another is
    /// parked ([`OrderedFold::park`]) before it is filed, outside the lock.
    fn deposit(&self, start: usize, end: usize, state: F::State) {
        let mut start = start;
        let mut run = Done { end, state };
        let mut parked = false;
        loop {
            let (before, after) = {
                let mut done = self.lock();
                let before = done
                    .range(..start)
                    .next_back()
                    .filter(|(_, d)| d.end == start)
                    .map(|(&s, _)| s)
                    .and_then(|s| Some((s, done.remove(&s)?)));
                let after = done.remove(&run.end);
                if before.is_none() && after.is_none() {
                    let whole = start == 0 && run.end == self.items;
                    if parked || whole {
                        done.insert(start, run);
                        return;
                    }
                }
                (before, after)
            };
            if before.is_none() && after.is_none() {
                // Park, then look again: a neighbour may have been filed meanwhile.
                self.fold.park(&mut run.state);
                parked = true;
                continue;
            }
            parked = false;
            if let Some((s, mut left)) = before {
                self.fold.merge(&mut left.state, run.state);
                run.state = left.state;
                start = s;
            }
            if let Some(right) = after {
                self.fold.merge(&mut run.state, right.state);
                run.end = right.end;
            }
        }
    }

    /// The finished run ending at item `end`, to go on folding with its state: its first
    /// item and its state. Every item before `end` is folded and deposited when this is
    /// asked, so there is one, unless another worker is merging it with the run before it
    /// at this moment: then a fresh state starts at `end` (runs still merge in order).
    fn resume(&self, end: usize) -> (usize, F::State) {
        let mut done = self.lock();
        let found = done
            .range(..end)
            .next_back()
            .filter(|(_, d)| d.end == end)
            .map(|(&s, _)| s);
        match found.and_then(|s| Some((s, done.remove(&s)?))) {
            Some((s, d)) => (s, d.state),
            None => {
                drop(done);
                (end, self.fold.fresh(end))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Folds items into the list of items seen, counting the states alive at once.
    struct Collect {
        alive: AtomicUsize,
        most_alive: AtomicUsize,
        min: usize,
        /// Items in all, and states parked.
        n: usize,
        parked: AtomicUsize,
    }

    struct Seen<'a> {
        items: Vec<usize>,
        alive: &'a AtomicUsize,
    }

    impl Drop for Seen<'_> {
        fn drop(&mut self) {
            self.alive.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl<'a> Collect {
        fn new_state(&'a self) -> Seen<'a> {
            let n = self.alive.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_alive.fetch_max(n, Ordering::SeqCst);
            Seen {
                items: Vec::new(),
                alive: &self.alive,
            }
        }
    }

    impl<'a> OrderedFold for &'a Collect {
        type State = Seen<'a>;

        fn fresh(&self, _at: usize) -> Seen<'a> {
            self.new_state()
        }

        fn step(&self, mut state: Seen<'a>, items: Range<usize>) -> Seen<'a> {
            for i in items {
                // Uneven work, so that halves are taken over at different depths.
                let spin = (i * 7919) % 13 * 200;
                let mut x = 0u64;
                for k in 0..spin {
                    x = x.wrapping_add(std::hint::black_box(k as u64));
                }
                std::hint::black_box(x);
                state.items.push(i);
            }
            state
        }

        fn merge(&self, left: &mut Seen<'a>, right: Seen<'a>) {
            left.items.extend_from_slice(&right.items);
        }

        fn min_offer(&self) -> usize {
            self.min
        }

        fn park(&self, state: &mut Seen<'a>) {
            // Only a run that waits for another is parked, never the finished fold.
            assert!(
                !(state.items.len() == self.n && state.items.first() == Some(&0)),
                "the whole range parked"
            );
            state.items.shrink_to_fit();
            self.parked.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn every_item_once_in_order_with_few_states_alive() {
        for threads in [1, 2, 3, 4] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for (n, min) in [(0, 1), (1, 1), (2, 1), (7, 2), (1000, 1), (5000, 4)] {
                let c = Collect {
                    alive: AtomicUsize::new(0),
                    most_alive: AtomicUsize::new(0),
                    min,
                    n,
                    parked: AtomicUsize::new(0),
                };
                let first = c.new_state();
                let seen = pool.install(|| fold_in_order(&&c, n, first));
                assert_eq!(
                    seen.items,
                    (0..n).collect::<Vec<_>>(),
                    "n {n}, {threads} threads"
                );
                drop(seen);
                assert_eq!(c.alive.load(Ordering::SeqCst), 0);
                if threads == 1 {
                    // One worker folds everything in one run: nothing ever waits.
                    assert_eq!(c.parked.load(Ordering::SeqCst), 0, "n {n}");
                }
                // Each worker folds one state; between two finished runs a worker is folding.
                let most = c.most_alive.load(Ordering::SeqCst);
                assert!(
                    most <= 2 * threads + 1,
                    "{most} states alive at once with {threads} threads (n {n})"
                );
            }
        }
    }
}
