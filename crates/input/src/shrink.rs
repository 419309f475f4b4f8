//! Surviving a mapped file that shrinks while it is read.
//!
//! Plain inputs are memory-mapped. When another process truncates such a file meanwhile
//! (logrotate's `copytruncate` on a live access log, at 3 a.m., in the middle of a scan),
//! touching a mapped page past the new end raises `SIGBUS`, which would kill the whole run.
//! Every mapping of an input is registered here ([`GuardedMap`]); on Linux a `SIGBUS` handler
//! maps a page of zeros over the faulting page of a registered mapping and notes the hit, so
//! reading goes on (zeros parse as skipped lines) and the caller reports the file as changed
//! while it was read ([`GuardedMap::shrank`]). A `SIGBUS` outside every registered mapping
//! goes to the handler that was there before (Rust's own, or the default action).
//!
//! A page that cannot be read for another reason (a failing device) raises the same signal
//! and is handled the same way: zeros, and the file reported.
//!
//! Elsewhere the mapping is returned unguarded, as before.

use std::ops::Deref;

use memmap2::Mmap;

/// A read-only mapping of an input that survives the file shrinking underneath it.
pub struct GuardedMap {
    /// The registry slot (`None` where no handler could be installed, or the table is full).
    slot: Option<usize>,
    map: Mmap,
}

impl GuardedMap {
    pub fn new(map: Mmap) -> GuardedMap {
        let slot = imp::register(map.as_ptr() as usize, map.len());
        GuardedMap { slot, map }
    }

    /// Whether a page of the mapping had to be replaced by zeros because the file no longer
    /// reached it.
    pub fn shrank(&self) -> bool {
        self.slot.is_some_and(imp::hit)
    }
}

impl Deref for GuardedMap {
    type Target = Mmap;
    fn deref(&self) -> &Mmap {
        &self.map
    }
}

impl Drop for GuardedMap {
    /// Unregisters before the mapping is unmapped (fields drop after this).
    fn drop(&mut self) {
        if let Some(s) = self.slot {
            imp::unregister(s);
        }
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::OnceLock;

    /// Mappings guarded at once (one per input being read; more are left unguarded).
    const SLOTS: usize = 256;

    struct Slot {
        /// Claimed by a registration.
        used: AtomicBool,
        /// `start..end` are valid and the handler may use them.
        live: AtomicBool,
        start: AtomicUsize,
        end: AtomicUsize,
        hit: AtomicBool,
    }

    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Slot = Slot {
        used: AtomicBool::new(false),
        live: AtomicBool::new(false),
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        hit: AtomicBool::new(false),
    };

    static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
    static PAGE: AtomicUsize = AtomicUsize::new(4096);
    /// The handler installed before ours, for faults that are not ours; `None` when ours
    /// could not be installed.
    static PREVIOUS: OnceLock<Option<libc::sigaction>> = OnceLock::new();

    fn installed() -> bool {
        PREVIOUS
            .get_or_init(|| {
                // SAFETY: sysconf has no preconditions.
                let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
                if page > 0 {
                    PAGE.store(page as usize, Ordering::Relaxed);
                }
                // SAFETY: a zeroed sigaction is a valid value to fill in; the handler only
                // uses async-signal-safe calls (mmap, sigaction) and atomics.
                unsafe {
                    let mut action: libc::sigaction = std::mem::zeroed();
                    action.sa_sigaction = on_sigbus as *const () as usize;
                    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                    libc::sigemptyset(&mut action.sa_mask);
                    let mut old: libc::sigaction = std::mem::zeroed();
                    (libc::sigaction(libc::SIGBUS, &action, &mut old) == 0).then_some(old)
                }
            })
            .is_some()
    }

    pub fn register(start: usize, len: usize) -> Option<usize> {
        if len == 0 || !installed() {
            return None;
        }
        for (i, s) in TABLE.iter().enumerate() {
            if s.used
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                s.start.store(start, Ordering::Relaxed);
                s.end.store(start.saturating_add(len), Ordering::Relaxed);
                s.hit.store(false, Ordering::Relaxed);
                s.live.store(true, Ordering::Release);
                return Some(i);
            }
        }
        None
    }

    pub fn hit(slot: usize) -> bool {
        TABLE[slot].hit.load(Ordering::Acquire)
    }

    #[cfg(test)]
    pub fn is_live(slot: usize) -> bool {
        TABLE[slot].live.load(Ordering::Acquire)
    }

    pub fn unregister(slot: usize) {
        let s = &TABLE[slot];
        s.live.store(false, Ordering::Release);
        s.used.store(false, Ordering::Release);
    }

    extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
        let addr = unsafe { (*info).si_addr() } as usize;
        let page = PAGE.load(Ordering::Relaxed);
        for s in TABLE.iter() {
            if !s.live.load(Ordering::Acquire) {
                continue;
            }
            let (start, end) = (
                s.start.load(Ordering::Relaxed),
                s.end.load(Ordering::Relaxed),
            );
            if addr < start || addr >= end {
                continue;
            }
            let at = addr & !(page - 1);
            // SAFETY: `at` is a page of a live registered mapping (read-only, private); a
            // fixed anonymous mapping replaces just that page with zeros, and the mapping's
            // owner unmaps the whole range later as before.
            let p = unsafe {
                libc::mmap(
                    at as *mut libc::c_void,
                    page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                s.hit.store(true, Ordering::Release);
                // Returning retries the read, which now sees zeros.
                return;
            }
        }
        // Not ours: what would have happened without us.
        match PREVIOUS.get().copied().flatten() {
            Some(old) if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN => {
                if old.sa_flags & libc::SA_SIGINFO != 0 {
                    // SAFETY: the previous handler was installed for this signal with
                    // SA_SIGINFO, so it takes these three arguments.
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        unsafe { std::mem::transmute(old.sa_sigaction) };
                    f(sig, info, ctx);
                } else {
                    // SAFETY: as above, a one-argument handler.
                    let f: extern "C" fn(libc::c_int) =
                        unsafe { std::mem::transmute(old.sa_sigaction) };
                    f(sig);
                }
            }
            _ => {
                // SAFETY: restoring the default action; returning re-runs the faulting
                // access, which then ends the process as it would have without us.
                unsafe {
                    libc::signal(libc::SIGBUS, libc::SIG_DFL);
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn register(_start: usize, _len: usize) -> Option<usize> {
        None
    }
    pub fn hit(_slot: usize) -> bool {
        false
    }
    pub fn unregister(_slot: usize) {}
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_mapping_truncated_underneath_reads_zeros_instead_of_dying() {
        let path = std::env::temp_dir().join(format!("ecir-shrink-test-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![b'a'; 256 * 1024]).unwrap();
        drop(f);
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: test file, private read-only mapping.
        let map = GuardedMap::new(unsafe { Mmap::map(&file) }.unwrap());
        assert!(map.slot.is_some(), "guarded");
        let at = |i: usize| unsafe { std::ptr::read_volatile(map.as_ptr().add(i)) };
        assert_eq!(at(200_000), b'a');
        assert!(!map.shrank());
        // Another process's copytruncate, in effect.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4096)
            .unwrap();
        assert_eq!(at(100), b'a', "what is still there reads as before");
        assert_eq!(at(200_000), 0, "past the new end: zeros, not SIGBUS");
        assert_eq!(at(250_000), 0);
        assert!(map.shrank());
        let slot = map.slot.unwrap();
        drop(map);
        assert!(!imp::is_live(slot), "unregistered on drop");
        let _ = std::fs::remove_file(&path);
    }
}
