//! `card`: card skimming and card testing as far as the shop's own access logs show them, and
//! the completed orders the exposure window counts.
//!
//! What a server log can show of a skimmer is the tampering (admin edits, changed or new static
//! files), same-origin drops and their harvest, beacons sent to the shop itself, and the return
//! from an off-site fake payment form. Browser-side exfiltration to another domain is invisible
//! here; the report says so.
//!
//! Observing keeps per-path and per-client summaries only (sizes seen per asset path, a bounded
//! set of clients per path, checkout counts per client and minute) and one compact entry per
//! distinct completion-page hit, written out past 65,536 per state (`orders`).
//!
//! What grows with clients is bounded: per path at most 64 clients for drops (the smallest
//! addresses) and assets (then only that there were more), 8 for harvest candidates (then the
//! file is popular and dropped), per hour 8 admin clients; which clients browsed the shop is
//! a fixed 1 MiB filter (below, `cardtest.distributed`); per-client checkout counts exist
//! only for clients that submitted checkout, reached its error page, created accounts or
//! failed payments in an application log (checkout actors, buyers included), not for every
//! visitor. Evidence lines that may never be cited (asset and harvest candidates) are kept as
//! raw bytes (capped) and turned into text at finish. Every asset path loaded from checkout
//! keeps its twenty best lines, so past 1 MiB of them a state writes them to a private
//! temporary spool (`TMPDIR`), each path keeping the worst line written as a bound that later
//! lines must beat; finish reads back the lines of the paths that make findings, so the
//! evidence is the same as if nothing was written. A state holding 8,192 paths (assets and
//! files fetched from writable directories) writes them all out as a sorted run, read back
//! path by path at finish (`path_runs`): a scanner inventing file names on a shop that
//! answers everything with 200 costs disk, not memory. The tables keyed by a name the
//! request chooses (drop, beacon and off-flow paths, completion referer hosts) write their
//! entries out past 4,096 names (`named_hits`), and drop or beacon paths and referer hosts
//! past the 100 most used are summed in one finding per rule: forged referers and invented
//! image names cost disk, not memory or findings. The route and referer caches hold at most 16,384 entries each.
//!
//! At finish:
//!
//! - `card.asset_drift`: a first-party JS/CSS file whose 200-response size settled on a new
//!   value (a size seen ≥ `drift_min_hits` times stops being served when a new one starts;
//!   compression variants coexist and are left alone, 304s are ignored): medium; low when
//!   several assets changed within the same hour after admin pages were served, in the six
//!   hours before, to a known staff IP (inside `--admin-allow`, or in the admin panel earlier
//!   than that): a release. The summary lists who had admin pages answered 2xx in those hours
//!   (per hour the smallest eight clients are kept). Raised later when an admin edit from a
//!   suspicious IP came shortly before (post-detection stage).
//! - `card.first_seen_script`: a script or image first requested after the first fifth of the
//!   logs, by ≥ `first_seen_min_ips` customers, mostly from checkout pages: medium, high under
//!   a writable directory. A tag loaded on every page (marketing) is not reported.
//! - `card.exfil_drop`: POSTs (or GETs with long queries) to a non-route file with a checkout
//!   referer from ≥ `drop_min_ips` customer IPs: high.
//! - `card.fake_payment_page`: the same, when most of those customers then submitted the real
//!   checkout within 30 minutes (double card entry, the EC-CUBE 2 fake payment screen): high.
//! - `card.drop_harvest`: one of few IPs fetching a file in a writable directory ≥3 times,
//!   apart in time, with a growing size: high.
//! - `card.image_beacon`: image requests with long base64 queries from ≥ `drop_min_ips` IPs:
//!   medium, high with a checkout referer.
//! - `card.foreign_referer_completion`: the order-completion page reached from a foreign site
//!   that is neither the shop nor a `--psp-domain`: medium, high from ≥3 sessions.
//! - `cardtest.velocity`: one IP submitting checkout ≥ `velocity_attempts` times within
//!   `velocity_window_secs` with failures (error page, 429, a 400/402/403/422 answer of a REST
//!   checkout) ≥ `failure_ratio`: high; or ≥ `payment_failures` payment failures an application
//!   log records (Magento `PAYMENT_FAILED`, EC-CUBE `購入エラー`): medium (high from
//!   `velocity_attempts`).
//! - `cardtest.distributed`: an hour with checkout failures ≥ 5× the logs' median hour (and
//!   ≥10), from ≥5 IPs, most of which never browsed the shop: high. "Browsed" (a page view
//!   outside checkout) is a Bloom filter of 2^23 bits (1 MiB, three bits per client in one
//!   512-bit block, a fixed hash), merged by OR, so it does not depend on the chunking. It may
//!   take a client that never browsed for one that did (about 0.006% of them with 100,000
//!   browsing clients in the logs, 0.5% with 500,000, 3% with a million), never the reverse:
//!   an error can only make a tester look like a shopper and withhold the finding.
//! - `cardtest.account_burst`: one IP creating ≥ `account_burst` accounts or guest checkouts
//!   (EC-CUBE `/entry`, `/shopping/nonmember`, Magento `createpost` and REST customers,
//!   WooCommerce `my-account` registration) in 30 min: medium.
//!
//!   Also per checkout session (client IP + user agent, `session_gap_secs` of inactivity ends
//!   it, [`crate::session`]): a session with ≥ `velocity_attempts` submissions and failures
//!   ≥ `failure_ratio` is a slower tester the window misses: high.
//!
//! Known limits: a "checkout session" is the client IP plus user agent with a 30-minute gap
//! (access logs carry no session cookie); customers behind one NAT are one client; a tester
//! rotating user agents on one IP is several sessions (the per-IP window adds them up; sessions
//! are kept for the [`MAX_AGENTS`] agents of smallest hash per IP, and the finding says "at
//! least" beyond them) and one rotating IPs behind one session cookie is invisible.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::Arc;

use ecir_model::{Category, Event, EventDetail, Finding, Severity, Timestamp};
use ecir_profiles::Profile;

use crate::codec::{self, Cursor, Files};
use crate::evidence::{SmallestSet, Span, TopEvidence};
use crate::session::Sessions;
use crate::spill_map::{SpillMap, Spillable};
use crate::{downcast, DetectConfig, DetectorState, FinishContext, Origin};
use named_hits::{NamedCount, NamedHits, NAME_CAP};
pub(crate) use orders::customer_days;
pub use orders::{OrderHit, Orders, ORDERS_CAP};

pub const RULES: &[&str] = &[
    "card.asset_drift",
    "card.fake_payment_page",
    "card.first_seen_script",
    "card.exfil_drop",
    "card.drop_harvest",
    "card.image_beacon",
    "card.foreign_referer_completion",
    "cardtest.velocity",
    "cardtest.distributed",
    "cardtest.account_burst",
];

pub const PLAYBOOK: &str = "card-skimming";
const MAX_SIZES: usize = 64;
const MAX_PATH_IPS: usize = 64;
const HARVEST_MAX_IPS: usize = 8;
const MAX_FETCHES: usize = 64;
const MAX_HOSTS: usize = 4096;
/// Admin clients kept per hour for "who touched the admin before an asset changed".
const ADMIN_HOUR_IPS: usize = 8;
/// A client served admin pages, with the user where the log names one.
type AdminClient = (IpAddr, Option<Box<str>>);
/// Hours before an asset change in which admin activity explains it.
const RELEASE_LOOKBACK_HOURS: i64 = 6;

/// Card-skimming and card-testing settings (`--psp-domain`, `--contained-at`, …).
#[derive(Clone, Debug)]
pub struct CardConfig {
    /// `--psp-domain`: payment providers whose pages may send customers back (suffix match).
    pub psp_domains: Vec<String>,
    /// `--contained-at`: end of the exposure window.
    pub contained_at: Option<Timestamp>,
    /// `--cleaned-at`: when the shop was cleaned; storefront edits after it are re-injection.
    pub cleaned_at: Option<Timestamp>,
    /// 200 responses of one size that make it a stable size of an asset (5).
    pub drift_min_hits: u32,
    /// Distinct customer IPs a first-seen script needs (20).
    pub first_seen_min_ips: usize,
    /// Distinct customer IPs a drop endpoint or image beacon needs (3).
    pub drop_min_ips: usize,
    /// Checkout submissions from one IP within the window that make velocity (10).
    pub velocity_attempts: u32,
    /// Sliding window for velocity and account bursts, seconds (1800).
    pub velocity_window_secs: i64,
    /// Share of failed submissions that makes velocity card testing (0.8).
    pub failure_ratio: f64,
    /// Accounts created by one IP within the window that make a burst (5).
    pub account_burst: u32,
    /// Payment failures an application log confirms for one IP within the window that make
    /// card testing (4; CrowdSec's `http-magento-ccs` overflows at the 4th quick failure).
    pub payment_failures: u32,
    /// Distinct failing IPs within 10 minutes that make distributed testing without a
    /// baseline (10).
    pub distributed_min_ips: usize,
    /// Gap that ends a checkout session, seconds (1800).
    pub session_gap_secs: i64,
}

impl Default for CardConfig {
    fn default() -> Self {
        CardConfig {
            psp_domains: Vec::new(),
            contained_at: None,
            cleaned_at: None,
            drift_min_hits: 5,
            first_seen_min_ips: 20,
            drop_min_ips: 3,
            velocity_attempts: 10,
            velocity_window_secs: 1800,
            failure_ratio: 0.8,
            account_burst: 5,
            payment_failures: 4,
            distributed_min_ips: 10,
            session_gap_secs: 1800,
        }
    }
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

#[derive(Clone, Debug)]
struct SizeStat {
    n: u32,
    first: i64,
    last: i64,
    /// The earliest two lines served at this size (for a new size: the change itself).
    ev: Vec<ecir_model::Evidence>,
}

const SIZE_EV: usize = 2;

/// Keeps the [`SIZE_EV`] earliest lines by (time, file, line), building text only for those.
fn offer_earliest(v: &mut Vec<ecir_model::Evidence>, origin: &Origin<'_>, ts: Option<Timestamp>) {
    let key = (ts, &**origin.file, origin.line);
    if v.len() >= SIZE_EV {
        let worst = &v[v.len() - 1];
        if key >= (worst.ts, &*worst.file, worst.line) {
            return;
        }
    }
    v.push(crate::evidence::evidence(origin, ts, 30));
    v.sort_by(|a, b| (a.ts, &a.file, a.line).cmp(&(b.ts, &b.file, b.line)));
    v.truncate(SIZE_EV);
}

/// Per asset path: the sizes served at 200 (scripts and styles, for drift), and for scripts
/// and images what the first-seen rule reads (span, clients, hits, checkout hits, evidence).
#[derive(Default, Debug)]
struct Asset {
    sizes: BTreeMap<u64, SizeStat>,
    sizes_overflow: bool,
    first: Span,
    ips: IpSet,
    hits: u64,
    checkout_refs: u64,
    ev: LazyEvidence,
}

#[derive(Default, Debug)]
struct PathHits {
    ips: SmallestSet<IpAddr>,
    span: Span,
    count: u64,
    checkout_refs: u64,
    ev: TopEvidence,
    /// First time of each of the smallest [`MAX_PATH_IPS`] client IPs (drops only).
    firsts: BTreeMap<IpAddr, i64>,
}

fn add_first(m: &mut BTreeMap<IpAddr, i64>, ip: IpAddr, t: i64) {
    let e = m.entry(ip).or_insert(t);
    *e = (*e).min(t);
    while m.len() > MAX_PATH_IPS {
        m.pop_last();
    }
}

/// Raw bytes of a line kept for evidence: enough that [`ecir_model::text::evidence_text`]
/// gives the same text as from the whole line (it stops at
/// [`ecir_model::text::MAX_EVIDENCE_TEXT`] output bytes, and every input byte makes at least
/// one output byte, so nothing past this prefix is read but the fact that more follows).
const RAW_KEEP: usize = ecir_model::text::MAX_EVIDENCE_TEXT + 16;
/// Garbage an [`Arena`] may hold before it is compacted: this much, plus a quarter of its
/// live bytes (compacting copies the live bytes, a few MiB, a handful of times a run).
const ARENA_SLACK: usize = 1 << 20;

/// Bytes of one [`Arena`] block; a line never spans two.
const ARENA_BLOCK: usize = 64 << 10;

/// Where a kept line's raw bytes are in the state's [`Arena`]: block, offset, length.
#[derive(Clone, Copy, Debug)]
struct RawRef {
    block: u32,
    off: u32,
    len: u32,
}

/// Fixed-size blocks of bytes (no doubling of one large buffer), appended to; emptied
/// blocks (up to [`ARENA_SLACK`] of them) are kept for reuse.
#[derive(Default, Debug)]
struct Blocks {
    blocks: Vec<Vec<u8>>,
    /// Bytes in all blocks.
    used: usize,
    spare: Vec<Vec<u8>>,
    /// Bytes of a new block (0 for [`ARENA_BLOCK`]; a path written out has an arena of its
    /// own with small blocks, see [`Arena::small`]).
    block: usize,
}

impl Blocks {
    fn push(&mut self, raw: &[u8]) -> RawRef {
        if self
            .blocks
            .last()
            .is_none_or(|b| b.len() + raw.len() > b.capacity())
        {
            let size = if self.block == 0 {
                ARENA_BLOCK
            } else {
                self.block.max(raw.len())
            };
            let b = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(size));
            self.blocks.push(b);
        }
        let block = self.blocks.len() - 1;
        let b = &mut self.blocks[block];
        let off = b.len();
        b.extend_from_slice(raw);
        self.used += raw.len();
        RawRef {
            block: block as u32,
            off: off as u32,
            len: raw.len() as u32,
        }
    }

    fn get(&self, r: RawRef) -> &[u8] {
        &self.blocks[r.block as usize][r.off as usize..(r.off + r.len) as usize]
    }

    /// Keeps emptied `blocks` for reuse, up to [`ARENA_SLACK`] of them.
    fn keep_spares(&mut self, blocks: Vec<Vec<u8>>) {
        for mut b in blocks {
            if self.spare.len() >= ARENA_SLACK / ARENA_BLOCK {
                break;
            }
            b.clear();
            self.spare.push(b);
        }
    }
}

/// The raw bytes of the evidence lines a state keeps (one growing buffer instead of an
/// allocation per line), and the input files they come from (by index). Lines no longer
/// kept leave garbage, compacted away once it exceeds a quarter of the live bytes plus
/// [`ARENA_SLACK`] ([`Card::compact_arena`]): at most 1.25 times the kept lines plus 1 MiB.
#[derive(Default, Debug)]
struct Arena {
    bytes: Blocks,
    live: usize,
    /// Distinct file names; equal indexes are equal names and the reverse.
    files: Vec<Arc<str>>,
}

impl Arena {
    /// An arena for the few lines of one path (see [`path_runs::PathRecord`]).
    fn small() -> Arena {
        Arena {
            bytes: Blocks {
                block: 1024,
                ..Blocks::default()
            },
            ..Arena::default()
        }
    }

    fn file(&mut self, f: &Arc<str>) -> u32 {
        if let Some(i) = self
            .files
            .iter()
            .rposition(|x| Arc::ptr_eq(x, f) || **x == **f)
        {
            return i as u32;
        }
        self.files.push(Arc::clone(f));
        (self.files.len() - 1) as u32
    }

    fn push(&mut self, raw: &[u8]) -> RawRef {
        let raw = &raw[..raw.len().min(RAW_KEEP)];
        self.live += raw.len();
        self.bytes.push(raw)
    }

    fn get(&self, r: RawRef) -> &[u8] {
        self.bytes.get(r)
    }

    fn free(&mut self, r: RawRef) {
        self.live -= r.len as usize;
    }

    fn needs_compaction(&self) -> bool {
        self.bytes.used > self.live + self.live / 4 + ARENA_SLACK
    }

    /// Moves a kept line into `to` (compaction).
    fn move_to(&self, r: &mut RawRef, to: &mut Blocks) {
        *r = to.push(self.get(*r));
    }

    /// (weight, time, file, line) in the order of [`TopEvidence`]: heavier first, then
    /// earlier, then by file name and line.
    fn order(&self, a: EvKey, b: EvKey) -> std::cmp::Ordering {
        b.0.cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then_with(|| {
                if a.2 == b.2 {
                    std::cmp::Ordering::Equal
                } else {
                    self.files[a.2 as usize].cmp(&self.files[b.2 as usize])
                }
            })
            .then(a.3.cmp(&b.3))
    }

    /// Evidence for a kept line (its text is built here).
    fn evidence(&self, k: EvKey, raw: RawRef) -> ecir_model::Evidence {
        let origin = Origin {
            file: &self.files[k.2 as usize],
            line: k.3,
            raw: self.get(raw),
        };
        crate::evidence::evidence(&origin, k.1, k.0)
    }
}

/// Weight, time, file index, line.
type EvKey = (u32, Option<Timestamp>, u32, u64);

/// How the lines of a state merged into another move: their bytes are copied from the
/// merged state's arena `from` (only those still kept), and its file indexes map through
/// `files`.
struct Remap<'a> {
    from: &'a Arena,
    files: Vec<u32>,
}

impl Remap<'_> {
    fn raw(&self, r: RawRef, to: &mut Arena) -> RawRef {
        to.push(self.from.get(r))
    }
    fn file(&self, f: u32) -> u32 {
        self.files[f as usize]
    }
}

/// One line kept by [`LazyEvidence`].
#[derive(Clone, Copy, Debug)]
struct Kept {
    key: EvKey,
    raw: RawRef,
}

/// The same best [`ecir_model::finding::MAX_EVIDENCE`] lines as a [`TopEvidence`], but
/// keeping each line's raw bytes (capped at [`RAW_KEEP`], in the state's [`Arena`]) and
/// building the evidence text only for the lines a finding cites: most offers never reach
/// a finding, and copying bytes is much cheaper than building text. Exactly the best lines
/// are kept, so a line worse than all of them is refused at once, and merging gives the best
/// of the union whatever the split.
#[derive(Clone, Debug, Default)]
struct LazyEvidence {
    /// Sorted by [`Arena::order`], at most `MAX_EVIDENCE`.
    items: Vec<Kept>,
    /// Once `MAX_EVIDENCE` lines were written to the evidence spool (see
    /// [`Card::spill_evidence`]): a key at least that many written lines are no worse than.
    /// A line not better than it can never be among the best, so it is refused.
    bound: Option<EvKey>,
    /// Lines written to the spool, and the worst of them: once they are `MAX_EVIDENCE`,
    /// that worst one is a bound, however few each spill wrote.
    written: usize,
    worst_written: Option<EvKey>,
}

impl LazyEvidence {
    fn offer(
        &mut self,
        arena: &mut Arena,
        origin: &Origin<'_>,
        ts: Option<Timestamp>,
        weight: u32,
    ) {
        let key = (weight, ts, arena.file(origin.file), origin.line);
        if self.items.len() >= ecir_model::finding::MAX_EVIDENCE
            && self
                .items
                .last()
                .is_some_and(|w| arena.order(key, w.key) != std::cmp::Ordering::Less)
            || !self.beats_bound(arena, key)
        {
            return;
        }
        let raw = arena.push(origin.raw);
        self.insert(arena, Kept { key, raw });
    }

    /// Whether a line of `key` is better than the [`bound`](Self::bound) (if any).
    fn beats_bound(&self, arena: &Arena, key: EvKey) -> bool {
        self.bound
            .is_none_or(|b| arena.order(key, b) == std::cmp::Ordering::Less)
    }

    /// Writes the kept lines to `out` as one record of `path` (see [`encode_spilled`]) and
    /// forgets them, keeping the worst as the bound when they were `MAX_EVIDENCE`.
    fn spill(&mut self, arena: &mut Arena, path: &str, out: &mut Vec<u8>) {
        if self.items.is_empty() {
            return;
        }
        encode_spilled(out, path, &self.items, arena);
        let n = self.items.len();
        let worst = self.items[n - 1].key;
        for k in self.items.drain(..) {
            arena.free(k.raw);
        }
        if n >= ecir_model::finding::MAX_EVIDENCE {
            self.tighten(arena, worst);
        }
        self.written += n;
        self.note_written(arena, worst);
    }

    /// Notes a written line of `key` as the worst written if it is, and makes the worst
    /// written the bound once `MAX_EVIDENCE` lines were written.
    fn note_written(&mut self, arena: &mut Arena, key: EvKey) {
        if self
            .worst_written
            .is_none_or(|w| arena.order(key, w) == std::cmp::Ordering::Greater)
        {
            self.worst_written = Some(key);
        }
        if self.written >= ecir_model::finding::MAX_EVIDENCE {
            if let Some(w) = self.worst_written {
                self.tighten(arena, w);
            }
        }
    }

    /// Makes `b` the bound if it is tighter, dropping kept lines it outdoes.
    fn tighten(&mut self, arena: &mut Arena, b: EvKey) {
        if !self.beats_bound(arena, b) {
            return;
        }
        self.bound = Some(b);
        while self
            .items
            .last()
            .is_some_and(|k| !self.beats_bound(arena, k.key))
        {
            if let Some(k) = self.items.pop() {
                arena.free(k.raw);
            }
        }
    }

    fn insert(&mut self, arena: &mut Arena, k: Kept) {
        // Lines mostly come in time order: a line not before the last kept one goes last
        // (the same place the search below finds), with one comparison.
        let pos = match self.items.last() {
            Some(x) if arena.order(x.key, k.key) != std::cmp::Ordering::Greater => self.items.len(),
            _ => self
                .items
                .partition_point(|x| arena.order(x.key, k.key) != std::cmp::Ordering::Greater),
        };
        if pos >= ecir_model::finding::MAX_EVIDENCE {
            arena.free(k.raw);
            return;
        }
        if self.items.capacity() == 0 {
            // Its final size at once (growing by doubling would copy it three times).
            self.items
                .reserve_exact(ecir_model::finding::MAX_EVIDENCE + 1);
        }
        self.items.insert(pos, k);
        if self.items.len() > ecir_model::finding::MAX_EVIDENCE {
            if let Some(x) = self.items.pop() {
                arena.free(x.raw);
            }
        }
    }

    /// Asks for the last kept line, the one an offer is compared with, to be loaded (a hint:
    /// see [`prefetch_read`]).
    fn prefetch(&self) {
        if let Some(k) = self.items.last() {
            prefetch_read((k as *const Kept).cast());
        }
    }

    /// Takes in the lines of a merged state (see [`Remap`]).
    fn merge(&mut self, arena: &mut Arena, other: LazyEvidence, remap: &Remap) {
        // Both states' written lines stay in the spool: their bounds hold, and so does the
        // worst of all they wrote once those are `MAX_EVIDENCE`.
        if let Some(mut b) = other.bound {
            b.2 = remap.file(b.2);
            self.tighten(arena, b);
        }
        if let Some(mut w) = other.worst_written {
            w.2 = remap.file(w.2);
            self.written += other.written;
            self.note_written(arena, w);
        }
        for mut k in other.items {
            k.key.2 = remap.file(k.key.2);
            let full = self.items.len() >= ecir_model::finding::MAX_EVIDENCE;
            if full
                && self
                    .items
                    .last()
                    .is_some_and(|w| arena.order(k.key, w.key) != std::cmp::Ordering::Less)
                || !self.beats_bound(arena, k.key)
            {
                // The other's lines come best first: none of the rest is kept either.
                break;
            }
            k.raw = remap.raw(k.raw, arena);
            self.insert(arena, k);
        }
    }

    fn remap(&mut self, arena: &mut Arena, remap: &Remap) {
        for b in [&mut self.bound, &mut self.worst_written]
            .into_iter()
            .flatten()
        {
            b.2 = remap.file(b.2);
        }
        for k in &mut self.items {
            k.key.2 = remap.file(k.key.2);
            k.raw = remap.raw(k.raw, arena);
        }
    }

    /// The evidence records, best first (as [`TopEvidence::into_vec`]).
    fn to_vec(&self, arena: &Arena) -> Vec<ecir_model::Evidence> {
        self.items
            .iter()
            .map(|k| arena.evidence(k.key, k.raw))
            .collect()
    }
}

/// Bytes of first-seen evidence lines a state's arena holds before they are written to its
/// evidence spool ([`Card::spill_evidence`]): a shop whose every product image is loaded
/// from the cart page has about 6 KiB of lines per image, which would otherwise grow with
/// the catalogue in every state. 1 MiB: at 4 MiB a state took most of a 4 GiB run to fill
/// it, so resident memory still grew from 1 to 4 GiB of logs; the spool's writes are
/// sequential and few.
const EVIDENCE_MEM: usize = 1 << 20;

/// Appends one spilled record: the path, then each line's weight, time, file name, line
/// number and raw bytes (in [`codec`]'s encoding).
fn encode_spilled(out: &mut Vec<u8>, path: &str, items: &[Kept], arena: &Arena) {
    codec::put_bytes(out, path.as_bytes());
    codec::put_u32(out, items.len() as u32);
    for k in items {
        let (weight, ts, file, line) = k.key;
        codec::put_u32(out, weight);
        codec::put_ts(out, ts);
        codec::put_bytes(out, arena.files[file as usize].as_bytes());
        codec::put_u64(out, line);
        codec::put_bytes(out, arena.get(k.raw));
    }
}

/// Reads the records of one spilled block, calling `f` with each path and its lines as
/// evidence (`wanted` says which paths' lines to build). `None` when the block is damaged.
fn decode_spilled(
    b: &[u8],
    wanted: &dyn Fn(&str) -> bool,
    files: &mut Files,
    f: &mut dyn FnMut(&str, ecir_model::Evidence),
) -> Option<()> {
    let mut c = Cursor(b);
    while !c.0.is_empty() {
        let path = c.str()?;
        let want = wanted(path);
        // Each line takes at least 4 + 1 + 4 + 8 + 4 bytes.
        for _ in 0..c.count(21)? {
            let weight = c.u32()?;
            let ts = c.ts()?;
            let file = c.str()?;
            let line = c.u64()?;
            let n = c.u32()? as usize;
            let raw = c.take(n)?;
            if want {
                let origin = Origin {
                    file: &codec::file_of(files, file),
                    line,
                    raw,
                };
                f(path, crate::evidence::evidence(&origin, ts, weight));
            }
        }
    }
    Some(())
}

/// Adds to the findings of `wanted` (path → index in `out`) their lines in `spool`, keeping
/// the best `MAX_EVIDENCE` of each: the same lines as if nothing had been spilled.
fn add_spilled_evidence(
    spool: ecir_spill::Spool,
    wanted: &BTreeMap<String, usize>,
    out: &mut [Finding],
    ctx: &FinishContext,
) {
    let mut files = Vec::new();
    let mut damaged = false;
    for block in spool.into_blocks() {
        match block {
            Ok(b) => {
                let found = decode_spilled(&b, &|p| wanted.contains_key(p), &mut files, &mut |p, e| {
                    if let Some(&i) = wanted.get(p) {
                        out[i].evidence.push(e);
                    }
                });
                damaged |= found.is_none();
            }
            Err(e) => ctx.warn(format!("First-seen evidence lines spilled to the temporary directory could not be read back ({e}): some findings may cite fewer lines. Keep TMPDIR out of reach of temporary-file cleaners during a scan, and rerun.")),
        }
    }
    if damaged {
        ctx.warn("First-seen evidence lines spilled to the temporary directory were damaged: some findings may cite fewer lines.".into());
    }
    for &i in wanted.values() {
        let ev = &mut out[i].evidence;
        ev.sort_by(crate::evidence::order);
        ev.truncate(ecir_model::finding::MAX_EVIDENCE);
    }
}

/// One fetch of a harvest candidate: who, when, how many bytes, and the line (its raw bytes
/// while it is among the [`ecir_model::finding::MAX_EVIDENCE`] earliest).
#[derive(Clone, Copy, Debug)]
struct Fetch {
    ip: IpAddr,
    ts: Option<Timestamp>,
    bytes: u64,
    file: u32,
    line: u64,
    raw: Option<RawRef>,
}

impl Fetch {
    fn t(&self) -> i64 {
        self.ts.map_or(i64::MIN, |t| t.utc_ms)
    }
    /// Its key as evidence (weight 40).
    fn key(&self) -> EvKey {
        (40, self.ts, self.file, self.line)
    }
}

/// Fetches of one file in a writable directory while at most [`HARVEST_MAX_IPS`] clients
/// fetched it (then `popular`, and nothing more is kept). Per client the [`MAX_FETCHES`]
/// smallest (time, bytes) count, and the earliest lines are the evidence: the fetches are
/// kept in one list, thinned to what either needs when it doubles.
#[derive(Default, Debug)]
struct Harvest {
    fetches: Vec<Fetch>,
    /// Distinct clients in `fetches`.
    ips: usize,
    /// Fetches holding raw bytes (the earliest lines, at most `MAX_EVIDENCE`).
    with_raw: usize,
    /// Length at which `fetches` is thinned next.
    thin_at: usize,
    popular: bool,
}

impl Harvest {
    fn has_ip(&self, ip: IpAddr) -> bool {
        self.fetches.iter().any(|f| f.ip == ip)
    }

    /// The fetch holding the latest evidence line, once `MAX_EVIDENCE` lines are held.
    fn worst_raw(&self, arena: &Arena) -> Option<usize> {
        if self.with_raw < ecir_model::finding::MAX_EVIDENCE {
            return None;
        }
        self.fetches
            .iter()
            .enumerate()
            .filter(|(_, x)| x.raw.is_some())
            .max_by(|a, b| arena.order(a.1.key(), b.1.key()))
            .map(|(i, _)| i)
    }

    /// Whether a line with this key is among the earliest (its bytes are worth copying).
    fn wants_raw(&self, arena: &Arena, key: EvKey) -> bool {
        self.with_raw < ecir_model::finding::MAX_EVIDENCE
            || self
                .worst_raw(arena)
                .is_some_and(|w| arena.order(key, self.fetches[w].key()).is_lt())
    }

    /// Adds a fetch whose raw bytes (if any) are in `arena`; keeps them only while the line
    /// is among the earliest.
    fn add(&mut self, arena: &mut Arena, mut f: Fetch) {
        if let Some(r) = f.raw {
            if self.with_raw >= ecir_model::finding::MAX_EVIDENCE {
                // The latest line holding bytes gives them up if this one is earlier.
                match self.worst_raw(arena) {
                    Some(w) if arena.order(f.key(), self.fetches[w].key()).is_lt() => {
                        if let Some(x) = self.fetches[w].raw.take() {
                            arena.free(x);
                        }
                    }
                    _ => {
                        arena.free(r);
                        f.raw = None;
                    }
                }
            } else {
                self.with_raw += 1;
            }
        }
        self.fetches.push(f);
        if self.fetches.len() >= self.thin_at.max(32) {
            self.thin();
        }
    }

    /// Drops the fetches that are neither among their client's [`MAX_FETCHES`] smallest
    /// distinct (time, bytes) nor holding an evidence line.
    fn thin(&mut self) {
        self.fetches.sort_by(|a, b| {
            (a.ip, a.t(), a.bytes, a.raw.is_none()).cmp(&(b.ip, b.t(), b.bytes, b.raw.is_none()))
        });
        let mut out: Vec<Fetch> = Vec::with_capacity(self.fetches.len());
        let mut distinct = 0;
        for (i, f) in self.fetches.iter().enumerate() {
            let prev = i.checked_sub(1).map(|j| &self.fetches[j]);
            if prev.is_none_or(|p| p.ip != f.ip) {
                distinct = 0;
            }
            let first = prev.is_none_or(|p| (p.ip, p.t(), p.bytes) != (f.ip, f.t(), f.bytes));
            if first {
                distinct += 1;
            }
            if f.raw.is_some() || (first && distinct <= MAX_FETCHES) {
                out.push(*f);
            }
        }
        self.fetches = out;
        self.thin_at = 2 * self.fetches.len();
    }

    fn make_popular(&mut self, arena: &mut Arena) {
        for f in &self.fetches {
            if let Some(r) = f.raw {
                arena.free(r);
            }
        }
        *self = Harvest {
            popular: true,
            ..Default::default()
        };
    }

    fn remap(&mut self, arena: &mut Arena, remap: &Remap) {
        for f in &mut self.fetches {
            f.file = remap.file(f.file);
            f.raw = f.raw.map(|r| remap.raw(r, arena));
        }
    }

    /// Per client, its [`MAX_FETCHES`] smallest distinct (time, bytes), by client.
    fn per_client(&self) -> Vec<(IpAddr, Vec<(i64, u64)>)> {
        let mut all: Vec<(IpAddr, i64, u64)> = self
            .fetches
            .iter()
            .map(|f| (f.ip, f.t(), f.bytes))
            .collect();
        all.sort();
        all.dedup();
        let mut out: Vec<(IpAddr, Vec<(i64, u64)>)> = Vec::new();
        for (ip, t, b) in all {
            match out.last_mut() {
                Some((x, v)) if *x == ip => {
                    if v.len() < MAX_FETCHES {
                        v.push((t, b));
                    }
                }
                _ => out.push((ip, vec![(t, b)])),
            }
        }
        out
    }

    /// The evidence lines, earliest first.
    fn evidence(&self, arena: &Arena) -> Vec<ecir_model::Evidence> {
        let mut v: Vec<(EvKey, RawRef)> = self
            .fetches
            .iter()
            .filter_map(|f| f.raw.map(|r| (f.key(), r)))
            .collect();
        v.sort_by(|a, b| arena.order(a.0, b.0));
        v.into_iter().map(|(k, r)| arena.evidence(k, r)).collect()
    }
}

/// Bytes of a path kept inside its map entry (longer ones on the heap).
const INLINE_PATH: usize = 62;

/// A path as a map key: short ones (most asset paths) inline, so that a lookup compares bytes
/// of the entry it loads anyway instead of following a pointer to a cold string.
#[derive(Debug)]
enum PathKey {
    Inline { len: u8, bytes: [u8; INLINE_PATH] },
    Heap(Box<str>),
}

impl PathKey {
    fn new(p: &str) -> PathKey {
        if p.len() <= INLINE_PATH {
            let mut bytes = [0; INLINE_PATH];
            bytes[..p.len()].copy_from_slice(p.as_bytes());
            PathKey::Inline {
                len: p.len() as u8,
                bytes,
            }
        } else {
            PathKey::Heap(p.into())
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            PathKey::Inline { len, bytes } => &bytes[..*len as usize],
            PathKey::Heap(s) => s.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied from a `&str`: always UTF-8.
            PathKey::Inline { .. } => std::str::from_utf8(self.bytes()).unwrap_or_default(),
            PathKey::Heap(s) => s,
        }
    }
}

fn path_hash(p: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(p)
}

/// A hint to load the cache line holding `p` (never dereferenced here: no effect on results).
#[inline(always)]
fn prefetch_read(p: *const u8) {
    // SAFETY: SSE is part of every x86_64 target; a prefetch reads no memory the program
    // sees and never faults, whatever the address.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asset and harvest state per path, keyed by [`PathKey`] (hashed with [`path_hash`]).
#[derive(Default)]
struct Paths(hashbrown::HashTable<(PathKey, PathState)>);

impl Paths {
    /// Asks the processor to start loading the entry `path` probably has (the first one whose
    /// hash tag matches; a wrong guess only costs a useless load), so that its cache misses
    /// overlap the rest of the event's work instead of following each other. Returns the hash
    /// for [`Self::get_or_default`]. Changes no state.
    fn prefetch(&self, path: &[u8]) -> u64 {
        let h = path_hash(path);
        if let Some(e) = self.0.find(h, |_| true) {
            let p = (e as *const (PathKey, PathState)).cast::<u8>();
            for off in (0..std::mem::size_of::<(PathKey, PathState)>()).step_by(64) {
                prefetch_read(p.wrapping_add(off));
            }
        }
        h
    }

    /// Whether `path` (whose [`path_hash`] is `hash`) has an entry.
    fn contains(&self, path: &[u8], hash: u64) -> bool {
        self.0.find(hash, |(k, _)| k.bytes() == path).is_some()
    }

    /// The entry of `path`, whose [`path_hash`] is `hash`.
    fn get_or_default(&mut self, path: &[u8], hash: u64) -> &mut PathState {
        let e = self.0.entry(
            hash,
            |(k, _)| k.bytes() == path,
            |(k, _)| path_hash(k.bytes()),
        );
        match e {
            hashbrown::hash_table::Entry::Occupied(e) => &mut e.into_mut().1,
            hashbrown::hash_table::Entry::Vacant(e) => {
                let k = PathKey::new(std::str::from_utf8(path).unwrap_or_default());
                &mut e.insert((k, PathState::default())).into_mut().1
            }
        }
    }
}

/// Per path: what the asset rules and the harvest rule keep (one lookup per request).
#[derive(Default, Debug)]
struct PathState {
    asset: Option<Asset>,
    harvest: Option<Harvest>,
}

impl PathState {
    /// Takes in a merged state's path (its lines already in `arena`, see [`Remap`]). What
    /// is new here is moved in as it is: merging it into an empty state would not change it.
    fn merge(&mut self, o: PathState, arena: &mut Arena, remap: &Remap) {
        match (&mut self.asset, o.asset) {
            (_, None) => {}
            (None, Some(mut a)) => {
                a.ev.remap(arena, remap);
                self.asset = Some(a);
            }
            (Some(m), Some(a)) => m.merge(a, arena, remap),
        }
        match (&mut self.harvest, o.harvest) {
            (_, None) => {}
            (None, Some(mut h)) => {
                h.remap(arena, remap);
                self.harvest = Some(h);
            }
            (Some(m), Some(h)) => m.merge(h, arena, remap),
        }
    }
}

impl Asset {
    fn merge(&mut self, a: Asset, arena: &mut Arena, remap: &Remap) {
        self.hits += a.hits;
        self.checkout_refs += a.checkout_refs;
        self.first.merge(a.first);
        self.ips.merge(a.ips);
        self.ev.merge(arena, a.ev, remap);
        self.sizes_overflow |= a.sizes_overflow;
        for (b, s) in a.sizes {
            let e = self.sizes.entry(b).or_insert(SizeStat {
                n: 0,
                first: s.first,
                last: s.last,
                ev: Vec::new(),
            });
            e.n += s.n;
            e.first = e.first.min(s.first);
            e.last = e.last.max(s.last);
            e.ev.extend(s.ev);
            e.ev.sort_by(|a, b| (a.ts, &a.file, a.line).cmp(&(b.ts, &b.file, b.line)));
            e.ev.truncate(SIZE_EV);
        }
        if self.sizes.len() > MAX_SIZES {
            self.sizes_overflow = true;
        }
    }
}

impl Harvest {
    /// Union of the fetches; popular when more than [`HARVEST_MAX_IPS`] clients together.
    fn merge(&mut self, h: Harvest, arena: &mut Arena, remap: &Remap) {
        if !self.popular && !h.popular {
            let mut new: Vec<IpAddr> = h
                .fetches
                .iter()
                .map(|f| f.ip)
                .filter(|ip| !self.has_ip(*ip))
                .collect();
            new.sort();
            new.dedup();
            if self.ips + new.len() <= HARVEST_MAX_IPS {
                self.ips += new.len();
                self.with_raw += h.with_raw;
                for mut f in h.fetches {
                    f.file = remap.file(f.file);
                    f.raw = f.raw.map(|r| remap.raw(r, arena));
                    self.fetches.push(f);
                }
                // Only the earliest lines keep their bytes.
                if self.with_raw > ecir_model::finding::MAX_EVIDENCE {
                    let mut keys: Vec<EvKey> = self
                        .fetches
                        .iter()
                        .filter(|f| f.raw.is_some())
                        .map(|f| f.key())
                        .collect();
                    keys.sort_by(|a, b| arena.order(*a, *b));
                    let last = keys[ecir_model::finding::MAX_EVIDENCE - 1];
                    for f in &mut self.fetches {
                        if f.raw.is_some() && arena.order(f.key(), last).is_gt() {
                            if let Some(r) = f.raw.take() {
                                arena.free(r);
                            }
                        }
                    }
                    self.with_raw = ecir_model::finding::MAX_EVIDENCE;
                }
                if self.fetches.len() >= self.thin_at.max(32) {
                    self.thin();
                }
                return;
            }
        }
        self.make_popular(arena);
    }
}

/// Words of the [`Browsed`] filter: 2^23 bits, 1 MiB.
const BROWSED_WORDS: usize = 1 << 17;
/// Bits set per client in the [`Browsed`] filter.
const BROWSED_HASHES: u64 = 3;
/// Words of a [`Browsed`] block (512 bits, a cache line) holding all of a client's bits.
const BROWSED_BLOCK: usize = 8;

/// Clients that viewed a shop page, as a Bloom filter of fixed size (1 MiB, allocated on the
/// first page view) with a fixed hash: the same bits whatever the chunking, merged by OR.
/// A client that never browsed may test as browsed (a false positive), never the reverse;
/// `cardtest.distributed` needs most failing IPs to have never browsed, so an error only
/// makes it more reluctant.
#[derive(Default)]
struct Browsed {
    bits: Vec<u64>,
    /// First hashes of recent inserts, by their low bits (a client's page views come close
    /// together): a client whose first hash is here has all its bits set already (they follow
    /// from that hash alone, and bits are never cleared), so its insert touches only this
    /// small table. [`BROWSED_RECENT`] entries; a slot that held nothing yet holds a value
    /// whose low bits are not its own index, so it matches no hash.
    recent: Vec<u64>,
}

/// Entries of [`Browsed::recent`] (8 KiB).
const BROWSED_RECENT: usize = 1 << 10;

impl Browsed {
    fn hashes(ip: IpAddr) -> (u64, u64) {
        fn mix(mut z: u64) -> u64 {
            // SplitMix64's finaliser.
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
            z ^ (z >> 31)
        }
        let (hi, lo) = match ip {
            IpAddr::V4(a) => (0x4, u32::from(a) as u64),
            IpAddr::V6(a) => {
                let x = u128::from(a);
                (0x6 ^ mix((x >> 64) as u64), x as u64)
            }
        };
        let h1 = mix(lo ^ mix(hi));
        let h2 = mix(h1 ^ 0x9e3779b97f4a7c15) | 1;
        (h1, h2)
    }

    /// The client's bits: all in one block of [`BROWSED_BLOCK`] words (one memory access).
    fn bit_indexes(ip: IpAddr) -> impl Iterator<Item = usize> {
        let (h1, h2) = Browsed::hashes(ip);
        Browsed::bits_of(h1, h2)
    }

    /// The bits of a client whose hashes are `h1`, `h2` (a function of `h1` alone).
    fn bits_of(h1: u64, h2: u64) -> impl Iterator<Item = usize> {
        let block = (h1 % (BROWSED_WORDS / BROWSED_BLOCK) as u64) as usize * BROWSED_BLOCK * 64;
        (0..BROWSED_HASHES).map(move |i| block + ((h2 >> (i * 9)) & 511) as usize)
    }

    fn insert(&mut self, ip: IpAddr) {
        if self.bits.is_empty() {
            self.bits = vec![0; BROWSED_WORDS];
            self.recent = (0..BROWSED_RECENT as u64).map(|i| i ^ 1).collect();
        }
        let (h1, h2) = Browsed::hashes(ip);
        let slot = h1 as usize % BROWSED_RECENT;
        if self.recent[slot] == h1 {
            return;
        }
        self.recent[slot] = h1;
        for i in Browsed::bits_of(h1, h2) {
            self.bits[i / 64] |= 1 << (i % 64);
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        !self.bits.is_empty()
            && Browsed::bit_indexes(ip).all(|i| self.bits[i / 64] & (1 << (i % 64)) != 0)
    }

    fn merge(&mut self, other: Browsed) {
        // What `recent` says of this filter stays true: merging only sets bits.
        if self.bits.is_empty() {
            self.bits = other.bits;
            self.recent = other.recent;
        } else if !other.bits.is_empty() {
            for (a, b) in self.bits.iter_mut().zip(&other.bits) {
                *a |= b;
            }
        }
    }
}

/// The distinct clients of an asset while there are at most [`MAX_PATH_IPS`] of them, then
/// only the fact that there were more: all a finding reads is the exact count up to the cap
/// (as a [`SmallestSet<IpAddr>`] of that cap gives it) and whether the cap was passed, and
/// once passed no later client or merge can undo it. Stored as numbers in arrival order (an
/// IPv4 address takes 4 bytes instead of 17), searched by a scan without early exit that the
/// compiler vectorises; an overflowed set refuses every value with one test of an inline flag
/// and holds no memory.
#[derive(Default, Debug, Clone)]
struct IpSet {
    v4: Vec<u32>,
    v6: Vec<u128>,
    overflow: bool,
}

impl IpSet {
    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    fn insert(&mut self, ip: IpAddr) {
        if self.overflow {
            return;
        }
        match ip {
            IpAddr::V4(a) => self.insert_v4(u32::from(a)),
            IpAddr::V6(a) => self.insert_v6(u128::from(a)),
        }
    }

    /// Asks for the kept IPv4 values to be loaded (a hint: see [`prefetch_read`]).
    fn prefetch(&self) {
        if !self.overflow {
            let p = self.v4.as_ptr().cast::<u8>();
            for off in (0..self.v4.len() * 4).step_by(64) {
                prefetch_read(p.wrapping_add(off));
            }
        }
    }

    /// A client more than the cap: the values are no longer needed.
    fn set_overflow(&mut self) {
        *self = IpSet {
            overflow: true,
            ..IpSet::default()
        };
    }

    fn insert_v4(&mut self, x: u32) {
        if self.overflow || has_u32(&self.v4, x) {
            return;
        }
        if self.len() >= MAX_PATH_IPS {
            self.set_overflow();
        } else {
            self.v4.push(x);
        }
    }

    fn insert_v6(&mut self, x: u128) {
        if self.overflow || self.v6.contains(&x) {
            return;
        }
        if self.len() >= MAX_PATH_IPS {
            self.set_overflow();
        } else {
            self.v6.push(x);
        }
    }

    fn merge(&mut self, other: IpSet) {
        if other.overflow {
            self.set_overflow();
            return;
        }
        if self.len() == 0 && !self.overflow {
            *self = other;
            return;
        }
        for x in other.v4 {
            self.insert_v4(x);
        }
        for x in other.v6 {
            self.insert_v6(x);
        }
    }

    /// Number of distinct clients, when not more than the cap.
    fn exact_len(&self) -> Option<usize> {
        (!self.overflow).then_some(self.len())
    }

    fn overflowed(&self) -> bool {
        self.overflow
    }
}

/// Whether `v` holds `x`: compares 16 values at a time without early exit (vectorised).
fn has_u32(v: &[u32], x: u32) -> bool {
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        if c.iter().fold(false, |a, &y| a | (y == x)) {
            return true;
        }
    }
    chunks.remainder().contains(&x)
}

/// Per-minute checkout counts of one client: submissions, failures, 429s, completions,
/// account creations.
#[derive(Default, Debug, Clone, Copy)]
struct Minute {
    submit: u32,
    fail: u32,
    limited: u32,
    account: u32,
    /// Payment failures an application log confirms (Magento `PAYMENT_FAILED`).
    pay_fail: u32,
}

#[derive(Default, Debug)]
struct Client {
    minutes: BTreeMap<i64, Minute>,
    /// Checkout submissions and failures per (user-agent hash, minute): the per-session view,
    /// for the [`MAX_AGENTS`] agents of smallest hash.
    sessions: BTreeMap<(u64, i64), (u32, u32)>,
    /// Once the client used more than [`MAX_AGENTS`] agents: the smallest agent hash not
    /// kept (agents at or after it are left out of `sessions`).
    agents_bound: Option<u64>,
    /// Distinct agents in `sessions`.
    agents_kept: usize,
    ev: TopEvidence,
    account_ev: TopEvidence,
}

/// User agents per checkout client whose sessions are kept. A tester rotating its agent on
/// every request would otherwise add a session entry per line; the agents kept are those of
/// smallest hash, a choice that does not depend on the order lines come in, and the findings
/// say "at least" when some were left out.
pub const MAX_AGENTS: usize = 256;

impl Client {
    /// Counts a checkout submission or failure of agent `ua` in `minute`.
    fn session_hit(&mut self, ua: u64, minute: i64, submit: bool, fail: bool) {
        if self.agents_bound.is_some_and(|b| ua >= b) {
            return;
        }
        let new_agent = self
            .sessions
            .range((ua, i64::MIN)..=(ua, i64::MAX))
            .next()
            .is_none();
        let sm = self.sessions.entry((ua, minute)).or_default();
        sm.0 += submit as u32;
        sm.1 += fail as u32;
        if new_agent {
            self.agents_kept += 1;
            if self.agents_kept > MAX_AGENTS {
                self.cut_agents();
            }
        }
    }

    /// Keeps the sessions of the [`MAX_AGENTS`] agents of smallest hash (and of none at or
    /// after `agents_bound`).
    fn cut_agents(&mut self) {
        let mut agents = 0usize;
        let mut last = None;
        let mut cut = self.agents_bound;
        for &(ua, _) in self.sessions.keys() {
            if last != Some(ua) {
                last = Some(ua);
                agents += 1;
                if agents > MAX_AGENTS {
                    cut = Some(cut.map_or(ua, |b| b.min(ua)));
                    break;
                }
            }
        }
        if let Some(b) = cut {
            self.sessions.split_off(&(b, i64::MIN));
            self.agents_bound = Some(b);
        }
        self.agents_kept = self.agents();
    }

    /// Distinct agents in `sessions`.
    fn agents(&self) -> usize {
        let mut n = 0;
        let mut last = None;
        for &(ua, _) in self.sessions.keys() {
            if last != Some(ua) {
                last = Some(ua);
                n += 1;
            }
        }
        n
    }

    fn merge(&mut self, c: Client) {
        for (minute, x) in c.minutes {
            let y = self.minutes.entry(minute).or_default();
            y.submit += x.submit;
            y.fail += x.fail;
            y.limited += x.limited;
            y.account += x.account;
            y.pay_fail += x.pay_fail;
        }
        self.agents_bound = match (self.agents_bound, c.agents_bound) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for (k, (a, b)) in c.sessions {
            let y = self.sessions.entry(k).or_default();
            y.0 += a;
            y.1 += b;
        }
        self.cut_agents();
        self.ev.merge(c.ev);
        self.account_ev.merge(c.account_ev);
    }
}

/// Checkout clients one detector state holds in memory before spilling them: every customer
/// who pays has one, so a big shop's year of logs must not hold them all. About 1.5 KiB each
/// with their lines, so about 3 MiB per state.
pub const CLIENT_CAP: usize = 2048;

struct Routes {
    submit: Vec<String>,
    complete: Vec<String>,
    error: Vec<String>,
    input: Vec<String>,
    /// First path segments any checkout pattern starts with, to skip matching.
    firsts: Vec<String>,
    /// Whether some checkout pattern starts with `*` or `~` (may match any first segment).
    wild: bool,
    /// First bytes of the non-empty `firsts`, to reject most paths without comparing.
    first_bytes: ByteSet,
    /// Second bytes (after the `/`) of the admin prefixes, for the same; `admin_short` when
    /// some prefix is shorter than two bytes (then no such test).
    admin_bytes: ByteSet,
    admin_short: bool,
    /// Admin prefixes (`--admin-path` and the platforms' defaults) with their profile.
    admin: Vec<(String, usize)>,
    profiles: Vec<Profile>,
}

/// `//a/b?q` → `a`: the first segment, up to the first `/` or `?`.
fn first_seg(p: &str) -> &str {
    let start = p.bytes().position(|c| c != b'/').unwrap_or(p.len());
    let rest = &p[start..];
    let end = rest
        .bytes()
        .position(|c| c == b'/' || c == b'?')
        .unwrap_or(rest.len());
    &rest[..end]
}

/// A set of bytes (256 bits).
#[derive(Clone, Copy, Default)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn add(&mut self, b: u8) {
        self.0[(b >> 6) as usize] |= 1 << (b & 63);
    }
    fn has(&self, b: u8) -> bool {
        self.0[(b >> 6) as usize] & (1 << (b & 63)) != 0
    }
}

impl Routes {
    fn new(cfg: &DetectConfig) -> Routes {
        let profiles: Vec<Profile> = if let Some(p) = &cfg.admin.profile {
            vec![p.clone()]
        } else if let Some(p) = cfg
            .admin
            .platform
            .as_deref()
            .and_then(ecir_profiles::by_name)
        {
            vec![p]
        } else {
            ecir_profiles::bundled()
        };
        let mut r = Routes {
            submit: Vec::new(),
            complete: Vec::new(),
            error: Vec::new(),
            input: Vec::new(),
            firsts: Vec::new(),
            wild: false,
            first_bytes: ByteSet::default(),
            admin_bytes: ByteSet::default(),
            admin_short: false,
            admin: Vec::new(),
            profiles: Vec::new(),
        };
        for (i, p) in profiles.into_iter().enumerate() {
            r.submit.extend(p.checkout_submit.iter().cloned());
            r.complete.extend(p.checkout_complete.iter().cloned());
            r.error.extend(p.checkout_error.iter().cloned());
            r.input.extend(p.customer_input.iter().cloned());
            for a in cfg.admin.admin_paths.iter().chain(&p.admin_prefixes) {
                let a = a.trim_end_matches('/').to_string();
                if !a.is_empty() && !r.admin.iter().any(|(x, j)| *x == a && *j == i) {
                    r.admin.push((a, i));
                }
            }
            r.profiles.push(p);
        }
        let mut firsts: Vec<String> = [&r.submit, &r.complete, &r.error, &r.input]
            .into_iter()
            .flatten()
            .map(|p| first_seg(p).to_string())
            .collect();
        firsts.sort();
        firsts.dedup();
        r.wild = firsts
            .iter()
            .any(|x| x.starts_with('*') || x.starts_with('~'));
        for f in &firsts {
            if let Some(b) = f.bytes().next() {
                r.first_bytes.add(b);
            }
        }
        for (a, _) in &r.admin {
            match a.as_bytes().get(1) {
                Some(b) => r.admin_bytes.add(*b),
                None => r.admin_short = true,
            }
        }
        r.firsts = firsts;
        r
    }
    /// Whether `path` may match some checkout pattern (a cheap test on the first segment).
    fn maybe(&self, path: &str) -> bool {
        if self.wild {
            return true;
        }
        // The segment's first byte (after the leading `/`s) refuses most paths before the
        // segment's end is looked for.
        let b = path.as_bytes();
        let start = b.iter().position(|&c| c != b'/').unwrap_or(b.len());
        if let Some(&c) = b.get(start) {
            if c != b'?' && !self.first_bytes.has(c) {
                return false;
            }
        }
        let f = first_seg(path);
        self.firsts.iter().any(|x| x == f)
    }
    /// Whether `path` is under some admin prefix (a necessary condition of [`Self::admin_page`]).
    fn under_admin(&self, path: &str) -> bool {
        // A prefix of two bytes or more is only under a path with the same second byte.
        (self.admin_short
            || path
                .as_bytes()
                .get(1)
                .is_some_and(|b| self.admin_bytes.has(*b)))
            && self
                .admin
                .iter()
                .any(|(prefix, _)| Profile::under(prefix, path))
    }
    fn m(list: &[String], path: &str, query: &str) -> bool {
        Profile::any_matches(list, "", path, query)
    }
    /// Whether a request is an admin page a session is needed for: under an admin prefix, not
    /// a login or logout page, and not served publicly by every platform using that prefix.
    /// (The card detector does not know the platform: `/admin/` is EC-CUBE 2's login form but
    /// EC-CUBE 4's dashboard, and counts.)
    fn admin_page(&self, method: &str, path: &str, query: &str) -> bool {
        if !self.under_admin(path) {
            return false;
        }
        let l = path.to_ascii_lowercase();
        if l.contains("login") || l.contains("logout") || query.contains("AdminLogin") {
            return false;
        }
        self.admin.iter().any(|(prefix, i)| {
            Profile::under(prefix, path)
                && !self.profiles[*i].is_public(prefix, method, path, query)
        })
    }
}

/// State of the card detector.
pub struct Card {
    config: Arc<DetectConfig>,
    routes: Arc<Routes>,
    /// Completion hits, written out past [`ORDERS_CAP`] distinct ones.
    orders: SpillMap<orders::Logged>,
    offset: Option<i32>,
    span: Span,
    /// Asset and harvest state per path. hashbrown for `entry_ref`: one lookup per hit, the
    /// key allocated only on insert.
    paths: Paths,
    /// Raw bytes of the lines `paths` keeps as evidence.
    arena: Arena,
    /// Paths held before they are all written out as a run (`usize::MAX` once writing
    /// failed), the runs written, and why writing failed (see [`path_runs`]).
    paths_cap: usize,
    paths_runs: ecir_spill::Runs<path_runs::PathRecord>,
    paths_error: Option<String>,
    /// First-seen evidence lines written out of `arena` ([`Card::spill_evidence`]), and why
    /// writing them failed (they then stay in memory).
    ev_spool: ecir_spill::Spool,
    ev_spool_error: Option<String>,
    /// Arena bytes past which evidence is spilled next, and the budget it adds each time.
    ev_spill_at: usize,
    evidence_mem: usize,
    /// Same-origin drops by path ([`named_hits`]: spilling tables, as requests choose the names).
    drops: SpillMap<NamedHits>,
    /// Page views (GET 200) of off-flow script or HTML files from checkout pages.
    offflow_gets: SpillMap<NamedCount>,
    beacons: SpillMap<NamedHits>,
    /// Checkout clients, up to [`CLIENT_CAP`] in memory.
    clients: SpillMap<Client>,
    /// Clients that viewed a page outside checkout (a fixed-size filter, see [`Browsed`]).
    browsed: Browsed,
    /// Referer hosts of requests other than the completion page (the shop's own, mostly).
    asset_hosts: BTreeMap<String, u64>,
    hosts_overflow: bool,
    /// The current run of referer host (lower case, empty before any) and how many requests
    /// with it are not yet counted in `asset_hosts`: consecutive requests mostly share a host.
    host: String,
    host_n: u64,
    /// The last referer seen and what it gave: `None` for no usable URL, else whether its
    /// path is a checkout page (its host is then `host`).
    last_referer: String,
    last_referer_is: Option<Option<bool>>,
    /// Completion hits with a referer host: host → (count, sessions, evidence).
    completion_refs: SpillMap<NamedHits>,
    /// Per hour: the (smallest `ADMIN_HOUR_IPS`) clients, with the user where the log names
    /// one, whose admin pages were answered 2xx.
    admin_hours: BTreeMap<i64, SmallestSet<AdminClient>>,
    /// Route classification by "METHOD target" and checkout-page test by referer path: a
    /// shop has far fewer distinct URLs than requests. Cleared at [`ROUTE_CACHE_MAX`] entries.
    route_cache: FxHashMap<Box<str>, RouteFlags>,
    referer_cache: FxHashMap<Box<str>, bool>,
    key: String,
}

/// Entries each route cache holds before it is cleared (bounded memory).
const ROUTE_CACHE_MAX: usize = 16_384;

/// What the shop's routes say of one request target.
#[derive(Clone, Copy, Default)]
struct RouteFlags {
    complete: bool,
    submit: bool,
    error: bool,
    input: bool,
    admin_page: bool,
}

impl Card {
    fn route_flags(&mut self, method: &str, path: &str, query: &str, target: &str) -> RouteFlags {
        // Most requests (assets, catalogue pages) are under no checkout pattern's first
        // segment and no admin prefix: nothing to match, nothing to cache.
        if !self.routes.maybe(path) && !self.routes.under_admin(path) {
            return RouteFlags::default();
        }
        self.key.clear();
        self.key.push_str(method);
        self.key.push(' ');
        self.key.push_str(target);
        if let Some(f) = self.route_cache.get(self.key.as_str()) {
            return *f;
        }
        let r = &self.routes;
        let maybe = r.maybe(path);
        let f = RouteFlags {
            complete: maybe && Routes::m(&r.complete, path, query),
            submit: maybe && Routes::m(&r.submit, path, query),
            error: maybe && Routes::m(&r.error, path, query),
            input: maybe && Routes::m(&r.input, path, query),
            admin_page: r.admin_page(method, path, query),
        };
        if self.route_cache.len() >= ROUTE_CACHE_MAX {
            self.route_cache.clear();
        }
        self.route_cache.insert(self.key.as_str().into(), f);
        f
    }

    /// Reads a referer: `None` when it is no URL with a host, else whether it is a checkout
    /// page; its host (lower case) is then `self.host`, counted by [`Self::count_host`].
    fn referer(&mut self, referer: Option<&str>) -> Option<bool> {
        let r = referer?;
        if let Some(is) = self.last_referer_is {
            if self.last_referer == r {
                return is;
            }
        }
        let is = match split_url(r) {
            None => None,
            Some((host, path)) => {
                if !host.eq_ignore_ascii_case(&self.host) {
                    self.flush_host();
                    self.host.clear();
                    self.host.push_str(host);
                    self.host.make_ascii_lowercase();
                }
                Some(self.is_checkout_page(path))
            }
        };
        self.last_referer.clear();
        self.last_referer.push_str(r);
        self.last_referer_is = Some(is);
        is
    }

    /// Counts the pending requests of the current referer host into `asset_hosts` (a host
    /// new there is added while fewer than [`MAX_HOSTS`] are known).
    fn flush_host(&mut self) {
        if self.host_n == 0 {
            return;
        }
        let n = std::mem::take(&mut self.host_n);
        if let Some(x) = self.asset_hosts.get_mut(self.host.as_str()) {
            *x += n;
        } else if self.asset_hosts.len() < MAX_HOSTS {
            self.asset_hosts.insert(self.host.clone(), n);
        } else {
            self.hosts_overflow = true;
        }
    }

    /// Writes every asset path's kept first-seen lines to the evidence spool (finish reads
    /// back those of the paths that make findings; once a path has written `MAX_EVIDENCE`
    /// lines it has a bound, so only better lines are kept from then on). The next spill
    /// comes once the arena has grown by another [`EVIDENCE_MEM`]; none after writing
    /// failed (the spool then keeps its blocks in memory).
    #[cold]
    fn spill_evidence(&mut self) {
        if self.ev_spool_error.is_some() {
            // Writing failed: what is spilled now would stay in memory as well.
            self.ev_spill_at = usize::MAX;
            return;
        }
        let (arena, spool, error) = (
            &mut self.arena,
            &mut self.ev_spool,
            &mut self.ev_spool_error,
        );
        let mut push = |block: Vec<u8>| {
            if let Err(e) = spool.push(block) {
                error.get_or_insert(e.to_string());
            }
        };
        let mut block = Vec::new();
        for (k, st) in self.paths.0.iter_mut() {
            if let Some(a) = &mut st.asset {
                a.ev.spill(arena, k.as_str(), &mut block);
                if block.len() >= ARENA_BLOCK {
                    push(std::mem::take(&mut block));
                }
            }
        }
        if !block.is_empty() {
            push(block);
        }
        // The garbage left is compacted as usual: harvest lines, never spilled, may be most
        // of the arena, and copying them at every spill would be wasted.
        if self.arena.needs_compaction() {
            self.compact_arena();
        }
        self.ev_spill_at = self.arena.live.saturating_add(self.evidence_mem);
    }

    /// Writes every path's state out as one run sorted by key and empties the table and the
    /// arena; when writing fails, the paths stay in memory and this state stops writing them.
    #[cold]
    fn spill_paths(&mut self) {
        if self.paths.0.is_empty() || self.paths_cap == usize::MAX {
            return;
        }
        let arena = &self.arena;
        let mut records: Vec<path_runs::PathRecord> = self
            .paths
            .0
            .drain()
            .map(|(k, st)| path_runs::PathRecord::detach(&k, st, arena))
            .collect();
        records.sort_unstable_by_key(|r| r.key);
        // Every line the arena held belonged to a path, and each record has its own copy:
        // the arena is all garbage now, whether the run is written or not.
        let spare = std::mem::take(&mut self.arena.bytes.spare);
        let old = std::mem::replace(
            &mut self.arena.bytes,
            Blocks {
                spare,
                ..Blocks::default()
            },
        );
        self.arena.live = 0;
        self.arena.bytes.keep_spares(old.blocks);
        if let Err(e) = self.paths_runs.spill(&records) {
            // Back into memory, and no more writing.
            self.paths_cap = usize::MAX;
            self.paths_error = Some(e.to_string());
            for r in records {
                self.absorb(r);
            }
        }
        if self.ev_spool_error.is_none() {
            self.ev_spill_at = self.arena.live.saturating_add(self.evidence_mem);
        }
    }

    /// Takes a path's record back into the table.
    fn absorb(&mut self, r: path_runs::PathRecord) {
        let remap = Remap {
            files: r.arena.files.iter().map(|f| self.arena.file(f)).collect(),
            from: &r.arena,
        };
        let hash = path_hash(r.path.as_bytes());
        let st = self.paths.get_or_default(r.path.as_bytes(), hash);
        st.merge(r.state, &mut self.arena, &remap);
    }

    /// Every path's state, from memory and the runs written, one record per path in key
    /// order. Problems (runs not written or not read back) are reported through `ctx`.
    fn take_paths<'c>(
        &mut self,
        ctx: &'c FinishContext,
    ) -> impl Iterator<Item = path_runs::PathRecord> + 'c {
        if let Some(e) = &self.paths_error {
            ctx.warn(format!("The card detector's per-path state could not be written to the temporary directory ({e}); it was kept in memory, so memory use grew with it. Set TMPDIR to a writable directory outside the evidence."));
        }
        let arena = std::mem::take(&mut self.arena);
        let mut memory: Vec<path_runs::PathRecord> = std::mem::take(&mut self.paths)
            .0
            .into_iter()
            .map(|(k, st)| path_runs::PathRecord::detach(&k, st, &arena))
            .collect();
        drop(arena);
        memory.sort_unstable_by_key(|r| r.key);
        let runs = std::mem::replace(
            &mut self.paths_runs,
            ecir_spill::Runs::new(std::path::PathBuf::new(), "card-paths"),
        );
        let merge = runs.merge(memory);
        merge.filter_map(move |r| {
            // The runs' files stay until the merge is done.
            let _ = &runs;
            match r {
                Ok(x) => Some(x),
                Err(e) => {
                    ctx.warn(format!("The card detector's per-path state written to the temporary directory could not be read back ({e}): the findings built on it may be incomplete. Keep TMPDIR out of reach of temporary-file cleaners during a scan, and rerun."));
                    None
                }
            }
        })
    }

    /// Copies the kept lines into a new arena, leaving the garbage behind.
    fn compact_arena(&mut self) {
        let mut bytes = Blocks {
            spare: std::mem::take(&mut self.arena.bytes.spare),
            ..Default::default()
        };
        for (_, st) in self.paths.0.iter_mut() {
            if let Some(a) = &mut st.asset {
                for k in &mut a.ev.items {
                    self.arena.move_to(&mut k.raw, &mut bytes);
                }
            }
            if let Some(h) = &mut st.harvest {
                for r in h.fetches.iter_mut().filter_map(|f| f.raw.as_mut()) {
                    self.arena.move_to(r, &mut bytes);
                }
            }
        }
        debug_assert_eq!(bytes.used, self.arena.live);
        let old = std::mem::replace(&mut self.arena.bytes, bytes);
        self.arena.bytes.keep_spares(old.blocks);
    }

    fn is_checkout_page(&mut self, path: &str) -> bool {
        if let Some(b) = self.referer_cache.get(path) {
            return *b;
        }
        let b = checkout_page(&self.routes, path);
        if self.referer_cache.len() >= ROUTE_CACHE_MAX {
            self.referer_cache.clear();
        }
        self.referer_cache.insert(path.into(), b);
        b
    }

    pub fn new(config: Arc<DetectConfig>) -> Self {
        let routes = Arc::new(Routes::new(&config));
        Card {
            config,
            routes,
            orders: orders::new_table(),
            offset: None,
            span: Span::default(),
            paths: Default::default(),
            arena: Arena::default(),
            paths_cap: path_runs::PATH_CAP,
            paths_runs: ecir_spill::Runs::new(std::env::temp_dir(), "card-paths"),
            paths_error: None,
            ev_spool: ecir_spill::Spool::new(std::env::temp_dir(), "card", 0),
            ev_spool_error: None,
            ev_spill_at: EVIDENCE_MEM,
            evidence_mem: EVIDENCE_MEM,
            drops: SpillMap::new(NAME_CAP, "card-names"),
            offflow_gets: SpillMap::new(NAME_CAP, "card-names"),
            beacons: SpillMap::new(NAME_CAP, "card-names"),
            clients: SpillMap::new(CLIENT_CAP, "card"),
            browsed: Browsed::default(),
            asset_hosts: BTreeMap::new(),
            hosts_overflow: false,
            host: String::new(),
            host_n: 0,
            last_referer: String::new(),
            last_referer_is: None,
            completion_refs: SpillMap::new(NAME_CAP, "card-names"),
            admin_hours: BTreeMap::new(),
            route_cache: FxHashMap::default(),
            referer_cache: FxHashMap::default(),
            key: String::new(),
        }
    }

    /// The completion hits kept so far (for the exposure window), taken out of the state.
    pub fn take_orders(&mut self) -> Orders {
        Orders {
            hits: std::mem::replace(&mut self.orders, orders::new_table()),
            offset_secs: self.offset.unwrap_or(0),
            last_ts: self.span.last,
        }
    }
}

/// What the last path segment's extension makes of a request, read from the raw bytes
/// (ASCII case-insensitive) without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ext {
    /// No extension (no dot in the last segment, or a trailing dot): a page.
    None,
    Js,
    Css,
    /// gif, png, jpg, jpeg, ico, svg, webp, bmp.
    Image,
    Php,
    Html,
    Htm,
    Cgi,
    Other,
}

impl Ext {
    fn of(path: &str) -> Ext {
        // The bytes after the last `.` of the last segment: one scan back to a `.` or `/`.
        let b = path.as_bytes();
        let e = match b.iter().rposition(|&c| c == b'.' || c == b'/') {
            Some(i) if b[i] == b'.' => &b[i + 1..],
            _ => return Ext::None,
        };
        if e.is_empty() {
            return Ext::None;
        }
        if e.len() > 4 {
            return Ext::Other;
        }
        let mut k = [0u8; 4];
        for (d, c) in k.iter_mut().zip(e) {
            *d = c.to_ascii_lowercase();
        }
        match &k[..e.len()] {
            b"js" => Ext::Js,
            b"css" => Ext::Css,
            b"gif" | b"png" | b"jpg" | b"jpeg" | b"ico" | b"svg" | b"webp" | b"bmp" => Ext::Image,
            b"php" => Ext::Php,
            b"html" => Ext::Html,
            b"htm" => Ext::Htm,
            b"cgi" => Ext::Cgi,
            _ => Ext::Other,
        }
    }

    /// JavaScript or CSS: the files a skimmer is appended to.
    fn script_like(self) -> bool {
        matches!(self, Ext::Js | Ext::Css)
    }
}

/// Writable directories (in lower case, each `/`, a name and `/`).
const WRITABLE: &[&str] = &[
    "/html/user_data/",
    "/html/upload/",
    "/user_data/",
    "/upload/",
    "/media/",
    "/pub/media/",
    "/wp-content/uploads/",
    "/img/",
];

/// `s` starts with `prefix`, ASCII case-insensitively (`prefix` in lower case or not).
fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// `s` ends with `suffix`, ASCII case-insensitively.
fn ends_with_ci(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// A lower-case ASCII prefix of at most 24 bytes compared a word at a time: a text byte
/// under a letter of the prefix matches in either case (its 0x20 bit forced by `fold`), any
/// other byte only exactly; `care` masks off the bytes past the prefix.
struct CiPrefix {
    second: u8,
    words: [u64; 3],
    fold: [u64; 3],
    care: [u64; 3],
}

impl CiPrefix {
    const fn new(p: &str) -> CiPrefix {
        let b = p.as_bytes();
        assert!(b.len() >= 2 && b.len() <= 24);
        let mut c = CiPrefix {
            second: b[1],
            words: [0; 3],
            fold: [0; 3],
            care: [0; 3],
        };
        let mut i = 0;
        while i < b.len() {
            assert!(!b[i].is_ascii_uppercase());
            let shift = 8 * (i % 8);
            c.words[i / 8] |= (b[i] as u64) << shift;
            c.care[i / 8] |= 0xff << shift;
            if b[i].is_ascii_lowercase() {
                c.fold[i / 8] |= 0x20 << shift;
            }
            i += 1;
        }
        c
    }

    /// Whether `text`, read as three little-endian words (zero past its end), starts with
    /// this prefix, ASCII case-insensitively.
    #[inline]
    fn starts(&self, text: &[u64; 3]) -> bool {
        (0..3).all(|k| (text[k] | self.fold[k]) & self.care[k] == self.words[k])
    }
}

/// [`WRITABLE`] as [`CiPrefix`]es.
const WRITABLE_CI: [CiPrefix; 8] = {
    let mut out = [const {
        CiPrefix {
            second: 0,
            words: [0; 3],
            fold: [0; 3],
            care: [0; 3],
        }
    }; 8];
    assert!(WRITABLE.len() == 8);
    let mut i = 0;
    while i < 8 {
        out[i] = CiPrefix::new(WRITABLE[i]);
        i += 1;
    }
    out
};

fn in_writable(path: &str) -> bool {
    // Most paths are refused by the second byte alone; the others are compared three words
    // at a time rather than byte by byte.
    let b = path.as_bytes();
    let Some(second) = b.get(1).map(u8::to_ascii_lowercase) else {
        return false;
    };
    let mut text = [0u64; 3];
    let mut loaded = false;
    for w in &WRITABLE_CI {
        if w.second != second {
            continue;
        }
        if !loaded {
            let mut buf = [0u8; 24];
            let n = b.len().min(24);
            buf[..n].copy_from_slice(&b[..n]);
            for (k, t) in text.iter_mut().enumerate() {
                *t = u64::from_le_bytes(buf[8 * k..8 * k + 8].try_into().unwrap_or_default());
            }
            loaded = true;
        }
        if w.starts(&text) {
            return true;
        }
    }
    false
}

/// `https://host/path?q` → (host as written, path); the host is compared and kept in lower
/// case by the caller.
fn split_url(u: &str) -> Option<(&str, &str)> {
    // Byte scans for ASCII delimiters (never inside a multi-byte character), as
    // `split_once("://")`, `find('/')`, `rsplit('@')`, `split(':')` and `split('?')` would.
    let b = u.as_bytes();
    let start = b.windows(3).position(|w| w == b"://")? + 3;
    let rest = &u[start..];
    let (host, path) = match rest.bytes().position(|c| c == b'/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = match host.bytes().rposition(|c| c == b'@') {
        Some(i) => &host[i + 1..],
        None => host,
    };
    let host = match host.bytes().position(|c| c == b':') {
        Some(i) => &host[..i],
        None => host,
    };
    if host.is_empty() || host.len() > 255 {
        return None;
    }
    let path = match path.bytes().position(|c| c == b'?') {
        Some(i) => &path[..i],
        None => path,
    };
    Some((host, path))
}

/// Whether a referer path is a checkout or payment page.
fn checkout_page(routes: &Routes, path: &str) -> bool {
    let l = path.to_ascii_lowercase();
    ["shopping", "checkout", "payment", "cart", "order"]
        .iter()
        .any(|k| l.contains(k))
        || (routes.maybe(path)
            && (Routes::m(&routes.submit, path, "") || Routes::m(&routes.complete, path, "")))
}

fn has_base64_run(q: &str, min: usize) -> bool {
    let mut run = 0;
    for b in q.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-') {
            run += 1;
            if run >= min {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// `method` is `m` (upper case), in any case: the usual upper-case spelling is one exact
/// comparison of a few bytes.
#[inline]
fn method_is(method: &str, m: &str) -> bool {
    method == m || method.eq_ignore_ascii_case(m)
}

fn is_account_creation(path: &str, method: &str) -> bool {
    if !method_is(method, "POST") {
        return false;
    }
    let is = |s: &str| path.eq_ignore_ascii_case(s);
    is("/entry")
        || is("/entry/index.php")
        || is("/shopping/nonmember")
        || is("/customer/account/createpost")
        || is("/customer/account/createpost/")
        || (starts_with_ci(path, "/rest/") && ends_with_ci(path, "/v1/customers"))
        || is("/my-account/")
        || is("/my-account")
}

/// Known non-route endpoints legitimately posted to from checkout pages.
fn legit_ajax(path: &str) -> bool {
    ends_with_ci(path, "/admin-ajax.php")
        || path.eq_ignore_ascii_case("/index.php")
        || ends_with_ci(path, "/wp-cron.php")
}

/// What an application log line says about checkout, if anything.
/// Magento CrowdSec events carry a JSON message (`{"type":"PAYMENT_FAILED",…}`); EC-CUBE 4
/// front logs write `[注文処理] 購入エラーが発生しました.` on a failed purchase.
fn app_kind(message: &str) -> Option<&'static str> {
    let kind = |t: &str| {
        message == t
            || message.contains(&format!("\"type\":\"{t}\""))
            || message.contains(&format!("\"type\": \"{t}\""))
    };
    if kind("PAYMENT_FAILED") || message.contains("購入エラーが発生しました") {
        Some("payment-failed")
    } else if kind("CUSTOMER_REGISTER_SUCCESS") {
        Some("account")
    } else {
        None
    }
}

impl DetectorState for Card {
    fn observe(&mut self, ev: &Event<'_>, origin: &Origin<'_>) {
        if let EventDetail::App { message, .. } = &ev.detail {
            if let (Some(ip), Some(kind)) = (ev.client_ip, app_kind(message)) {
                self.span.add(ev.ts);
                let ts_ms = ev.ts.map_or(i64::MIN, |t| t.utc_ms);
                let c = self.clients.get_or_default(ip);
                let m = c.minutes.entry(ts_ms.div_euclid(60_000)).or_default();
                if kind == "account" {
                    m.account += 1;
                    c.account_ev.offer(origin, ev.ts, 15);
                } else {
                    m.pay_fail += 1;
                    c.ev.offer(origin, ev.ts, 25);
                }
            }
            return;
        }
        let (Some(method), Some(status), Some(target)) =
            (ev.method.as_deref(), ev.status, ev.target.as_deref())
        else {
            return;
        };
        if let Some(t) = ev.ts {
            self.offset.get_or_insert(t.offset_secs);
        }
        self.span.add(ev.ts);
        let (path, query) = (ev.path(), ev.query().unwrap_or(""));
        let ts_ms = ev.ts.map_or(i64::MIN, |t| t.utc_ms);
        let ip = ev.client_ip;
        let e = Ext::of(path);
        let is_get = method_is(method, "GET") || method_is(method, "HEAD");
        let is_post = method_is(method, "POST");
        let script_like = e.script_like();
        // What the first-seen rule counts (scripts and images) and what drift reads (sizes of
        // scripts and styles at 200): a stylesheet answered 304 changes nothing.
        let first_seen = matches!(e, Ext::Js | Ext::Image);
        let asset =
            is_get && (first_seen && matches!(status, 200 | 304) || e == Ext::Css && status == 200);
        // Harvest: fetches of a file in a writable directory.
        let harvest = is_get && status == 200 && !script_like && in_writable(path);
        let harvest = harvest.then_some(()).and(ip.zip(ev.bytes));
        // The path's entry is loaded while the referer and routes are read.
        let path_hash = (asset || harvest.is_some()).then(|| self.paths.prefetch(path.as_bytes()));
        // `Some(from_checkout)` when the referer is a URL with a host (then `self.host`).
        let ref_is = self.referer(ev.referer.as_deref().filter(|r| *r != "-"));
        let from_checkout = ref_is == Some(true);

        // Orders.
        let flags = self.route_flags(method, path, query, target);
        let complete = flags.complete;
        if complete && matches!(status, 200 | 302) {
            let hit = OrderHit {
                utc_ms: ts_ms,
                ip,
                ua: fnv(ev.user_agent.as_deref().unwrap_or("")),
            };
            orders::record(&mut self.orders, hit);
            if ref_is.is_some() {
                let h = NamedHits::of(&mut self.completion_refs, &self.host);
                h.count += 1;
                h.span.add(ev.ts);
                if let Some(ip) = ip {
                    h.ips.insert(ip);
                }
                h.ev.offer(origin, ev.ts, 50);
            }
        }

        // Admin pages served: who was in the admin panel, hour by hour.
        if let Some(ip) = ip.filter(|_| (200..300).contains(&status)) {
            if flags.admin_page {
                let user = ev
                    .user
                    .as_deref()
                    .filter(|u| !u.is_empty() && *u != "-")
                    .map(|u| ecir_model::text::escape_controls(u, 64).into_boxed_str());
                self.admin_hours
                    .entry(ts_ms.div_euclid(3_600_000))
                    .or_insert_with(|| SmallestSet::new(ADMIN_HOUR_IPS))
                    .insert((ip, user));
            }
        }

        // Checkout velocity and account bursts.
        if let Some(ip) = ip {
            let submit = is_post && flags.submit;
            let error = flags.error;
            let account = is_account_creation(path, method) && status < 500;
            if submit || error || account {
                let c = self.clients.get_or_default(ip);
                let minute = ts_ms.div_euclid(60_000);
                if submit || error {
                    let ua = fnv(ev.user_agent.as_deref().unwrap_or(""));
                    let fail = error || (submit && matches!(status, 429 | 400 | 402 | 403 | 422));
                    c.session_hit(ua, minute, submit, fail);
                }
                let m = c.minutes.entry(minute).or_default();
                if submit {
                    m.submit += 1;
                    if status == 429 {
                        m.limited += 1;
                    } else if matches!(status, 400 | 402 | 403 | 422) {
                        // REST checkouts (WooCommerce Store API, Magento payment-information)
                        // answer a refused payment with a client error.
                        m.fail += 1;
                    }
                    c.ev.offer(origin, ev.ts, if status == 429 { 30 } else { 10 });
                }
                if error {
                    m.fail += 1;
                    c.ev.offer(origin, ev.ts, 20);
                }
                if account {
                    m.account += 1;
                    c.account_ev.offer(origin, ev.ts, 10);
                }
            } else if is_get && (200..400).contains(&status) && e == Ext::None {
                // A page view outside checkout: the client browsed the shop.
                self.browsed.insert(ip);
            }
        }

        // Static assets: drift, first-seen scripts, shop hosts.
        if !complete && ref_is.is_some() {
            self.host_n += 1;
        }
        if let Some(hash) = path_hash {
            if self.paths.0.len() >= self.paths_cap && !self.paths.contains(path.as_bytes(), hash) {
                self.spill_paths();
            }
            let st = self.paths.get_or_default(path.as_bytes(), hash);
            if asset {
                let a = st.asset.get_or_insert_with(Asset::default);
                if first_seen {
                    // The client list and the kept evidence are other blocks of memory: their
                    // loads start now, together, and both are used last, after the rest of
                    // this path's work.
                    if ip.is_some() {
                        a.ips.prefetch();
                    }
                    if script_like || from_checkout {
                        a.ev.prefetch();
                    }
                    a.hits += 1;
                    a.first.add(ev.ts);
                    if from_checkout {
                        a.checkout_refs += 1;
                    }
                }
                if status == 200 && script_like {
                    if let Some(b) = ev.bytes.filter(|b| *b > 0) {
                        let full = a.sizes.len() >= MAX_SIZES;
                        match a.sizes.get_mut(&b) {
                            Some(s) => {
                                s.n += 1;
                                s.first = s.first.min(ts_ms);
                                s.last = s.last.max(ts_ms);
                                offer_earliest(&mut s.ev, origin, ev.ts);
                            }
                            None if !full => {
                                let mut st = SizeStat {
                                    n: 1,
                                    first: ts_ms,
                                    last: ts_ms,
                                    ev: Vec::new(),
                                };
                                offer_earliest(&mut st.ev, origin, ev.ts);
                                a.sizes.insert(b, st);
                            }
                            None => a.sizes_overflow = true,
                        }
                    }
                }
            }
            if let Some((ip, b)) = harvest {
                let h = st.harvest.get_or_insert_with(Harvest::default);
                if !h.popular {
                    let known = h.has_ip(ip);
                    if !known && h.ips >= HARVEST_MAX_IPS {
                        h.make_popular(&mut self.arena);
                    } else {
                        h.ips += !known as usize;
                        let mut f = Fetch {
                            ip,
                            ts: ev.ts,
                            bytes: b,
                            file: self.arena.file(origin.file),
                            line: origin.line,
                            raw: None,
                        };
                        if h.wants_raw(&self.arena, f.key()) {
                            f.raw = Some(self.arena.push(origin.raw));
                        }
                        h.add(&mut self.arena, f);
                    }
                }
            }
            if let (Some(a), true) = (&mut st.asset, first_seen) {
                // Evidence only where a finding could cite it: scripts, and images loaded
                // from checkout pages (a site with many images would otherwise keep a line
                // per image).
                if script_like || from_checkout {
                    let w = if from_checkout { 20 } else { 10 };
                    a.ev.offer(&mut self.arena, origin, ev.ts, w);
                }
                if let Some(ip) = ip {
                    a.ips.insert(ip);
                }
            }
            if self.arena.needs_compaction() {
                self.compact_arena();
            }
            if self.arena.live > self.ev_spill_at {
                self.spill_evidence();
            }
        }

        // Same-origin drop: a non-route file posted to from checkout pages.
        let long_query = query.len() >= 200;
        if from_checkout
            && (is_post || (is_get && long_query && e != Ext::Image))
            && e != Ext::None
            && !legit_ajax(path)
            && !(flags.submit || flags.input)
            && !complete
            && !matches!(e, Ext::Js | Ext::Css | Ext::Html)
        {
            let d = NamedHits::of(&mut self.drops, path);
            d.count += 1;
            d.checkout_refs += 1;
            d.span.add(ev.ts);
            if let Some(ip) = ip {
                d.ips.insert(ip);
                add_first(&mut d.firsts, ip, ts_ms);
            }
            d.ev.offer(origin, ev.ts, 60);
        }

        if from_checkout
            && is_get
            && status == 200
            && matches!(e, Ext::Php | Ext::Html | Ext::Htm | Ext::Cgi)
            && !legit_ajax(path)
            && !flags.input
        {
            NamedCount::add(&mut self.offflow_gets, path);
        }

        // Image beacons.
        if e == Ext::Image && (long_query || has_base64_run(query, 100)) {
            let d = NamedHits::of(&mut self.beacons, path);
            d.count += 1;
            if from_checkout {
                d.checkout_refs += 1;
            }
            d.span.add(ev.ts);
            if let Some(ip) = ip {
                d.ips.insert(ip);
            }
            d.ev.offer(origin, ev.ts, if from_checkout { 50 } else { 40 });
        }
    }

    fn park(&mut self) {
        self.spill_paths();
        if self.paths.0.is_empty() {
            self.paths = Paths::default();
            self.arena.bytes.spare = Vec::new();
        }
        self.clients.park();
        for m in [
            &mut self.drops,
            &mut self.beacons,
            &mut self.completion_refs,
        ] {
            m.park();
        }
        self.offflow_gets.park();
        self.orders.park();
        self.route_cache = FxHashMap::default();
        self.referer_cache = FxHashMap::default();
    }

    fn merge(&mut self, other: Box<dyn DetectorState>) {
        let mut o: Card = downcast(other);
        self.flush_host();
        o.flush_host();
        self.orders.merge(o.orders);
        if self.offset.is_none() {
            self.offset = o.offset;
        }
        self.span.merge(o.span);
        // The other state's kept lines are copied into this arena; its file indexes mapped.
        let remap = Remap {
            files: o.arena.files.iter().map(|f| self.arena.file(f)).collect(),
            from: &o.arena,
        };
        for (k, st) in o.paths.0 {
            let e = self.paths.0.entry(
                path_hash(k.bytes()),
                |(x, _)| x.bytes() == k.bytes(),
                |(x, _)| path_hash(x.bytes()),
            );
            match e {
                hashbrown::hash_table::Entry::Occupied(e) => {
                    e.into_mut().1.merge(st, &mut self.arena, &remap);
                }
                hashbrown::hash_table::Entry::Vacant(e) => {
                    e.insert((k, PathState::default())).into_mut().1.merge(
                        st,
                        &mut self.arena,
                        &remap,
                    );
                }
            }
        }
        if self.arena.needs_compaction() {
            self.compact_arena();
        }
        if o.paths_cap == usize::MAX {
            self.paths_cap = usize::MAX;
        }
        self.paths_error = self.paths_error.take().or(o.paths_error);
        if let Err(e) = self.paths_runs.append(o.paths_runs) {
            self.paths_cap = usize::MAX;
            self.paths_error.get_or_insert(e.to_string());
        }
        if self.paths.0.len() > self.paths_cap {
            self.spill_paths();
        }
        if let Err(e) = self.ev_spool.append(o.ev_spool) {
            self.ev_spool_error.get_or_insert(e.to_string());
        }
        self.ev_spool_error = self.ev_spool_error.take().or(o.ev_spool_error);
        if self.arena.live > self.ev_spill_at {
            self.spill_evidence();
        }
        self.drops.merge(o.drops);
        self.beacons.merge(o.beacons);
        self.offflow_gets.merge(o.offflow_gets);
        self.completion_refs.merge(o.completion_refs);
        self.clients.merge(o.clients);
        for (h, w) in o.admin_hours {
            match self.admin_hours.get_mut(&h) {
                Some(x) => x.merge(w),
                None => {
                    self.admin_hours.insert(h, w);
                }
            }
        }
        self.browsed.merge(o.browsed);
        self.hosts_overflow |= o.hosts_overflow;
        for (h, n) in o.asset_hosts {
            *self.asset_hosts.entry(h).or_default() += n;
        }
        if self.asset_hosts.len() > MAX_HOSTS {
            self.hosts_overflow = true;
        }
    }

    fn finish(self: Box<Self>, ctx: &FinishContext) -> Vec<Finding> {
        let mut s = *self;
        s.flush_host();
        let config = Arc::clone(&s.config);
        let cfg = &config.card;
        let offset = s.offset.unwrap_or(0);
        let ts = |ms: i64| Timestamp::new(ms, offset);
        let mut out = Vec::new();
        let (Some(t0), Some(t1)) = (s.span.first, s.span.last) else {
            return out;
        };
        let span_ms = t1.utc_ms - t0.utc_ms;

        if let Some(e) = &s.ev_spool_error {
            ctx.warn(format!("First-seen evidence lines could not be written to the temporary directory ({e}); they were kept in memory, so memory use grew with them. Set TMPDIR to a writable directory outside the evidence."));
        }
        let ev_spool = std::mem::replace(
            &mut s.ev_spool,
            ecir_spill::Spool::new(std::path::PathBuf::new(), "card", 0),
        );
        let spilled = ev_spool.has_spilled() || ev_spool.memory_bytes() > 0;
        // One pass over every path's state (memory and runs written): asset drift, first-seen
        // files and harvest candidates, each then taken in path order.
        let late = t0.utc_ms + (span_ms / 5).max(86_400_000);
        let mut changes: Vec<Change> = Vec::new();
        let mut first_seen: Vec<Finding> = Vec::new();
        let mut harvests: Vec<Finding> = Vec::new();
        for rec in s.take_paths(ctx) {
            if let Some(a) = &rec.state.asset {
                changes.extend(drift_change(&rec.path, a, cfg));
                first_seen.extend(first_seen_finding(&rec.path, a, &rec.arena, cfg, late));
            }
            if let Some(h) = &rec.state.harvest {
                harvest_findings(&rec.path, h, &rec.arena, offset, &mut harvests);
            }
        }
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        first_seen.sort_by(|a, b| a.paths.cmp(&b.paths));
        // Stable: a path's findings stay in client order.
        harvests.sort_by(|a, b| a.paths.cmp(&b.paths));
        // Change times sorted, so "changes within an hour" is two binary searches; the first
        // hour each admin IP was seen, so "seen before the look-back" is one lookup.
        let mut change_times: Vec<i64> = changes.iter().map(|c| c.1).collect();
        change_times.sort_unstable();
        let first_admin_hour = first_hour_per_ip(&s.admin_hours);
        for (path, at, old, new, ev) in &changes {
            let together = within(&change_times, *at, 3_600_000);
            // Who was in the admin in the hours before; which of them were staff already.
            let hour = at.div_euclid(3_600_000);
            let mut touched: BTreeSet<&AdminClient> = BTreeSet::new();
            let mut capped = false;
            for (_, w) in s.admin_hours.range(hour - RELEASE_LOOKBACK_HOURS..=hour) {
                touched.extend(w.items());
                capped |= w.overflowed();
            }
            let earlier = |ip: &IpAddr| {
                first_admin_hour
                    .get(ip)
                    .is_some_and(|h| *h < hour - RELEASE_LOOKBACK_HOURS)
            };
            let allow = &s.config.admin.allow;
            let staff: BTreeSet<IpAddr> = touched
                .iter()
                .map(|x| x.0)
                .filter(|ip| earlier(ip) || allow.iter().any(|c| c.contains(ip)))
                .collect();
            let release = together >= 3 && !staff.is_empty();
            let sev = if release {
                Severity::Low
            } else {
                Severity::Medium
            };
            let who = touched
                .iter()
                .map(|(ip, u)| match u {
                    Some(u) => format!("{ip} (user {u})"),
                    None => ip.to_string(),
                })
                .collect::<Vec<_>>();
            let who = if who.is_empty() {
                format!(
                    " No admin page (under {}) was answered 2xx in the {RELEASE_LOOKBACK_HOURS} hours before; a renamed admin prefix is only known with --admin-path.",
                    s.routes
                        .admin
                        .iter()
                        .map(|x| x.0.as_str())
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                format!(
                    " Admin pages were answered 2xx in the {RELEASE_LOOKBACK_HOURS} hours before to {}{}.",
                    who.join(", "),
                    if capped { " and others (the first few per hour are kept)" } else { "" }
                )
            };
            let mut f = Finding::new("card.asset_drift", Category::CardSkimming, sev);
            f.title = format!("Static file changed size: {path}");
            f.summary = format!(
                "{path} was served at {} bytes, then from {} at {} bytes.{} Compare the file with a known-good copy; a skimmer is often appended to a shop's own JavaScript.",
                join(old),
                ts(*at),
                join(new),
                if release {
                    format!(
                        " {together} assets changed within the same hour after admin activity from known staff IP(s) {}, which looks like a release.",
                        staff.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
                    )
                } else if together >= 3 {
                    format!(" {together} assets changed within the same hour, but no known staff IP (in --admin-allow, or in the admin panel more than {RELEASE_LOOKBACK_HOURS} hours earlier) used the admin just before: not taken for a release.")
                } else {
                    String::new()
                }
            );
            f.summary.push_str(&who);
            f.first_seen = Some(ts(*at));
            f.last_seen = Some(ts(*at));
            f.paths = vec![path.clone()];
            f.count = 1;
            f.evidence = ev.clone();
            f.playbook = Some(PLAYBOOK.into());
            out.push(f);
        }

        // First-seen scripts and images loaded from checkout; their evidence may be partly
        // in the spool (path → index in `out`).
        let mut wanted: BTreeMap<String, usize> = BTreeMap::new();
        for f in first_seen {
            if spilled {
                wanted.insert(f.paths[0].clone(), out.len());
            }
            out.push(f);
        }
        if !wanted.is_empty() {
            add_spilled_evidence(ev_spool, &wanted, &mut out, ctx);
        }

        // Checkout clients, in IP order from memory and the spilled runs: judged for card
        // testing, and asked whether customers who posted to a drop path then paid at the real
        // checkout within 30 minutes.
        // Only paths reached by enough clients make findings: those are kept, by path.
        let min_ips = cfg.drop_min_ips;
        // Forged requests from a few addresses can reach any number of paths: the most used
        // are reported one by one, the others summed in one finding per rule.
        let reached = |m: &mut SpillMap<NamedHits>, what: &'static str| {
            let m = std::mem::replace(m, SpillMap::new(0, "card-names"));
            let mut r = named_hits::rank(
                m.into_sorted(ctx, what)
                    .map(|(_, d)| d)
                    .filter(|d| d.clients() >= min_ips),
                MAX_NAMED_FINDINGS,
            );
            r.kept.sort_by(|a, b| a.name.cmp(&b.name));
            r
        };
        let drops = reached(&mut s.drops, "The card detector's same-origin drop paths");
        let beacons = reached(&mut s.beacons, "The card detector's image beacon paths");
        // Off-flow page views of the drop paths kept.
        let wanted: BTreeSet<named_hits::NameKey> = drops
            .kept
            .iter()
            .map(|d| named_hits::name_key(&d.name))
            .collect();
        let offflow = std::mem::replace(&mut s.offflow_gets, SpillMap::new(0, "card-names"));
        let views_of: BTreeMap<named_hits::NameKey, u64> = offflow
            .into_sorted(ctx, "The card detector's off-flow page views")
            .filter(|(k, _)| wanted.contains(k))
            .map(|(k, v)| (k, v.count))
            .collect();
        let mut asked: BTreeMap<IpAddr, Vec<i64>> = BTreeMap::new();
        for d in drops.kept.iter().chain(&beacons.kept) {
            for (ip, t) in &d.hits.firsts {
                asked.entry(*ip).or_default().push(*t);
            }
        }
        let mut paid_after: BTreeSet<(IpAddr, i64)> = BTreeSet::new();
        let mut testing = CardTesting::new(cfg, offset);
        let clients = std::mem::replace(&mut s.clients, SpillMap::new(0, "card"));
        let clients = clients.into_sorted(ctx, "The checkout clients of card-testing detection");
        for (ip, c) in clients {
            for t in asked.get(&ip).into_iter().flatten() {
                let m0 = t.div_euclid(60_000);
                if c.minutes.range(m0..=m0 + 30).any(|(_, x)| x.submit > 0) {
                    paid_after.insert((ip, *t));
                }
            }
            testing.client(ip, &c);
        }

        // Drops and beacons.
        // A drop is high; a beacon when some of it came from checkout pages.
        let severity = |drop: bool, d: &PathHits| {
            if drop || d.checkout_refs > 0 {
                Severity::High
            } else {
                Severity::Medium
            }
        };
        for (rule, ranked) in [("card.exfil_drop", &drops), ("card.image_beacon", &beacons)] {
            let drop = rule == "card.exfil_drop";
            for named in &ranked.kept {
                let key = named_hits::name_key(&named.name);
                let (path, d, n) = (&named.name, &named.hits, named.clients());
                // Customers who, after posting to this path, submitted the real checkout
                // within 30 minutes: they typed their card twice (a fake payment page).
                let reentered = d
                    .firsts
                    .iter()
                    .filter(|(ip, t)| paid_after.contains(&(**ip, **t)))
                    .count();
                let views = views_of.get(&key).copied().unwrap_or(0);
                let fake = drop
                    && views >= cfg.drop_min_ips as u64
                    && reentered >= cfg.drop_min_ips
                    && reentered * 2 >= d.firsts.len();
                let rule = if fake { "card.fake_payment_page" } else { rule };
                let mut f = Finding::new(rule, Category::CardSkimming, severity(drop, d));
                if fake {
                    f.title =
                        format!("Fake payment step: customers posted to {path}, then paid again");
                    f.summary = format!(
                        "{} request(s) from {}{n} customer IPs posted to {path}, which is not a shop route, from checkout pages, after it was served to them as a page {views} time(s); {reentered} of the {} customers looked at then submitted the real checkout within 30 minutes. Customers entering their card twice, first on a page outside the payment flow, is how a fake payment form on the shop harvests cards while orders still complete. Preserve the file.",
                        d.count,
                        if d.ips.overflowed() { "at least " } else { "" },
                        d.firsts.len()
                    );
                } else if drop {
                    f.title = format!("Customers' browsers sent data to {path} from checkout");
                    f.summary = format!(
                        "{} request(s) from {}{n} customer IPs posted (or sent long queries) to {path}, which is not a shop route, with a checkout or payment page as referer: the pattern of a skimmer storing card data on the shop itself. Preserve the file and look for where it writes.",
                        d.count,
                        if d.ips.overflowed() { "at least " } else { "" }
                    );
                } else {
                    f.title = format!("Image requests carrying long encoded data: {path}");
                    f.summary = format!(
                        "{} image request(s) from {}{n} IPs carried long base64-like queries to {path} ({} from checkout pages): a skimmer may be sending card data as an image beacon.",
                        d.count,
                        if d.ips.overflowed() { "at least " } else { "" },
                        d.checkout_refs
                    );
                }
                f.paths = vec![path.to_string()];
                d.fill(&mut f);
                out.push(f);
            }
            if ranked.rest_names > 0 {
                let d = &ranked.rest;
                let mut f = Finding::new(rule, Category::CardSkimming, severity(drop, d));
                let more = ranked.rest_names;
                f.title = if drop {
                    format!("Customers' browsers sent data to {more} more paths from checkout")
                } else {
                    format!("Image requests carrying long encoded data: {more} more paths")
                };
                f.summary = format!(
                    "{} request(s) went to {more} other paths, each reached by at least {min_ips} and at most {} client IPs, no more than the {MAX_NAMED_FINDINGS} paths listed separately. A skimmer uses one or a few paths; this many usually means forged requests, but each may hide one: look at a sample in the evidence.",
                    d.count, ranked.rest_most_clients
                );
                d.fill(&mut f);
                out.push(f);
            }
        }

        // Harvest.
        out.extend(harvests);

        // Completion from a foreign referer.
        let total: u64 = s.asset_hosts.values().sum();
        if !s.hosts_overflow && total > 0 {
            let shop: BTreeSet<&str> = s
                .asset_hosts
                .iter()
                .filter(|(_, n)| **n * 20 >= total)
                .map(|(h, _)| h.as_str())
                .collect();
            let refs = std::mem::replace(&mut s.completion_refs, SpillMap::new(0, "card-names"));
            let psp = |host: &str| {
                cfg.psp_domains
                    .iter()
                    .any(|p| host == p || host.ends_with(&format!(".{p}")))
            };
            // Forged referers can name any number of hosts: the most used ones are listed
            // one by one, the others summed in one finding.
            let ranked = named_hits::rank(
                refs.into_sorted(ctx, "The card detector's completion referer hosts")
                    .map(|(_, d)| d)
                    .filter(|d| !shop.contains(&*d.name) && !psp(&d.name)),
                MAX_NAMED_FINDINGS,
            );
            let mut by_host = ranked.kept;
            by_host.sort_by(|a, b| a.name.cmp(&b.name));
            // High once three customers came that way.
            let referer_finding = |clients: usize| {
                let sev = if clients >= 3 {
                    Severity::High
                } else {
                    Severity::Medium
                };
                Finding::new(
                    "card.foreign_referer_completion",
                    Category::CardSkimming,
                    sev,
                )
            };
            for named in &by_host {
                let (host, d) = (&named.name, &named.hits);
                let n = named.clients();
                let mut f = referer_finding(n);
                f.title = format!("Order completion reached from {host}");
                f.summary = format!(
                    "{} order completion(s) by {n} customer IP(s) came from pages on {host}, which is neither this shop nor an allow-listed payment provider: customers may have typed their card into a fake payment form there before being sent back. If {host} is your payment provider or its 3-D Secure page, pass --psp-domain {host}.",
                    d.count
                );
                d.fill(&mut f);
                out.push(f);
            }
            if ranked.rest_names > 0 {
                let d = &ranked.rest;
                let mut f = referer_finding(ranked.rest_most_clients);
                f.title = format!(
                    "Order completions reached from {} more hosts",
                    ranked.rest_names
                );
                f.summary = format!(
                    "{} order completion(s) came from pages on {} other hosts, neither this shop nor an allow-listed payment provider, each reached by no more customers than the {MAX_NAMED_FINDINGS} hosts listed separately (at most {} customer IPs on one). So many referer hosts usually means forged or spam referers: look at a sample in the evidence, and pass --psp-domain for a payment provider among them.",
                    d.count, ranked.rest_names, ranked.rest_most_clients
                );
                d.fill(&mut f);
                out.push(f);
            }
        }

        out.extend(testing.finish(&s.browsed));
        out
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }

    fn take_orders(&mut self) -> Option<Orders> {
        Some(Card::take_orders(self))
    }
}

/// Paths reported one by one in `card.exfil_drop` and `card.image_beacon` findings, and
/// referer hosts in `card.foreign_referer_completion` findings (the most used); the others
/// are summed in one more finding per rule.
const MAX_NAMED_FINDINGS: usize = 100;

/// The size change of an asset, if it settled on a new size (see `card.asset_drift`).
fn drift_change(path: &str, a: &Asset, cfg: &CardConfig) -> Option<Change> {
    if a.sizes_overflow || !Ext::of(path).script_like() {
        return None;
    }
    let stable: Vec<(u64, &SizeStat)> = a
        .sizes
        .iter()
        .filter(|(_, st)| st.n >= cfg.drift_min_hits)
        .map(|(b, st)| (*b, st))
        .collect();
    // A new size: starts after an old one has been served, and some old size stops
    // being served (within an hour of) when it starts.
    let tol = 3_600_000;
    let mut new_sizes = Vec::new();
    let mut old_sizes = Vec::new();
    let mut at = i64::MAX;
    for (nb, ns) in &stable {
        for (ob, os) in &stable {
            if ob != nb && os.first < ns.first && os.last <= ns.first + tol && ns.last > os.last {
                if !new_sizes.contains(nb) {
                    new_sizes.push(*nb);
                }
                if !old_sizes.contains(ob) {
                    old_sizes.push(*ob);
                }
                at = at.min(ns.first);
            }
        }
    }
    if !new_sizes.is_empty() {
        new_sizes.sort();
        old_sizes.sort();
        let mut ev = Vec::new();
        for (b, st) in &stable {
            let w = if new_sizes.contains(b) {
                60
            } else if old_sizes.contains(b) {
                30
            } else {
                continue;
            };
            ev.extend(st.ev.iter().cloned().map(|mut e| {
                e.weight = w;
                e
            }));
        }
        Some((path.to_string(), at, old_sizes, new_sizes, ev))
    } else {
        None
    }
}

/// The `card.first_seen_script` finding of an asset, if it is one. `late`: when "well into
/// the logs" starts.
fn first_seen_finding(
    path: &str,
    a: &Asset,
    arena: &Arena,
    cfg: &CardConfig,
    late: i64,
) -> Option<Finding> {
    let e = Ext::of(path);
    let first = a.first.first?;
    let n_ips = a.ips.exact_len().unwrap_or(MAX_PATH_IPS);
    if !matches!(e, Ext::Js | Ext::Image)
        || first.utc_ms < late
        || n_ips < cfg.first_seen_min_ips
        || (a.checkout_refs as f64) < 0.5 * a.hits as f64
    {
        return None;
    }
    let sev = if in_writable(path) {
        Severity::High
    } else {
        Severity::Medium
    };
    let mut f = Finding::new("card.first_seen_script", Category::CardSkimming, sev);
    f.title = format!("New file loaded mostly from checkout pages: {path}");
    f.summary = format!(
        "{path} was first requested at {first}, well into the logs, and then by {}{n_ips} customer IPs, {} of its {} requests from checkout or payment pages. A tag meant for the whole shop would load on every page: find who added it.",
        if a.ips.overflowed() { "at least " } else { "" },
        a.checkout_refs,
        a.hits
    );
    f.first_seen = Some(first);
    f.last_seen = a.first.last;
    f.paths = vec![path.to_string()];
    f.count = a.hits;
    f.evidence = a.ev.to_vec(arena);
    f.playbook = Some(PLAYBOOK.into());
    Some(f)
}

/// The `card.drop_harvest` findings of a file in a writable directory, one per client that
/// kept fetching it as it grew.
fn harvest_findings(path: &str, h: &Harvest, arena: &Arena, offset: i32, out: &mut Vec<Finding>) {
    let ts = |ms: i64| Timestamp::new(ms, offset);
    if h.popular {
        return;
    }
    for (ip, f) in &h.per_client() {
        if f.len() < 3 || f.last().unwrap().0 - f[0].0 < 3_600_000 {
            continue;
        }
        let ups = f.windows(2).filter(|w| w[1].1 > w[0].1).count();
        let downs = f.windows(2).filter(|w| w[1].1 < w[0].1).count();
        if ups < 2 || downs > 1 {
            continue;
        }
        let mut x = Finding::new("card.drop_harvest", Category::CardSkimming, Severity::High);
        x.title = format!("{ip} repeatedly fetched a growing file: {path}");
        x.summary = format!(
            "{ip} fetched {path} {} times between {} and {}; its size grew from {} to {} bytes{}. A file in a writable directory that keeps growing and is collected now and then is how stolen card data is stored and harvested.",
            f.len(),
            ts(f[0].0),
            ts(f[f.len() - 1].0),
            f[0].1,
            f.iter().map(|x| x.1).max().unwrap_or(0),
            if downs > 0 { ", then shrank (wiped after collection?)" } else { "" }
        );
        x.first_seen = Some(ts(f[0].0));
        x.last_seen = Some(ts(f[f.len() - 1].0));
        x.ips = vec![ip.to_string()];
        x.paths = vec![path.to_string()];
        x.count = f.len() as u64;
        let ips = ip.to_string();
        x.evidence = h
            .evidence(arena)
            .into_iter()
            .filter(|e| e.text.starts_with(&ips))
            .collect();
        x.playbook = Some(PLAYBOOK.into());
        out.push(x);
    }
}

/// One asset's size change: path, when, old sizes, new sizes, evidence.
type Change = (String, i64, Vec<u64>, Vec<u64>, Vec<ecir_model::Evidence>);

impl PathHits {
    /// The subjects a finding about these hits carries: span, up to ten IPs, count,
    /// evidence and the card-skimming playbook.
    fn fill(&self, f: &mut Finding) {
        f.first_seen = self.span.first;
        f.last_seen = self.span.last;
        f.ips = self
            .ips
            .items()
            .iter()
            .take(10)
            .map(|i| i.to_string())
            .collect();
        f.count = self.count;
        f.evidence = self.ev.clone().into_vec();
        f.playbook = Some(PLAYBOOK.into());
    }
}

fn merge_hits(m: &mut PathHits, d: PathHits) {
    if m.ips.items().is_empty() && !m.ips.overflowed() && m.count == 0 {
        m.ips = SmallestSet::new(MAX_PATH_IPS);
    }
    m.count += d.count;
    m.checkout_refs += d.checkout_refs;
    m.span.merge(d.span);
    m.ips.merge(d.ips);
    m.ev.merge(d.ev);
    for (ip, t) in d.firsts {
        add_first(&mut m.firsts, ip, t);
    }
}

fn join(v: &[u64]) -> String {
    v.iter()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(" / ")
}

/// One checkout session of a client (IP + user agent, see [`Sessions`]): submissions,
/// failures, first and last minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CheckoutSession {
    submit: u32,
    fail: u32,
    first: i64,
    last: i64,
}

/// Splits a client's checkout minutes into sessions (per user agent, the inactivity gap).
fn checkout_sessions(c: &Client, gap_secs: i64) -> Vec<CheckoutSession> {
    let mut split = Sessions::new(gap_secs);
    let mut out: Vec<CheckoutSession> = Vec::new();
    let mut current: BTreeMap<u64, usize> = BTreeMap::new();
    // Keys sort by agent, then minute: each agent's minutes arrive in time order.
    for ((ua, minute), (sub, fail)) in &c.sessions {
        if split.hit(*ua, minute.saturating_mul(60_000)) || !current.contains_key(ua) {
            out.push(CheckoutSession {
                first: *minute,
                last: *minute,
                ..Default::default()
            });
            current.insert(*ua, out.len() - 1);
        }
        let x = &mut out[current[ua]];
        x.submit += sub;
        x.fail += fail;
        x.last = *minute;
    }
    out
}

/// What a session can and cannot show, for card-testing summaries.
fn session_limits(gap_minutes: i64) -> String {
    format!(
        " A session here is the client IP plus user agent with a {gap_minutes}-minute gap, since access logs carry no session cookie: a tester rotating user agents on one IP splits into many short sessions (the per-IP window adds them up), and one rotating IPs behind a single session cookie cannot be seen in access logs at all — the payment provider's declines per card or per customer account can."
    )
}

/// Card testing, judged one checkout client at a time in IP order (the clients stream from
/// the spill merge), then across clients for distributed testing.
struct CardTesting<'a> {
    cfg: &'a CardConfig,
    offset: i32,
    /// Per-hour site-wide submissions and failures, and which IPs failed in each hour.
    hours: BTreeMap<i64, (u64, u64, BTreeSet<IpAddr>)>,
    /// Which IPs failed in each minute (for bursts).
    minutes: BTreeMap<i64, BTreeSet<IpAddr>>,
    /// Of each client that failed: its failures per minute (minutes with none left out) and
    /// its evidence, for the distributed finding.
    failing: BTreeMap<IpAddr, (Vec<(i64, u64)>, TopEvidence)>,
    out: Vec<Finding>,
}

impl<'a> CardTesting<'a> {
    fn new(cfg: &'a CardConfig, offset: i32) -> Self {
        CardTesting {
            cfg,
            offset,
            hours: BTreeMap::new(),
            minutes: BTreeMap::new(),
            failing: BTreeMap::new(),
            out: Vec::new(),
        }
    }

    /// Judges one client; clients come in ascending IP order, each once.
    fn client(&mut self, ip: IpAddr, c: &Client) {
        let cfg = self.cfg;
        let offset = self.offset;
        let hours = &mut self.hours;
        let minutes = &mut self.minutes;
        let out = &mut self.out;
        let win = cfg.velocity_window_secs.max(60) * 1000 / 60_000;
        let t = |m: i64| Timestamp::new(m * 60_000, offset);
        let ip = &ip;
        // Sliding window over minutes.
        let mins: Vec<(i64, Minute)> = c.minutes.iter().map(|(k, v)| (*k, *v)).collect();
        let mut best: Option<(u32, u32, u32, i64, i64)> = None;
        let mut best_pay: Option<(u32, i64, i64)> = None;
        let mut best_acc: Option<(u32, i64, i64)> = None;
        let mut j = 0;
        let mut w = Minute::default();
        for i in 0..mins.len() {
            let (m, x) = mins[i];
            w.submit += x.submit;
            w.fail += x.fail;
            w.limited += x.limited;
            w.account += x.account;
            w.pay_fail += x.pay_fail;
            while mins[j].0 <= m - win {
                let y = mins[j].1;
                w.submit -= y.submit;
                w.fail -= y.fail;
                w.limited -= y.limited;
                w.account -= y.account;
                w.pay_fail -= y.pay_fail;
                j += 1;
            }
            let sub = w.submit;
            let failures = (w.fail + w.limited).min(sub.max(w.fail + w.limited));
            if sub >= cfg.velocity_attempts
                && best.is_none_or(|b| sub > b.0)
                && failures as f64 >= cfg.failure_ratio * sub as f64
            {
                best = Some((sub, failures, w.limited, mins[j].0, m));
            }
            if w.pay_fail >= cfg.payment_failures && best_pay.is_none_or(|b| w.pay_fail > b.0) {
                best_pay = Some((w.pay_fail, mins[j].0, m));
            }
            if w.account >= cfg.account_burst && best_acc.is_none_or(|b| w.account > b.0) {
                best_acc = Some((w.account, mins[j].0, m));
            }
            let failed = x.fail + x.limited + x.pay_fail;
            let h = hours.entry(m.div_euclid(60)).or_default();
            h.0 += (x.submit + x.pay_fail) as u64;
            h.1 += failed as u64;
            if failed > 0 {
                h.2.insert(*ip);
                minutes.entry(m).or_default().insert(*ip);
            }
        }
        // Per checkout session: a slower tester stays under the per-IP window but not under
        // the session's inactivity gap.
        let sessions = checkout_sessions(c, cfg.session_gap_secs);
        let gap_min = Sessions::<u8>::new(cfg.session_gap_secs).gap_minutes();
        let busy = sessions
            .iter()
            .filter(|x| {
                x.submit >= cfg.velocity_attempts
                    && x.fail as f64 >= cfg.failure_ratio * x.submit as f64
            })
            .max_by_key(|x| (x.submit, std::cmp::Reverse(x.first)))
            .copied();
        if let Some((sub, failures, lim, a, b)) = best {
            let mut f = Finding::new("cardtest.velocity", Category::CardTesting, Severity::High);
            f.title =
                format!("Card testing from {ip}: {sub} checkout submissions, {failures} failed");
            f.summary = format!(
                "{ip} submitted checkout {sub} times within {} minutes ({} to {}); {failures} ended on the error page or were refused by the rate limiter ({lim} × 429). A customer retrying a declined card does so a few times, not this often: check the payment provider's console for repeated authorisation errors and block the client.",
                cfg.velocity_window_secs / 60,
                t(a),
                t(b)
            );
            f.summary.push_str(&format!(
                " Its checkout traffic forms {}{}.",
                match c.agents_bound {
                    None => format!("{} session(s) with {} user agent(s)", sessions.len(), c.agents()),
                    Some(_) => format!(
                        "at least {} session(s) with more than {MAX_AGENTS} user agents (sessions counted for {MAX_AGENTS} of them, {} of its {} submissions)",
                        sessions.len(),
                        c.sessions.values().map(|x| u64::from(x.0)).sum::<u64>(),
                        c.minutes.values().map(|x| u64::from(x.submit)).sum::<u64>(),
                    ),
                },
                match busy {
                    Some(x) => format!(
                        "; the busiest session submitted {} times, {} failed",
                        x.submit, x.fail
                    ),
                    None => String::new(),
                }
            ));
            f.summary.push_str(&session_limits(gap_min));
            f.first_seen = Some(t(a));
            f.last_seen = Some(t(b + 1));
            f.ips = vec![ip.to_string()];
            f.count = sub as u64;
            f.evidence = c.ev.clone().into_vec();
            out.push(f);
        } else if let Some(x) = busy {
            let mut f = Finding::new("cardtest.velocity", Category::CardTesting, Severity::High);
            f.title = format!(
                "Card testing from {ip}: {} checkout submissions in one session, {} failed",
                x.submit, x.fail
            );
            f.summary = format!(
                "{ip} submitted checkout {} times in one session between {} and {} (never {} minutes apart, but too spread out for the {}-minute per-IP window); {} ended on the error page or were refused. A customer retrying a declined card does so a few times, not this often: check the payment provider's console for repeated authorisation errors and block the client.{}",
                x.submit,
                t(x.first),
                t(x.last),
                gap_min,
                cfg.velocity_window_secs / 60,
                x.fail,
                session_limits(gap_min)
            );
            f.first_seen = Some(t(x.first));
            f.last_seen = Some(t(x.last + 1));
            f.ips = vec![ip.to_string()];
            f.count = x.submit as u64;
            f.evidence = c.ev.clone().into_vec();
            out.push(f);
        } else if let Some((n, a, b)) = best_pay {
            // Failures the shop application itself logged (no access-log inference).
            let sev = if n >= cfg.velocity_attempts {
                Severity::High
            } else {
                Severity::Medium
            };
            let mut f = Finding::new("cardtest.velocity", Category::CardTesting, sev);
            f.title = format!("Card testing from {ip}: {n} payment failures");
            f.summary = format!(
                "The shop's application log records {n} failed payments from {ip} within {} minutes ({} to {}). A customer retrying a declined card stops after a few tries: check the payment provider's console and block the client.",
                cfg.velocity_window_secs / 60,
                t(a),
                t(b)
            );
            f.first_seen = Some(t(a));
            f.last_seen = Some(t(b + 1));
            f.ips = vec![ip.to_string()];
            f.count = n as u64;
            f.evidence = c.ev.clone().into_vec();
            out.push(f);
        }
        if let Some((acc, a, b)) = best_acc {
            let mut f = Finding::new(
                "cardtest.account_burst",
                Category::CardTesting,
                Severity::Medium,
            );
            f.title = format!(
                "{ip} created {acc} accounts within {} minutes",
                cfg.velocity_window_secs / 60
            );
            f.summary = format!(
                "{ip} submitted {acc} account registrations between {} and {}: card testers register throw-away accounts to get around per-customer limits.",
                t(a),
                t(b)
            );
            f.first_seen = Some(t(a));
            f.last_seen = Some(t(b + 1));
            f.ips = vec![ip.to_string()];
            f.count = acc as u64;
            f.evidence = c.account_ev.clone().into_vec();
            out.push(f);
        }
        let fails: Vec<(i64, u64)> = c
            .minutes
            .iter()
            .map(|(m, x)| (*m, (x.fail + x.limited + x.pay_fail) as u64))
            .filter(|x| x.1 > 0)
            .collect();
        if !fails.is_empty() {
            self.failing.insert(*ip, (fails, c.ev.clone()));
        }
    }

    /// Distributed testing over all clients judged, then every finding.
    fn finish(self, browsed: &Browsed) -> Vec<Finding> {
        let CardTesting {
            cfg,
            offset,
            hours,
            minutes,
            failing,
            mut out,
        } = self;
        let t = |m: i64| Timestamp::new(m * 60_000, offset);
        let never_browsed = |ips: &BTreeSet<IpAddr>| {
            let never = ips.iter().filter(|ip| !browsed.contains(**ip)).count();
            never * 2 >= ips.len()
        };
        // Distributed testing: an hour far above the logs' median hour of failures, or (without a
        // baseline) many distinct IPs failing within ten minutes.
        let mut spans: Vec<(i64, i64)> = Vec::new();
        let mut ips: BTreeSet<IpAddr> = BTreeSet::new();
        let mut median = None;
        if hours.len() >= 2 {
            let mut all: Vec<u64> = hours.values().map(|h| h.1).collect();
            all.sort();
            let med = all[all.len() / 2];
            median = Some(med);
            for (h, (_, fail, hips)) in &hours {
                if *fail >= 10 && *fail >= 5 * med.max(1) && hips.len() >= 5 && never_browsed(hips)
                {
                    spans.push((h * 60, h * 60 + 59));
                    ips.extend(hips.iter().copied());
                }
            }
        }
        let keys: Vec<i64> = minutes.keys().copied().collect();
        let mut j = 0;
        let mut window: BTreeMap<IpAddr, u32> = BTreeMap::new();
        for i in 0..keys.len() {
            for ip in &minutes[&keys[i]] {
                *window.entry(*ip).or_default() += 1;
            }
            while keys[j] <= keys[i] - 10 {
                for ip in &minutes[&keys[j]] {
                    if let Some(n) = window.get_mut(ip) {
                        *n -= 1;
                        if *n == 0 {
                            window.remove(ip);
                        }
                    }
                }
                j += 1;
            }
            if window.len() >= cfg.distributed_min_ips.max(2) {
                let w: BTreeSet<IpAddr> = window.keys().copied().collect();
                if never_browsed(&w) {
                    spans.push((keys[j], keys[i]));
                    ips.extend(w);
                }
            }
        }
        if let (Some(first), Some(last)) = (
            spans.iter().map(|x| x.0).min(),
            spans.iter().map(|x| x.1).max(),
        ) {
            let mut fails = 0u64;
            for ip in &ips {
                if let Some((per_minute, _)) = failing.get(ip) {
                    fails += per_minute
                        .iter()
                        .filter(|(m, _)| (first..=last).contains(m))
                        .map(|(_, n)| n)
                        .sum::<u64>();
                }
            }
            let mut f = Finding::new(
                "cardtest.distributed",
                Category::CardTesting,
                Severity::High,
            );
            f.title = format!(
                "Distributed card testing: {fails} failed payments from {} IPs",
                ips.len()
            );
            f.summary = format!(
                "Between {} and {} payments failed {fails} times from {} IPs{}, most of which never browsed the shop (in these logs) before paying. That is card testing spread across many addresses; a payment-provider outage would fail real browsing customers too.",
                t(first),
                t(last + 1),
                ips.len(),
                match median {
                    Some(m) => format!(" (the logs' median hour has {m} failures)"),
                    None => String::new(),
                }
            );
            f.first_seen = Some(t(first));
            f.last_seen = Some(t(last + 1));
            f.ips = ips.iter().take(10).map(|i| i.to_string()).collect();
            f.count = fails;
            let mut ev = TopEvidence::default();
            for ip in ips.iter().take(20) {
                if let Some((_, e)) = failing.get(ip) {
                    ev.merge(e.clone());
                }
            }
            f.evidence = ev.into_vec();
            out.push(f);
        }
        out
    }
}

/// A checkout client as spilled (see [`SpillMap`]).
impl Spillable for Client {
    type Key = IpAddr;

    fn encode(ip: IpAddr, c: &Client, out: &mut Vec<u8>) {
        codec::put_ip(out, Some(ip));
        codec::put_u32(out, c.minutes.len() as u32);
        for (m, x) in &c.minutes {
            codec::put_i64(out, *m);
            for n in [x.submit, x.fail, x.limited, x.account, x.pay_fail] {
                codec::put_u32(out, n);
            }
        }
        match c.agents_bound {
            Some(b) => {
                out.push(1);
                codec::put_u64(out, b);
            }
            None => out.push(0),
        }
        codec::put_u32(out, c.sessions.len() as u32);
        for ((ua, m), (sub, fail)) in &c.sessions {
            codec::put_u64(out, *ua);
            codec::put_i64(out, *m);
            codec::put_u32(out, *sub);
            codec::put_u32(out, *fail);
        }
        codec::put_evidence(out, &c.ev);
        codec::put_evidence(out, &c.account_ev);
    }

    fn decode(b: &[u8], files: &mut Files) -> Option<(IpAddr, Client)> {
        let mut r = Cursor(b);
        let ip = r.ip()??;
        let mut c = Client::default();
        for _ in 0..r.count(28)? {
            let m = r.i64()?;
            let x = Minute {
                submit: r.u32()?,
                fail: r.u32()?,
                limited: r.u32()?,
                account: r.u32()?,
                pay_fail: r.u32()?,
            };
            c.minutes.insert(m, x);
        }
        c.agents_bound = match r.u8()? {
            0 => None,
            _ => Some(r.u64()?),
        };
        for _ in 0..r.count(24)? {
            let key = (r.u64()?, r.i64()?);
            c.sessions.insert(key, (r.u32()?, r.u32()?));
        }
        c.agents_kept = c.agents();
        c.ev = r.evidence(files)?;
        c.account_ev = r.evidence(files)?;
        Some((ip, c))
    }

    fn merge(&mut self, other: Client) {
        Client::merge(self, other);
    }
}

/// How many of `sorted` lie within `radius` of `at` (both ends in).
fn within(sorted: &[i64], at: i64, radius: i64) -> usize {
    let lo = sorted.partition_point(|t| *t < at - radius);
    let hi = sorted.partition_point(|t| *t <= at + radius);
    hi - lo
}

/// The first hour each client IP had admin pages answered 2xx (among the kept clients).
fn first_hour_per_ip(hours: &BTreeMap<i64, SmallestSet<AdminClient>>) -> FxHashMap<IpAddr, i64> {
    let mut first = FxHashMap::default();
    for (h, w) in hours {
        for x in w.items() {
            first.entry(x.0).or_insert(*h);
        }
    }
    first
}

#[cfg(test)]
mod finish_tests {
    use super::*;

    #[test]
    fn changes_within_an_hour_count_both_bounds() {
        let h = 3_600_000;
        let t = [0, h - 1, h, h + 1, 2 * h, 2 * h, 3 * h + 1];
        assert_eq!(within(&t, h, h), 6, "0 and 2h are exactly an hour away: in");
        assert_eq!(within(&t, 2 * h, h), 4, "h..=3h, ties counted, 3h+1 out");
        assert_eq!(
            within(&t, 4 * h + 2, h),
            0,
            "3h+1 is an hour and a millisecond before"
        );
        assert_eq!(within(&[], 0, h), 0);
    }

    #[test]
    fn first_admin_hour_is_the_earliest_per_ip() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut hours: BTreeMap<i64, SmallestSet<AdminClient>> = BTreeMap::new();
        for (h, a) in [(5, "203.0.113.1"), (3, "203.0.113.1"), (9, "203.0.113.2")] {
            let mut w = SmallestSet::new(ADMIN_HOUR_IPS);
            w.insert((ip(a), None));
            hours.insert(h, w);
        }
        let first = first_hour_per_ip(&hours);
        assert_eq!(first.get(&ip("203.0.113.1")), Some(&3));
        assert_eq!(first.get(&ip("203.0.113.2")), Some(&9));
        assert_eq!(first.get(&ip("203.0.113.3")), None);
    }
}

mod named_hits;
mod orders;
mod path_runs;

#[cfg(test)]
mod tests;
