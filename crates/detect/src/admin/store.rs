//! The admin detector's kept admin-looking requests, until it finishes: encoded compactly in
//! blocks of an [`ecir_spill::Spool`] (256 KiB in memory per store, two stores per detector
//! state, the rest in a private temporary file), read back whole at finish. So a state's
//! memory does not grow with the requests a long run of logs holds (scanners' admin
//! guesses, brute force), and merging states appends files instead of copying requests.
//!
//! A store keeps at most the earliest [`MAX_REQUESTS`] by (time, file, line) (the detector
//! has two: requests answered 404 and the others): past
//! twice that many, the store is cut to the earliest (a pass over the keys, then a pass
//! writing the kept ones), and later requests after the last kept one are counted as dropped
//! without being stored.

use std::net::IpAddr;
use std::sync::Arc;

use ecir_model::text::evidence_text;
use ecir_model::{Evidence, Timestamp};

use super::{Req, ReqKey, MAX_REQUESTS, MAX_TEXT};
use crate::codec::{self, Cursor, Files};
use crate::{FinishContext, Origin};

/// Bytes of encoded requests gathered before they go to the spool as one block.
const BLOCK: usize = 64 * 1024;
/// Bytes of blocks a store keeps in memory; beyond them blocks go to the temporary file.
/// Small, so that a state reaches it early in a run (at 2 MiB, two stores a state and up to
/// three states filled only over some 4 GiB of logs: memory grew with the input).
pub(super) const MEM_CAP: usize = 256 << 10;
/// Weight of a request's evidence line.
const WEIGHT: u32 = 50;

/// What one request is made of, borrowed from the event (already cut to length).
pub(super) struct ReqParts<'e> {
    pub ts: Option<Timestamp>,
    pub ip: Option<IpAddr>,
    pub method: &'e str,
    pub path: &'e str,
    pub query: &'e str,
    pub status: u16,
    pub script_ua: bool,
}

pub(super) struct ReqStore {
    /// Encoded requests not yet handed to the spool.
    block: Vec<u8>,
    spool: ecir_spill::Spool,
    /// Requests stored (in `block` and the spool), some beyond `bound` after a merge.
    count: usize,
    /// Once the store was cut, the key of the latest request kept: a request after it can
    /// never be among the earliest `cap`, and is counted as dropped as it comes.
    bound: Option<ReqKey>,
    /// Requests not kept: beyond the cap, or lost reading the spool back (with a warning).
    pub(super) dropped: u64,
    /// Spool problems, for the report's warnings.
    errors: Vec<String>,
    /// Requests kept at most ([`MAX_REQUESTS`]; smaller in tests).
    cap: usize,
    /// Where a spool made by a cut writes, and its memory cap.
    dir: std::path::PathBuf,
    mem_cap: usize,
    /// `count` past which the store is cut next: twice the cap, or twice the count at a
    /// cut that could not read the spool back (then finishing applies the cap).
    next_cut: usize,
    /// Cuts tried (for tests).
    #[cfg(test)]
    cuts: usize,
}

impl ReqStore {
    pub(super) fn new() -> Self {
        Self::with(std::env::temp_dir(), MEM_CAP, MAX_REQUESTS)
    }

    /// A store spilling under `dir` past `mem_cap` bytes and keeping at most `cap` requests.
    pub(super) fn with(dir: std::path::PathBuf, mem_cap: usize, cap: usize) -> Self {
        ReqStore {
            block: Vec::new(),
            spool: ecir_spill::Spool::new(dir.clone(), "admin", mem_cap),
            count: 0,
            bound: None,
            dropped: 0,
            errors: Vec::new(),
            cap: cap.max(1),
            dir,
            mem_cap,
            next_cut: cap.max(1) * 2,
            #[cfg(test)]
            cuts: 0,
        }
    }

    /// Whether some requests are in the temporary file.
    #[cfg(test)]
    pub(super) fn has_spilled(&self) -> bool {
        self.spool.has_spilled()
    }

    /// Whether a request at (`ts`, `file`, `line`) may still be among the earliest kept.
    fn may_keep(&self, ts: Option<i64>, file: &str, line: u64) -> bool {
        self.bound
            .as_ref()
            .is_none_or(|(bt, bf, bl)| (ts, file, line) <= (*bt, &**bf, *bl))
    }

    /// Stores a request (or counts it as dropped when it comes after the bound).
    pub(super) fn push(&mut self, r: &ReqParts<'_>, origin: &Origin<'_>) {
        if !self.may_keep(r.ts.map(|t| t.utc_ms), origin.file, origin.line) {
            self.dropped += 1;
            return;
        }
        let raw = &origin.raw[..origin.raw.len().min(MAX_TEXT)];
        encode(&mut self.block, r, origin.file, origin.line, raw);
        self.count += 1;
        if self.block.len() >= BLOCK {
            self.flush_block();
        }
        if self.count > self.next_cut {
            self.cut();
        }
    }

    fn flush_block(&mut self) {
        if self.block.is_empty() {
            return;
        }
        let block = std::mem::take(&mut self.block);
        if let Err(e) = self.spool.push(block) {
            self.errors.push(format!("could not be written to the temporary directory ({e}); they were kept in memory, so memory use grew with them. Set TMPDIR to a writable directory outside the evidence."));
        }
    }

    /// Takes in the requests of another state.
    pub(super) fn merge(&mut self, mut other: ReqStore) {
        other.flush_block();
        if let Err(e) = self.spool.append(other.spool) {
            self.errors.push(format!("could not be written to the temporary directory ({e}); they were kept in memory, so memory use grew with them. Set TMPDIR to a writable directory outside the evidence."));
        }
        self.count += other.count;
        self.dropped += other.dropped;
        self.errors.append(&mut other.errors);
        // Each bound has the earliest `cap` of its state at or before it, so the union has
        // them at or before the earlier bound.
        self.bound = match (self.bound.take(), other.bound) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.count > self.next_cut {
            self.cut();
        }
    }

    /// Cuts the store to the earliest `cap` requests: one pass over the keys finds the last
    /// one kept, a second writes the requests up to it into a new spool.
    fn cut(&mut self) {
        #[cfg(test)]
        {
            self.cuts += 1;
        }
        self.flush_block();
        let mut files = Names::default();
        let mut keys: Vec<ReqKey> = Vec::new();
        let mut damaged = false;
        let first = self.spool.for_each_block(|b| {
            let mut c = Cursor(b);
            while !c.0.is_empty() {
                match decode_key(&mut c, &mut files).and_then(|k| skip_rest(&mut c).map(|()| k)) {
                    Some(k) => keys.push(k),
                    None => {
                        damaged = true;
                        break;
                    }
                }
            }
        });
        if first.is_err() || damaged || keys.len() <= self.cap {
            // Leave the store as it is, and try again only once it has doubled: finishing
            // reads it all back, applies the cap and reports the problem.
            if let Err(e) = first {
                self.errors.push(format!("spilled to the temporary directory could not be read back to apply the cap ({e}): the store kept growing until the end of the scan."));
            }
            self.next_cut = self.count.saturating_mul(2);
            return;
        }
        self.next_cut = self.cap * 2;
        keys.sort_unstable();
        let bound = keys.swap_remove(self.cap - 1);
        drop(keys);
        let old = std::mem::replace(
            &mut self.spool,
            ecir_spill::Spool::new(self.dir.clone(), "admin", self.mem_cap),
        );
        let before = self.count;
        self.count = 0;
        self.bound = Some(match self.bound.take() {
            Some(b) => b.min(bound),
            None => bound,
        });
        for block in old.into_blocks() {
            let block = match block {
                Ok(b) => b,
                Err(e) => {
                    self.errors.push(format!("spilled to the temporary directory could not be read back ({e}): the admin findings may be incomplete. Keep TMPDIR out of reach of temporary-file cleaners during a scan, and rerun."));
                    continue;
                }
            };
            let mut c = Cursor(&block);
            while !c.0.is_empty() {
                let start = c.0;
                let Some(k) =
                    decode_key(&mut c, &mut files).filter(|_| skip_rest(&mut c).is_some())
                else {
                    self.errors.push("spilled to the temporary directory were damaged: the admin findings may be incomplete.".into());
                    break;
                };
                let len = start.len() - c.0.len();
                if self.may_keep(k.0, &k.1, k.2) {
                    self.block.extend_from_slice(&start[..len]);
                    self.count += 1;
                    if self.block.len() >= BLOCK {
                        self.flush_block();
                    }
                }
            }
        }
        self.flush_block();
        self.dropped += (before - self.count) as u64;
    }

    /// Every kept request (in no particular order) and the requests dropped; problems
    /// reading the spool back become warnings.
    pub(super) fn finish(mut self, ctx: &FinishContext) -> (Vec<Req>, u64) {
        self.flush_block();
        for e in self.errors.drain(..) {
            ctx.warn(format!("Admin-looking requests {e}"));
        }
        let mut files = Names::default();
        // Stored requests, at most twice the cap between cuts: no doubling's spare room.
        let mut out: Vec<Req> =
            Vec::with_capacity(self.count.min(self.cap.saturating_mul(2).saturating_add(1)));
        let mut bound = self.bound.take();
        let mut dropped = self.dropped;
        let mut lost = false;
        for block in self.spool.into_blocks() {
            let block = match block {
                Ok(b) => b,
                Err(e) => {
                    lost = true;
                    ctx.warn(format!("Admin-looking requests spilled to the temporary directory could not be read back ({e}): the admin findings may be incomplete. Keep TMPDIR out of reach of temporary-file cleaners during a scan, and rerun."));
                    continue;
                }
            };
            let mut c = Cursor(&block);
            while !c.0.is_empty() {
                let Some(r) = decode(&mut c, &mut files) else {
                    lost = true;
                    break;
                };
                let k = (r.ts.map(|t| t.utc_ms), &*r.ev.file, r.ev.line);
                if bound
                    .as_ref()
                    .is_some_and(|(bt, bf, bl)| k > (*bt, &**bf, *bl))
                {
                    dropped += 1;
                    continue;
                }
                out.push(r);
                if out.len() > self.cap * 2 {
                    dropped += cut_vec(&mut out, self.cap);
                    bound = out.last().map(|r| super::key(&r.ts, &r.ev));
                }
            }
        }
        if lost {
            ctx.warn("Admin-looking requests spilled to the temporary directory were damaged: the admin findings may be incomplete.".into());
        }
        if out.len() > self.cap {
            dropped += cut_vec(&mut out, self.cap);
        }
        (out, dropped)
    }
}

/// File names read back, the last one first (consecutive requests mostly share a file).
#[derive(Default)]
struct Names {
    files: Files,
    last: Option<Arc<str>>,
}

impl Names {
    fn get(&mut self, name: &str) -> Arc<str> {
        match &self.last {
            Some(l) if **l == *name => Arc::clone(l),
            _ => {
                let f = codec::file_of(&mut self.files, name);
                self.last = Some(Arc::clone(&f));
                f
            }
        }
    }
}

/// Sorts `reqs` and keeps the earliest `cap`; returns how many were cut.
fn cut_vec(reqs: &mut Vec<Req>, cap: usize) -> u64 {
    reqs.sort_by(super::req_order);
    let cut = reqs.len().saturating_sub(cap);
    reqs.truncate(cap);
    cut as u64
}

/// Appends one request: its key (time, file, line) first, so a pass over keys can skip the
/// rest; the raw line, whose evidence text is built when it is read back.
fn encode(out: &mut Vec<u8>, r: &ReqParts<'_>, file: &str, line: u64, raw: &[u8]) {
    codec::put_ts(out, r.ts);
    codec::put_bytes(out, file.as_bytes());
    codec::put_u64(out, line);
    codec::put_ip(out, r.ip);
    codec::put_bytes(out, r.method.as_bytes());
    codec::put_bytes(out, r.path.as_bytes());
    codec::put_bytes(out, r.query.as_bytes());
    out.extend_from_slice(&r.status.to_le_bytes());
    out.push(u8::from(r.script_ua));
    codec::put_bytes(out, raw);
}

fn decode_key(c: &mut Cursor<'_>, files: &mut Names) -> Option<ReqKey> {
    let ts = c.ts()?;
    let file = files.get(c.str()?);
    let line = c.u64()?;
    Some((ts.map(|t| t.utc_ms), file, line))
}

/// Skips what follows the key of one request.
fn skip_rest(c: &mut Cursor<'_>) -> Option<()> {
    c.ip()?;
    for _ in 0..3 {
        let n = c.u32()? as usize;
        c.take(n)?;
    }
    c.take(3)?;
    let n = c.u32()? as usize;
    c.take(n)?;
    Some(())
}

fn decode(c: &mut Cursor<'_>, files: &mut Names) -> Option<Req> {
    let ts = c.ts()?;
    let file: Arc<str> = files.get(c.str()?);
    let line = c.u64()?;
    let ip = c.ip()?;
    let method = c.str()?.into();
    let path = c.str()?.into();
    let query = c.str()?.into();
    let status = c.take(2)?;
    let status = u16::from_le_bytes([status[0], status[1]]);
    let script_ua = c.u8()? != 0;
    let n = c.u32()? as usize;
    let raw = c.take(n)?;
    Some(Req {
        ts,
        ip,
        method,
        path,
        query,
        status,
        script_ua,
        ev: Evidence {
            file,
            line,
            ts,
            text: evidence_text(raw),
            weight: WEIGHT,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Request `i` of a varied set: out of time order, IPv4 and IPv6, some untimed, a long
    /// line, non-ASCII and control characters, two files.
    fn request(i: u64) -> (ReqParts<'static>, Arc<str>, u64, String) {
        let ts = (!i.is_multiple_of(17))
            .then(|| Timestamp::from_secs(1_700_000_000 + (i * 7919 % 1000) as i64, 9 * 3600));
        let ip: IpAddr = if i.is_multiple_of(3) {
            format!("2001:db8::{i:x}").parse().unwrap()
        } else {
            format!("203.0.113.{}", i % 250).parse().unwrap()
        };
        let paths = [
            "/admin/login",
            "/wp-login.php",
            "/管理/ログイン",
            "/admin/\u{1b}[31m",
        ];
        let raw = if i.is_multiple_of(50) {
            "x".repeat(5000)
        } else {
            format!(
                "{ip} - - [..] \"GET {} HTTP/1.1\" 404 0 \"-\" \"\u{7}curl\"",
                paths[(i % 4) as usize]
            )
        };
        let file: Arc<str> = Arc::from(if i.is_multiple_of(2) {
            "access.log"
        } else {
            "access.log.1"
        });
        let parts = ReqParts {
            ts,
            ip: Some(ip),
            method: if i.is_multiple_of(5) { "POST" } else { "GET" },
            path: paths[(i % 4) as usize],
            query: if i.is_multiple_of(7) { "a=1&b=%27" } else { "" },
            status: [200, 302, 404, 403][(i % 4) as usize],
            script_ua: i.is_multiple_of(6),
        };
        (parts, file, i + 1, raw)
    }

    /// Feeds requests `0..n` to `parts` stores made by `store`, in contiguous runs, merges
    /// them in order and finishes: the kept requests in order, as text, the dropped count and
    /// the warnings.
    /// Pushes [`request`] `i` into `store`.
    fn push_request(store: &mut ReqStore, i: u64) {
        let (r, file, line, raw) = request(i);
        let origin = Origin {
            file: &file,
            line,
            raw: raw.as_bytes(),
        };
        store.push(&r, &origin);
    }

    fn run(
        n: u64,
        parts: usize,
        store: impl Fn() -> ReqStore,
    ) -> (Vec<String>, u64, Vec<String>, bool) {
        let mut stores: Vec<ReqStore> = (0..parts).map(|_| store()).collect();
        for i in 0..n {
            push_request(&mut stores[(i as usize) * parts / n as usize], i);
        }
        let spilled = stores.iter().any(|s| s.has_spilled());
        let mut it = stores.into_iter();
        let mut all = it.next().unwrap();
        for s in it {
            all.merge(s);
        }
        let ctx = FinishContext::default();
        let (mut reqs, dropped) = all.finish(&ctx);
        reqs.sort_by(super::super::req_order);
        let text = reqs.iter().map(|r| format!("{r:?}")).collect();
        (text, dropped, ctx.take_warnings(), spilled)
    }

    fn temp_dir(test: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("ecir-admin-store-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn spilled_requests_come_back_exactly() {
        let dir = temp_dir("exact");
        let (want, dropped, warnings, spilled) = run(3000, 1, || {
            ReqStore::with(dir.clone(), usize::MAX, MAX_REQUESTS)
        });
        assert_eq!((want.len(), dropped, spilled), (3000, 0, false));
        assert!(warnings.is_empty());
        // The evidence text is made safe when read back, as when it was built in place.
        assert!(want
            .iter()
            .all(|r| !r.contains('\u{1b}') && !r.contains('\u{7}')));
        for (parts, mem_cap) in [(1, 0), (3, 1000), (4, 100_000)] {
            let got = run(3000, parts, || {
                ReqStore::with(dir.clone(), mem_cap, MAX_REQUESTS)
            });
            assert!(got.3, "{parts} parts, {mem_cap} bytes in memory: spilled");
            assert_eq!(
                (got.0, got.1, got.2),
                (want.clone(), 0, vec![]),
                "{parts} parts, {mem_cap} bytes"
            );
        }
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "spool files removed"
        );
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn a_cap_keeps_the_earliest_whatever_the_split() {
        let dir = temp_dir("cap");
        let (all, ..) = run(2000, 1, || {
            ReqStore::with(dir.clone(), usize::MAX, MAX_REQUESTS)
        });
        for cap in [1, 99, 300, 999, 1000] {
            for (parts, mem_cap) in [(1, usize::MAX), (1, 0), (3, 2000), (7, usize::MAX)] {
                let (got, dropped, warnings, _) =
                    run(2000, parts, || ReqStore::with(dir.clone(), mem_cap, cap));
                assert_eq!(got, all[..cap], "cap {cap}, {parts} parts, {mem_cap} bytes");
                assert_eq!(dropped, 2000 - cap as u64);
                assert!(warnings.is_empty());
            }
        }
    }

    #[test]
    fn a_spool_that_cannot_be_read_back_is_not_reread_on_every_request() {
        let dir = temp_dir("lost");
        let mut store = ReqStore::with(dir.clone(), 0, 10);
        let feed = |store: &mut ReqStore, range: std::ops::Range<u64>| {
            for i in range {
                push_request(store, i);
                store.flush_block();
            }
        };
        feed(&mut store, 0..15);
        assert!(store.has_spilled());
        // A temporary-file cleaner removes the spool while the scan runs.
        for d in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_dir_all(d.unwrap().path()).unwrap();
        }
        feed(&mut store, 15..2015);
        assert!(store.cuts <= 12, "{} cuts for 2,000 requests", store.cuts);
        let ctx = FinishContext::default();
        let (kept, _) = store.finish(&ctx);
        assert!(kept.len() <= 10);
        let warnings = ctx.take_warnings();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("could not be read back")),
            "{warnings:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unwritable_temporary_directory_keeps_requests_in_memory_and_says_so() {
        let dir = temp_dir("unwritable");
        let (want, ..) = run(500, 1, || {
            ReqStore::with(dir.clone(), usize::MAX, MAX_REQUESTS)
        });
        let bad = std::path::PathBuf::from("/nonexistent/ecir-admin-store-test");
        let (got, dropped, warnings, spilled) =
            run(500, 2, || ReqStore::with(bad.clone(), 0, MAX_REQUESTS));
        assert_eq!((got, dropped, spilled), (want, 0, false));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("could not be written"), "{warnings:?}");
    }
}
