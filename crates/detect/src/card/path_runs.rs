//! The card detector's per-path state (assets and harvest candidates) past a cap: a state
//! holding [`PATH_CAP`] paths writes them all, sorted, as one run through [`ecir_spill`],
//! and finish reads memory and runs back in one merge, path by path. A scanner requesting a
//! new file name per request (on a shop that answers everything with 200) then costs disk,
//! not memory.
//!
//! A path written out is a [`PathRecord`]: its state with the raw bytes of its evidence lines
//! in an arena of its own, so records combine with [`PathState::merge`] like states do, and
//! the findings are the same as if nothing had been written.

use std::sync::Arc;

use super::{
    Arena, Asset, EvKey, Fetch, Harvest, IpSet, Kept, LazyEvidence, PathKey, PathState, Remap,
    SizeStat,
};
use crate::codec::{self, Cursor, Files};

/// Paths one state holds before writing them out. About 1 KiB each with their lines (an
/// image loaded from checkout keeps up to twenty, written to the evidence spool past 1 MiB),
/// so some 8 MiB per state (more if every kept line reaches the 2 KiB evidence cap); a shop's
/// own assets (a few thousand images, scripts and styles) stay well below.
pub(crate) const PATH_CAP: usize = 8192;

/// A path as a run's key: two independent 64-bit hashes of its bytes, so that distinct paths
/// practically never share one, even chosen by an attacker.
pub(crate) type RecordKey = (u64, u64);

pub(crate) fn record_key(path: &[u8]) -> RecordKey {
    codec::key128(path)
}

/// One path's state on its own: its evidence lines' bytes and file names in `arena`.
pub(crate) struct PathRecord {
    pub(crate) key: RecordKey,
    pub(crate) path: Box<str>,
    pub(crate) arena: Arena,
    pub(crate) state: PathState,
}

impl PathRecord {
    /// Moves `state` (its lines in `from`) out into a record of its own.
    pub(crate) fn detach(path: &PathKey, mut state: PathState, from: &Arena) -> PathRecord {
        let mut arena = Arena::small();
        // Only the files this path's lines name are carried over.
        let mut files = vec![u32::MAX; from.files.len()];
        let mut map = |f: u32, arena: &mut Arena| {
            if files[f as usize] == u32::MAX {
                files[f as usize] = arena.file(&from.files[f as usize]);
            }
        };
        if let Some(a) = &state.asset {
            for k in &a.ev.items {
                map(k.key.2, &mut arena);
            }
            for b in [a.ev.bound, a.ev.worst_written].into_iter().flatten() {
                map(b.2, &mut arena);
            }
        }
        if let Some(h) = &state.harvest {
            for f in &h.fetches {
                map(f.file, &mut arena);
            }
        }
        let remap = Remap { from, files };
        if let Some(a) = &mut state.asset {
            a.ev.remap(&mut arena, &remap);
        }
        if let Some(h) = &mut state.harvest {
            h.remap(&mut arena, &remap);
        }
        PathRecord {
            key: record_key(path.bytes()),
            path: path.as_str().into(),
            arena,
            state,
        }
    }
}

impl ecir_spill::Record for PathRecord {
    type Key = RecordKey;
    type Reader = Files;

    fn key(&self) -> RecordKey {
        self.key
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let arena = &self.arena;
        codec::put_bytes(out, self.path.as_bytes());
        let st = &self.state;
        out.push(u8::from(st.asset.is_some()) | u8::from(st.harvest.is_some()) << 1);
        if let Some(a) = &st.asset {
            put_asset(out, a, arena);
        }
        if let Some(h) = &st.harvest {
            codec::put_u32(out, h.fetches.len() as u32);
            for f in &h.fetches {
                codec::put_ip(out, Some(f.ip));
                codec::put_ts(out, f.ts);
                codec::put_u64(out, f.bytes);
                codec::put_bytes(out, arena.files[f.file as usize].as_bytes());
                codec::put_u64(out, f.line);
                put_raw(out, f.raw.map(|r| arena.get(r)));
            }
            for n in [h.ips, h.with_raw, h.thin_at] {
                codec::put_u64(out, n as u64);
            }
            out.push(u8::from(h.popular));
        }
    }

    fn decode(bytes: &[u8], files: &mut Files) -> Option<PathRecord> {
        let mut c = Cursor(bytes);
        let mut arena = Arena::small();
        let path: Box<str> = c.str()?.into();
        let flags = c.u8()?;
        let mut state = PathState::default();
        if flags & 1 != 0 {
            state.asset = Some(asset(&mut c, &mut arena, files)?);
        }
        if flags & 2 != 0 {
            let mut h = Harvest::default();
            // Each fetch takes at least 5 + 1 + 8 + 4 + 8 + 1 bytes.
            for _ in 0..c.count(27)? {
                let ip = c.ip()??;
                let ts = c.ts()?;
                let bytes = c.u64()?;
                let file = file_index(&mut c, &mut arena, files)?;
                let line = c.u64()?;
                let raw = raw(&mut c)?.map(|r| arena.push(r));
                h.fetches.push(Fetch {
                    ip,
                    ts,
                    bytes,
                    file,
                    line,
                    raw,
                });
            }
            h.ips = usize::try_from(c.u64()?).ok()?;
            h.with_raw = usize::try_from(c.u64()?).ok()?;
            h.thin_at = usize::try_from(c.u64()?).ok()?;
            h.popular = c.u8()? != 0;
            // What the merge relies on: the lines counted are the lines held, at most
            // `MAX_EVIDENCE`; the clients counted are the distinct ones.
            let with_raw = h.fetches.iter().filter(|f| f.raw.is_some()).count();
            let mut ips: Vec<_> = h.fetches.iter().map(|f| f.ip).collect();
            ips.sort_unstable();
            ips.dedup();
            if h.with_raw != with_raw
                || with_raw > ecir_model::finding::MAX_EVIDENCE
                || h.ips != ips.len()
            {
                return None;
            }
            state.harvest = Some(h);
        }
        c.0.is_empty().then_some(PathRecord {
            key: record_key(path.as_bytes()),
            path,
            arena,
            state,
        })
    }

    fn combine(&mut self, other: PathRecord) {
        let files = other
            .arena
            .files
            .iter()
            .map(|f| self.arena.file(f))
            .collect();
        let remap = Remap {
            from: &other.arena,
            files,
        };
        self.state.merge(other.state, &mut self.arena, &remap);
    }
}

fn put_asset(out: &mut Vec<u8>, a: &Asset, arena: &Arena) {
    codec::put_u32(out, a.sizes.len() as u32);
    for (b, s) in &a.sizes {
        codec::put_u64(out, *b);
        codec::put_u32(out, s.n);
        codec::put_i64(out, s.first);
        codec::put_i64(out, s.last);
        codec::put_u32(out, s.ev.len() as u32);
        for e in &s.ev {
            codec::put_bytes(out, e.file.as_bytes());
            codec::put_u64(out, e.line);
            codec::put_ts(out, e.ts);
            codec::put_u32(out, e.weight);
            codec::put_bytes(out, e.text.as_bytes());
        }
    }
    out.push(u8::from(a.sizes_overflow));
    codec::put_span(out, &a.first);
    out.push(u8::from(a.ips.overflow));
    codec::put_u32(out, a.ips.v4.len() as u32);
    for x in &a.ips.v4 {
        codec::put_u32(out, *x);
    }
    codec::put_u32(out, a.ips.v6.len() as u32);
    for x in &a.ips.v6 {
        out.extend_from_slice(&x.to_le_bytes());
    }
    codec::put_u64(out, a.hits);
    codec::put_u64(out, a.checkout_refs);
    let ev = &a.ev;
    codec::put_u32(out, ev.items.len() as u32);
    for k in &ev.items {
        put_key(out, k.key, arena);
        codec::put_bytes(out, arena.get(k.raw));
    }
    for b in [ev.bound, ev.worst_written] {
        match b {
            Some(k) => {
                out.push(1);
                put_key(out, k, arena);
            }
            None => out.push(0),
        }
    }
    codec::put_u64(out, ev.written as u64);
}

fn asset(c: &mut Cursor<'_>, arena: &mut Arena, files: &mut Files) -> Option<Asset> {
    let mut a = Asset::default();
    // Each size takes at least 8 + 4 + 8 + 8 + 4 bytes.
    for _ in 0..c.count(32)? {
        let b = c.u64()?;
        let n = c.u32()?;
        let first = c.i64()?;
        let last = c.i64()?;
        let mut ev = Vec::new();
        for _ in 0..c.count(21)? {
            let file = codec::file_of(files, c.str()?);
            let line = c.u64()?;
            let ts = c.ts()?;
            let weight = c.u32()?;
            let text = c.str()?.to_string();
            ev.push(ecir_model::Evidence {
                file,
                line,
                ts,
                text,
                weight,
            });
        }
        a.sizes.insert(b, SizeStat { n, first, last, ev });
    }
    a.sizes_overflow = c.u8()? != 0;
    a.first = c.span()?;
    let mut ips = IpSet {
        overflow: c.u8()? != 0,
        ..IpSet::default()
    };
    for _ in 0..c.count(4)? {
        ips.v4.push(c.u32()?);
    }
    for _ in 0..c.count(16)? {
        ips.v6
            .push(u128::from_le_bytes(c.take(16)?.try_into().ok()?));
    }
    a.ips = ips;
    a.hits = c.u64()?;
    a.checkout_refs = c.u64()?;
    let mut ev = LazyEvidence::default();
    // Each line takes at least 4 + 1 + 4 + 8 + 4 bytes.
    for _ in 0..c.count(21)? {
        let key = key(c, arena, files)?;
        let raw = arena.push(c.bytes()?);
        ev.items.push(Kept { key, raw });
    }
    for slot in [&mut ev.bound, &mut ev.worst_written] {
        *slot = match c.u8()? {
            0 => None,
            _ => Some(key(c, arena, files)?),
        };
    }
    ev.written = usize::try_from(c.u64()?).ok()?;
    // At most `MAX_EVIDENCE` lines, best first (as `LazyEvidence` keeps them).
    if ev.items.len() > ecir_model::finding::MAX_EVIDENCE
        || ev
            .items
            .windows(2)
            .any(|w| arena.order(w[0].key, w[1].key) == std::cmp::Ordering::Greater)
    {
        return None;
    }
    a.ev = ev;
    Some(a)
}

fn put_key(out: &mut Vec<u8>, (weight, ts, file, line): EvKey, arena: &Arena) {
    codec::put_u32(out, weight);
    codec::put_ts(out, ts);
    codec::put_bytes(out, arena.files[file as usize].as_bytes());
    codec::put_u64(out, line);
}

fn key(c: &mut Cursor<'_>, arena: &mut Arena, files: &mut Files) -> Option<EvKey> {
    let weight = c.u32()?;
    let ts = c.ts()?;
    let file = file_index(c, arena, files)?;
    Some((weight, ts, file, c.u64()?))
}

/// A file name read back, as an index into `arena`'s files (shared with the merge's others).
fn file_index(c: &mut Cursor<'_>, arena: &mut Arena, files: &mut Files) -> Option<u32> {
    let f: Arc<str> = codec::file_of(files, c.str()?);
    Some(arena.file(&f))
}

fn put_raw(out: &mut Vec<u8>, raw: Option<&[u8]>) {
    match raw {
        Some(r) => {
            out.push(1);
            codec::put_bytes(out, r);
        }
        None => out.push(0),
    }
}

fn raw<'a>(c: &mut Cursor<'a>) -> Option<Option<&'a [u8]>> {
    Some(match c.u8()? {
        0 => None,
        _ => Some(c.bytes()?),
    })
}
