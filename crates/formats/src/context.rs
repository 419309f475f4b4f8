//! What parsers need to know beyond the line: the zone for times written without one, which
//! proxies to see through, and the year for formats that omit it.

use std::cell::Cell;
use std::net::IpAddr;

use chrono::{LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;
use ecir_model::{Cidr, Timestamp};

/// Settings shared by every parser of a run.
#[derive(Clone, Debug)]
pub struct ParseContext {
    /// Zone for timestamps written without an offset (`--tz`).
    pub tz: Tz,
    /// Proxies whose `X-Forwarded-For` is believed (`--trust-proxy`).
    pub trust_proxy: Vec<Cidr>,
    /// Year for formats that omit it (syslog), when the user gives one.
    pub year: Option<i32>,
    /// Modification time of the file being parsed, set per file by the scan (syslog year).
    pub file_mtime: Option<Timestamp>,
}

impl Default for ParseContext {
    fn default() -> Self {
        ParseContext {
            tz: Tz::UTC,
            trust_proxy: Vec::new(),
            year: None,
            file_mtime: None,
        }
    }
}

thread_local! {
    /// Last (local hour start, offset) resolved, so a file of local times asks the zone
    /// database about once an hour of log, not once a line.
    static HOUR_CACHE: Cell<(i64, i32, Tz)> = const { Cell::new((i64::MIN, 0, Tz::UTC)) };
}

impl ParseContext {
    /// These settings with `file_mtime` set to `path`'s modification time (none when it
    /// cannot be read): what a parser of that file needs to infer a syslog year.
    pub fn for_file(&self, path: &std::path::Path) -> ParseContext {
        let mut c = self.clone();
        c.file_mtime = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| Timestamp::new(d.as_millis() as i64, 0));
        c
    }

    /// Resolves a wall-clock time in `--tz` to an instant. In a DST fold the earlier instant
    /// is taken; a time in a DST gap is moved forward by the gap.
    pub fn local_to_timestamp(&self, naive: NaiveDateTime, millis: u32) -> Option<Timestamp> {
        let local_secs = naive.and_utc().timestamp();
        let hour = local_secs.div_euclid(3600);
        let (h, off, tz) = HOUR_CACHE.with(|c| c.get());
        if h == hour && tz == self.tz {
            return Some(Timestamp::new(
                (local_secs - i64::from(off)) * 1000 + i64::from(millis),
                off,
            ));
        }
        let off = match self.tz.from_local_datetime(&naive) {
            LocalResult::Single(dt) => dt.offset().fix().local_minus_utc(),
            LocalResult::Ambiguous(a, _) => a.offset().fix().local_minus_utc(),
            LocalResult::None => {
                let later = naive + chrono::Duration::hours(1);
                match self.tz.from_local_datetime(&later) {
                    LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => {
                        dt.offset().fix().local_minus_utc()
                    }
                    LocalResult::None => return None,
                }
            }
        };
        // Only cache hours that are unambiguous throughout (not the DST transition hours).
        let next = naive + chrono::Duration::minutes(59);
        if matches!(self.tz.from_local_datetime(&next), LocalResult::Single(dt) if dt.offset().fix().local_minus_utc() == off)
        {
            HOUR_CACHE.with(|c| c.set((hour, off, self.tz)));
        }
        Some(Timestamp::new(
            (local_secs - i64::from(off)) * 1000 + i64::from(millis),
            off,
        ))
    }

    /// Convenience for parsers holding broken-down local time.
    #[allow(clippy::too_many_arguments)]
    pub fn local_parts(
        &self,
        y: i32,
        mo: u32,
        d: u32,
        h: u32,
        mi: u32,
        s: u32,
        millis: u32,
    ) -> Option<Timestamp> {
        let naive = NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_opt(h, mi, s)?;
        self.local_to_timestamp(naive, millis)
    }

    /// The client of a request: the connecting address, or, when that is a trusted proxy and
    /// the format logged `X-Forwarded-For`, the nearest address in the chain (walking from the
    /// right) that is not a trusted proxy. Returns `None` when the field is not an address
    /// (a host name, `unix:`, `-`).
    pub fn client_ip(&self, remote: &str, xff: Option<&str>) -> Option<IpAddr> {
        self.client_ip_of(parse_ip(remote), xff)
    }

    /// [`Self::client_ip`], reading the remote address through `cache`.
    pub fn client_ip_cached(
        &self,
        remote: &str,
        xff: Option<&str>,
        cache: &mut IpCache,
    ) -> Option<IpAddr> {
        self.client_ip_of(cache.parse(remote), xff)
    }

    fn client_ip_of(&self, remote_ip: Option<IpAddr>, xff: Option<&str>) -> Option<IpAddr> {
        if self.trust_proxy.is_empty() {
            return remote_ip;
        }
        let trusted = |ip: &IpAddr| self.trust_proxy.iter().any(|c| c.contains(ip));
        match remote_ip {
            Some(r) if trusted(&r) => {
                let mut last_trusted = r;
                if let Some(chain) = xff {
                    for part in chain.rsplit(',') {
                        match parse_ip(part.trim()) {
                            Some(ip) if trusted(&ip) => last_trusted = ip,
                            Some(ip) => return Some(ip),
                            None => break,
                        }
                    }
                }
                Some(last_trusted)
            }
            other => other,
        }
    }
}

/// Parses an IP address, accepting `[v6]` and `v4:port` forms.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Some(v4) = parse_ipv4_fast(s.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    // An IPv4 client seen through an IPv6 socket (`::ffff:203.0.113.5`) is that IPv4
    // client; a link-local address keeps its address without the zone (`fe80::1%eth0`).
    let v6 = |t: &str| {
        let t = t.split_once('%').map_or(t, |(a, _)| a);
        t.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
    };
    if let Some(ip) = v6(s) {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        return v6(&rest[..end]);
    }
    if let Some((a, port)) = s.rsplit_once(':') {
        if !a.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) {
            return a.parse().ok();
        }
    }
    None
}

/// Address texts remembered by [`IpCache`] (a power of two).
const IP_CACHE_SLOTS: usize = 256;
/// Longest address text the cache keeps (an IPv6 address with a zone fits).
const IP_CACHE_KEY: usize = 47;

/// A small direct-mapped memo of [`parse_ip`]: a client sends many requests, and IPv6 text
/// costs a few thousand instructions to read. A pure memo: results never depend on it.
#[derive(Default)]
pub struct IpCache {
    slots: Vec<([u8; IP_CACHE_KEY], u8, Option<IpAddr>)>,
}

impl IpCache {
    pub fn parse(&mut self, s: &str) -> Option<IpAddr> {
        let b = s.as_bytes();
        if b.len() > IP_CACHE_KEY {
            return parse_ip(s);
        }
        if self.slots.is_empty() {
            self.slots = vec![([0; IP_CACHE_KEY], u8::MAX, None); IP_CACHE_SLOTS];
        }
        let mut h = rustc_hash::FxHasher::default();
        std::hash::Hasher::write(&mut h, b);
        let mixed = std::hash::Hasher::finish(&h).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let slot = &mut self.slots[(mixed >> (64 - IP_CACHE_SLOTS.trailing_zeros())) as usize];
        if usize::from(slot.1) == b.len() && same_prefix(&slot.0, b) {
            return slot.2;
        }
        let ip = parse_ip(s);
        slot.0[..b.len()].copy_from_slice(b);
        slot.1 = b.len() as u8;
        slot.2 = ip;
        ip
    }
}

/// Whether `key` starts with `b` (`b.len() <= IP_CACHE_KEY`), compared inline as two
/// overlapping words that together cover `b` (no library call for these short texts).
#[inline]
fn same_prefix(key: &[u8; IP_CACHE_KEY], b: &[u8]) -> bool {
    let n = b.len();
    macro_rules! windows {
        ($t:ty, $w:expr) => {{
            let r = |s: &[u8], at: usize| <$t>::from_le_bytes(s[at..at + $w].try_into().unwrap());
            r(key, 0) == r(b, 0) && r(key, n - $w) == r(b, n - $w)
        }};
    }
    match n {
        0..=3 => key[..n] == *b,
        4..=8 => windows!(u32, 4),
        9..=16 => windows!(u64, 8),
        17..=32 => windows!(u128, 16),
        _ => key[..n] == *b,
    }
}

/// A dotted quad as the standard parser reads it (four decimal octets up to 255, no leading
/// zeros), in one pass; `None` sends anything else (IPv6, ports, brackets) to the full parser.
fn parse_ipv4_fast(b: &[u8]) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut n = 0;
    let mut val: u32 = 0;
    let mut digits = 0;
    for &c in b {
        match c {
            b'0'..=b'9' => {
                if digits > 0 && val == 0 {
                    return None; // a leading zero
                }
                val = val * 10 + u32::from(c - b'0');
                digits += 1;
                if val > 255 {
                    return None;
                }
            }
            b'.' if digits > 0 && n < 3 => {
                octets[n] = val as u8;
                n += 1;
                val = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    if n != 3 || digits == 0 {
        return None;
    }
    octets[3] = val as u8;
    Some(std::net::Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_prefix_is_exact() {
        for n in 0..=IP_CACHE_KEY {
            let b: Vec<u8> = (0..n as u8).map(|i| b'0' + i % 10).collect();
            let mut key = [0u8; IP_CACHE_KEY];
            key[..n].copy_from_slice(&b);
            assert!(same_prefix(&key, &b), "{n}");
            for at in 0..n {
                let mut k = key;
                k[at] ^= 1;
                assert!(!same_prefix(&k, &b), "{n} {at}");
            }
        }
    }

    #[test]
    fn mapped_and_zoned_addresses_name_their_client() {
        let v4: IpAddr = "203.0.113.5".parse().unwrap();
        assert_eq!(parse_ip("::ffff:203.0.113.5"), Some(v4));
        assert_eq!(parse_ip("[::ffff:203.0.113.5]:443"), Some(v4));
        let ll: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(parse_ip("fe80::1%eth0"), Some(ll));
        assert_eq!(parse_ip("[fe80::1%25eth0]:80"), Some(ll));
        assert_eq!(parse_ip("2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(parse_ip("%eth0"), None);
    }

    #[test]
    fn ip_cache_agrees_with_parse_ip() {
        let mut c = IpCache::default();
        for _ in 0..2 {
            for s in [
                "1.2.3.4",
                "2001:db8::1",
                "[::1]",
                "10.0.0.1:8080",
                "nope",
                "",
                "1.2.3.4",
            ] {
                assert_eq!(c.parse(s), parse_ip(s), "{s}");
            }
        }
    }

    #[test]
    fn fast_ipv4_agrees_with_the_standard_parser() {
        for s in [
            "1.2.3.4",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "1.2.3.04",
            "10.0.0.10",
            "1.2.3.4:80",
            "::1",
            "",
            "1234.1.1.1",
            "0.00.0.0",
        ] {
            let std_v4 = s.parse::<std::net::Ipv4Addr>().ok();
            assert_eq!(parse_ipv4_fast(s.as_bytes()), std_v4, "{s}");
        }
    }

    #[test]
    fn trust_proxy_walks_from_the_right() {
        let ctx = ParseContext {
            trust_proxy: vec!["10.0.0.0/8".parse().unwrap()],
            ..Default::default()
        };
        let ip = ctx.client_ip("10.0.0.5", Some("198.51.100.7, 203.0.113.9, 10.0.0.9"));
        assert_eq!(ip, Some("203.0.113.9".parse().unwrap()));
        // An untrusted peer is the client, whatever it claims.
        let ip = ctx.client_ip("203.0.113.50", Some("1.2.3.4"));
        assert_eq!(ip, Some("203.0.113.50".parse().unwrap()));
        // No trust configured: the connecting address.
        let plain = ParseContext::default();
        assert_eq!(
            plain.client_ip("10.0.0.5", Some("1.2.3.4")),
            Some("10.0.0.5".parse().unwrap())
        );
        assert_eq!(plain.client_ip("unix:", None), None);
    }

    #[test]
    fn local_time_in_zone_and_dst() {
        let ctx = ParseContext {
            tz: "Asia/Tokyo".parse().unwrap(),
            ..Default::default()
        };
        let t = ctx.local_parts(2026, 11, 3, 2, 52, 40, 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-03T02:52:40+09:00");
        let ny = ParseContext {
            tz: "America/New_York".parse().unwrap(),
            ..Default::default()
        };
        // Fold: 01:30 happens twice on 2026-11-01; the earlier (EDT) is taken.
        let t = ny.local_parts(2026, 11, 1, 1, 30, 0, 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-01T01:30:00-04:00");
        // Gap: 02:30 does not exist on 2026-03-08.
        assert!(ny.local_parts(2026, 3, 8, 2, 30, 0, 0).is_some());
        // Cache does not leak between zones.
        let t = ctx.local_parts(2026, 11, 1, 1, 30, 0, 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-01T01:30:00+09:00");
    }
}
