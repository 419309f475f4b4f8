//! The web requests the WAF detector may match with WAF records (those with a query, a POST,
//! an encoded or `..` path), past a cap: a state holding [`REQUEST_CAP`] writes them as a
//! run sorted by (client, path, time, line) through [`ecir_spill`], and finish keeps, of
//! memory and runs, only the requests on a (client, path) some WAF record names. Every
//! request is then matched, however long the access log, and memory stays bounded; before,
//! the earliest 200,000 were kept and later WAF records found no access line.

use std::net::IpAddr;

use ecir_model::{Timestamp, WafClass};

use super::{WebHit, WebKind};
use crate::codec::{self, Cursor, Files};

/// Requests one state holds before writing them out: about 0.4 KiB each with their line
/// (600 bytes of text at most), so some 6 MiB per state.
pub(crate) const REQUEST_CAP: usize = 16_384;

/// Client, path hash, time, file-name hash, line: one request's place, unique per line.
pub(crate) type RequestKey = (Option<IpAddr>, u64, i64, u64, u64);

/// A request written out (its kind is always [`WebKind::Request`]).
pub(crate) struct RequestRecord(pub(crate) WebHit);

pub(crate) fn key_of(w: &WebHit) -> RequestKey {
    use std::hash::BuildHasher;
    let file = rustc_hash::FxBuildHasher.hash_one(&*w.ev.file);
    (w.ip, w.path_hash, w.ts.utc_ms, file, w.ev.line)
}

/// Attack classes by code (0 for none, else index + 1).
const CLASSES: [WafClass; 16] = [
    WafClass::Sqli,
    WafClass::Xss,
    WafClass::Lfi,
    WafClass::Rfi,
    WafClass::Rce,
    WafClass::Php,
    WafClass::Java,
    WafClass::Ssrf,
    WafClass::Scanner,
    WafClass::Protocol,
    WafClass::Session,
    WafClass::Leakage,
    WafClass::Bot,
    WafClass::RateLimit,
    WafClass::AccessControl,
    WafClass::Generic,
];

/// The code of a class in [`CLASSES`] (an exhaustive match: a new class must be added).
fn class_code(c: Option<WafClass>) -> u8 {
    match c {
        None => 0,
        Some(c) => {
            1 + match c {
                WafClass::Sqli => 0,
                WafClass::Xss => 1,
                WafClass::Lfi => 2,
                WafClass::Rfi => 3,
                WafClass::Rce => 4,
                WafClass::Php => 5,
                WafClass::Java => 6,
                WafClass::Ssrf => 7,
                WafClass::Scanner => 8,
                WafClass::Protocol => 9,
                WafClass::Session => 10,
                WafClass::Leakage => 11,
                WafClass::Bot => 12,
                WafClass::RateLimit => 13,
                WafClass::AccessControl => 14,
                WafClass::Generic => 15,
            }
        }
    }
}

impl ecir_spill::Record for RequestRecord {
    type Key = RequestKey;
    type Reader = Files;

    fn key(&self) -> RequestKey {
        key_of(&self.0)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let w = &self.0;
        codec::put_ts(out, Some(w.ts));
        codec::put_ip(out, w.ip);
        codec::put_u64(out, w.path_hash);
        codec::put_u32(out, u32::from(w.status));
        out.push(class_code(w.class));
        // A request's line carries its own time and no weight (`kept_evidence`): rebuilt.
        debug_assert!(w.ev.ts == Some(w.ts) && w.ev.weight == 0);
        codec::put_bytes(out, w.ev.file.as_bytes());
        codec::put_u64(out, w.ev.line);
        codec::put_bytes(out, w.ev.text.as_bytes());
    }

    fn decode(b: &[u8], files: &mut Files) -> Option<RequestRecord> {
        let mut c = Cursor(b);
        let ts: Timestamp = c.ts()??;
        let ip = c.ip()?;
        let path_hash = c.u64()?;
        let status = u16::try_from(c.u32()?).ok()?;
        let class = match c.u8()? {
            0 => None,
            n => Some(*CLASSES.get(usize::from(n) - 1)?),
        };
        let file = codec::file_of(files, c.str()?);
        let line = c.u64()?;
        let text = c.str()?.to_string();
        c.0.is_empty().then_some(RequestRecord(WebHit {
            ts,
            ip,
            path_hash,
            status,
            class,
            kind: WebKind::Request,
            ev: ecir_model::Evidence {
                file,
                line,
                ts: Some(ts),
                text,
                weight: 0,
            },
        }))
    }

    /// The same line (the key is its place): nothing to add.
    fn combine(&mut self, _other: RequestRecord) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecir_spill::Record;
    use std::sync::Arc;

    #[test]
    fn classes_have_their_codes() {
        assert_eq!(class_code(None), 0);
        for (i, c) in CLASSES.iter().enumerate() {
            assert_eq!(usize::from(class_code(Some(*c))), i + 1, "{c:?}");
        }
    }

    #[test]
    fn a_request_reads_back_as_written() {
        let w = WebHit {
            ts: Timestamp::new(1_700_000_000_123, 9 * 3600),
            ip: "2001:db8::5".parse().ok(),
            path_hash: 77,
            status: 404,
            class: Some(WafClass::AccessControl),
            kind: WebKind::Request,
            ev: ecir_model::Evidence {
                file: Arc::from("logs/access_log"),
                line: 12,
                ts: Some(Timestamp::new(1_700_000_000_123, 9 * 3600)),
                text: "GET /x?id=1 \\x1b".into(),
                weight: 0,
            },
        };
        let mut out = Vec::new();
        RequestRecord(w.clone()).encode(&mut out);
        let mut files = Files::new();
        let back = RequestRecord::decode(&out, &mut files).unwrap().0;
        assert_eq!(key_of(&back), key_of(&w));
        assert_eq!(
            (
                back.status,
                back.class,
                back.kind,
                &back.ev.text,
                back.ev.ts
            ),
            (w.status, w.class, w.kind, &w.ev.text, w.ev.ts)
        );
        for n in 0..out.len() {
            assert!(
                RequestRecord::decode(&out[..n], &mut files).is_none(),
                "{n}"
            );
        }
    }
}
