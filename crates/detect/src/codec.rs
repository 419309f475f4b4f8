//! Bytes of detector state spilled to disk (see [`ecir_spill`]): the pieces several detectors
//! spill (addresses, times, texts, evidence lines, bounded samples), written by one detector
//! state and read back by the merge at the end of the same run. The format is private to one
//! run of ecir and never kept: no version, no compatibility.
//!
//! Decoding never panics: damaged bytes give `None`, which the spill merge reports as a
//! damaged run.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ecir_model::{Evidence, Timestamp};

use crate::evidence::{EarliestDistinct, SeenAt, SmallestSet, Span, TopEvidence};

/// A spilled table's key for a name an attacker may choose (a path, a host): two independent
/// 64-bit hashes of its bytes, so that distinct names practically never share one.
pub fn key128(bytes: &[u8]) -> (u64, u64) {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let h = BuildHasherDefault::<DefaultHasher>::default();
    (h.hash_one((0u8, bytes)), h.hash_one((1u8, bytes)))
}

/// File names read back by one merge, shared like the originals (`Arc<str>`).
pub type Files = Vec<Arc<str>>;

pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len() as u32);
    out.extend_from_slice(b);
}

pub fn put_ts(out: &mut Vec<u8>, ts: Option<Timestamp>) {
    match ts {
        Some(t) => {
            out.push(1);
            put_i64(out, t.utc_ms);
            out.extend_from_slice(&t.offset_secs.to_le_bytes());
        }
        None => out.push(0),
    }
}

pub fn put_ip(out: &mut Vec<u8>, ip: Option<IpAddr>) {
    match ip {
        None => out.push(0),
        Some(IpAddr::V4(a)) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
}

pub fn put_span(out: &mut Vec<u8>, s: &Span) {
    put_ts(out, s.first);
    put_ts(out, s.last);
}

pub fn put_evidence(out: &mut Vec<u8>, ev: &TopEvidence) {
    put_u32(out, ev.len() as u32);
    for e in ev.iter() {
        put_bytes(out, e.file.as_bytes());
        put_u64(out, e.line);
        put_ts(out, e.ts);
        put_u32(out, e.weight);
        put_bytes(out, e.text.as_bytes());
    }
}

pub fn put_texts(out: &mut Vec<u8>, s: &SmallestSet<String>) {
    out.push(u8::from(s.overflowed()));
    put_u32(out, s.items().len() as u32);
    for t in s.items() {
        put_bytes(out, t.as_bytes());
    }
}

/// A [`SmallestSet`] of addresses.
pub fn put_ip_set(out: &mut Vec<u8>, s: &SmallestSet<IpAddr>) {
    out.push(u8::from(s.overflowed()));
    put_u32(out, s.items().len() as u32);
    for &ip in s.items() {
        put_ip(out, Some(ip));
    }
}

/// A [`SmallestSet`] of numbers.
pub fn put_u64_set(out: &mut Vec<u8>, s: &SmallestSet<u64>) {
    out.push(u8::from(s.overflowed()));
    put_u32(out, s.items().len() as u32);
    for &v in s.items() {
        put_u64(out, v);
    }
}

pub fn put_earliest(out: &mut Vec<u8>, s: &EarliestDistinct) {
    put_u32(out, s.items().len() as u32);
    for (at, t) in s.items() {
        put_bytes(out, at.file.as_bytes());
        put_u64(out, at.line);
        put_ts(out, at.ts);
        put_bytes(out, t.as_bytes());
    }
}

/// Reads what the `put_*` functions wrote, front to back.
pub struct Cursor<'a>(pub &'a [u8]);

impl<'a> Cursor<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    pub fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    pub fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    pub fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A count of items that each take at least `min_bytes`: `None` when the bytes left
    /// cannot hold them (so a damaged count never reserves without bound).
    pub fn count(&mut self, min_bytes: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.saturating_mul(min_bytes.max(1)) <= self.0.len()).then_some(n)
    }

    /// A time written by [`put_ts`]: `Some(None)` for none, `None` for damaged bytes.
    pub fn ts(&mut self) -> Option<Option<Timestamp>> {
        Some(match self.u8()? {
            0 => None,
            _ => Some(Timestamp::new(self.i64()?, self.i32()?)),
        })
    }

    /// Bytes written by [`put_bytes`].
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    pub fn str(&mut self) -> Option<&'a str> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }

    /// An address written by [`put_ip`]: `Some(None)` for none.
    pub fn ip(&mut self) -> Option<Option<IpAddr>> {
        Some(match self.u8()? {
            0 => None,
            4 => Some(IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(self.take(4)?).ok()?,
            ))),
            6 => Some(IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(self.take(16)?).ok()?,
            ))),
            _ => return None,
        })
    }

    pub fn span(&mut self) -> Option<Span> {
        Some(Span {
            first: self.ts()?,
            last: self.ts()?,
        })
    }

    pub fn evidence(&mut self, files: &mut Files) -> Option<TopEvidence> {
        let mut ev = TopEvidence::default();
        for _ in 0..self.count(18)? {
            let file = file_of(files, self.str()?);
            let line = self.u64()?;
            let ts = self.ts()?;
            let weight = self.u32()?;
            let text = self.str()?.to_string();
            ev.push(Evidence {
                file,
                line,
                ts,
                text,
                weight,
            });
        }
        Some(ev)
    }

    /// A [`SmallestSet`] of texts written by [`put_texts`], keeping up to `cap`.
    pub fn texts(&mut self, cap: usize) -> Option<SmallestSet<String>> {
        let overflow = self.u8()? != 0;
        let mut s = SmallestSet::new(cap);
        for _ in 0..self.count(4)? {
            s.insert(self.str()?.to_string());
        }
        s.mark_overflow(overflow);
        Some(s)
    }

    /// A [`SmallestSet`] of addresses written by [`put_ip_set`], keeping up to `cap`.
    pub fn ip_set(&mut self, cap: usize) -> Option<SmallestSet<IpAddr>> {
        let overflow = self.u8()? != 0;
        let mut s = SmallestSet::new(cap);
        for _ in 0..self.count(5)? {
            s.insert(self.ip()??);
        }
        s.mark_overflow(overflow);
        Some(s)
    }

    /// A [`SmallestSet`] of numbers written by [`put_u64_set`], keeping up to `cap`.
    pub fn u64_set(&mut self, cap: usize) -> Option<SmallestSet<u64>> {
        let overflow = self.u8()? != 0;
        let mut s = SmallestSet::new(cap);
        for _ in 0..self.count(8)? {
            s.insert(self.u64()?);
        }
        s.mark_overflow(overflow);
        Some(s)
    }

    /// An [`EarliestDistinct`] written by [`put_earliest`], keeping up to `cap`.
    pub fn earliest(&mut self, files: &mut Files, cap: usize) -> Option<EarliestDistinct> {
        let mut s = EarliestDistinct::new(cap);
        for _ in 0..self.count(17)? {
            let file = file_of(files, self.str()?);
            let line = self.u64()?;
            let ts = self.ts()?;
            s.insert(SeenAt { ts, file, line }, self.str()?.to_string());
        }
        Some(s)
    }
}

/// A file name read back, shared with the earlier ones of the same merge.
pub(crate) fn file_of(files: &mut Files, name: &str) -> Arc<str> {
    match files.iter().find(|f| &***f == name) {
        Some(f) => Arc::clone(f),
        None => {
            let f: Arc<str> = Arc::from(name);
            files.push(Arc::clone(&f));
            f
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Origin;

    #[test]
    fn state_pieces_read_back_as_written() {
        let file: Arc<str> = Arc::from("logs/access.log");
        let mut ev = TopEvidence::default();
        let mut early = EarliestDistinct::new(3);
        let mut texts = SmallestSet::new(2);
        let mut span = Span::default();
        for i in 0..30u64 {
            let raw = format!("line {i} \u{1b}[31m");
            let o = Origin {
                file: &file,
                line: i + 1,
                raw: raw.as_bytes(),
            };
            let ts = Some(Timestamp::new(1_700_000_000_000 + i as i64 * 997, 9 * 3600));
            ev.offer(&o, ts, (i % 7) as u32);
            early.offer(&o, ts, || format!("/p{}", i % 5));
            texts.insert(format!("/t{}", i % 4));
            span.add(ts);
        }
        let mut out = Vec::new();
        put_ip(&mut out, Some("2001:db8::1".parse().unwrap()));
        put_ip(&mut out, None);
        put_span(&mut out, &span);
        put_evidence(&mut out, &ev);
        put_earliest(&mut out, &early);
        put_texts(&mut out, &texts);
        let mut ips = SmallestSet::new(2);
        let mut nums = SmallestSet::new(3);
        for ip in ["2001:db8::2", "192.0.2.9", "192.0.2.1"] {
            ips.insert(ip.parse::<IpAddr>().unwrap());
        }
        for v in [7u64, u64::MAX, 0] {
            nums.insert(v);
        }
        put_ip_set(&mut out, &ips);
        put_u64_set(&mut out, &nums);

        let mut files = Files::new();
        let mut c = Cursor(&out);
        assert_eq!(c.ip(), Some(Some("2001:db8::1".parse().unwrap())));
        assert_eq!(c.ip(), Some(None));
        assert_eq!(c.span(), Some(span));
        assert_eq!(c.evidence(&mut files).unwrap().into_vec(), ev.into_vec());
        assert_eq!(
            c.earliest(&mut files, 3).unwrap().into_texts(),
            early.into_texts()
        );
        let back = c.texts(2).unwrap();
        assert_eq!(back.items(), texts.items());
        assert!(back.overflowed());
        let back = c.ip_set(2).unwrap();
        assert_eq!(back.items(), ips.items());
        assert!(back.overflowed());
        let back = c.u64_set(3).unwrap();
        assert_eq!(back.items(), &[0, 7, u64::MAX]);
        assert!(!back.overflowed());
        assert!(c.0.is_empty());
        assert_eq!(files.len(), 1, "one file name, shared");

        // Every truncation is refused, none panics.
        for n in 0..out.len() {
            let mut c = Cursor(&out[..n]);
            let whole = (|| {
                c.ip()?;
                c.ip()?;
                c.span()?;
                c.evidence(&mut files)?;
                c.earliest(&mut files, 3)?;
                c.texts(2)?;
                c.ip_set(2)?;
                c.u64_set(3)
            })();
            assert!(whole.is_none(), "truncated at {n}");
        }
    }
}
