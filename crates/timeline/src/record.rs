//! One timeline row, owned, and its compact binary encoding for spilled sorted runs.

use std::io::{self, Read, Write};

use ecir_model::{Event, EventDetail, LoginOutcome, SourceKind, Timestamp, WafAction};

/// An event on the timeline. Absent text fields are empty strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub ts: Timestamp,
    /// Index of the input file in the run's file list (sorted by path).
    pub file: u32,
    /// 1-based line number.
    pub line: u64,
    pub source: SourceKind,
    pub client_ip: String,
    pub user: String,
    pub method: String,
    /// Request target as written (path and query).
    pub target: String,
    pub status: Option<u16>,
    pub bytes: Option<u64>,
    pub user_agent: String,
    pub rule_ids: Vec<String>,
    pub action: String,
    /// The line as read (invalid UTF-8 replaced).
    pub raw: String,
}

impl Record {
    /// The merge order: instant, then file, then line — a total order over a run's events.
    pub fn key(&self) -> (i64, u32, u64) {
        (self.ts.utc_ms, self.file, self.line)
    }

    /// Builds a record from a parsed event; `None` for an event without a timestamp.
    pub fn from_event(ev: &Event<'_>, file: u32, line: u64, raw: &[u8]) -> Option<Record> {
        let ts = ev.ts?;
        let s = |c: &Option<std::borrow::Cow<'_, str>>| c.as_deref().unwrap_or("").to_string();
        let mut user = s(&ev.user);
        let mut rule_ids = Vec::new();
        let mut action = String::new();
        let outcome = |o: &LoginOutcome| match o {
            LoginOutcome::Success => "success",
            LoginOutcome::Failure => "failure",
            LoginOutcome::Unknown => "unknown",
        };
        match &ev.detail {
            EventDetail::Web => {}
            EventDetail::Login {
                user: u,
                outcome: o,
            } => {
                if let Some(u) = u {
                    user = u.to_string();
                }
                action = format!("login-{}", outcome(o));
            }
            EventDetail::Waf {
                rule_ids: r,
                action: a,
                ..
            } => {
                rule_ids = r.iter().map(|x| x.to_string()).collect();
                action = match a {
                    WafAction::Blocked => "blocked",
                    WafAction::LoggedOnly => "logged-only",
                    WafAction::Allowed => "allowed",
                    WafAction::Unknown => "unknown",
                }
                .to_string();
            }
            EventDetail::Auth {
                user: u,
                action: a,
                outcome: o,
                ..
            } => {
                if let Some(u) = u {
                    user = u.to_string();
                }
                action = format!("{a}-{}", outcome(o));
            }
            EventDetail::App { level, .. } => action = level.to_string(),
        }
        Some(Record {
            ts,
            file,
            line,
            source: ev.source.unwrap_or(SourceKind::Unknown),
            client_ip: ev.client_ip.map(|i| i.to_string()).unwrap_or_default(),
            user,
            method: s(&ev.method),
            target: s(&ev.target),
            status: ev.status,
            bytes: ev.bytes,
            user_agent: s(&ev.user_agent),
            rule_ids,
            action,
            raw: String::from_utf8_lossy(raw).into_owned(),
        })
    }

    /// The path part of the target.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query part of the target, or `""`.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// Approximate heap and inline size, for bounding in-memory chunks.
    pub fn weight(&self) -> usize {
        128 + self.client_ip.len()
            + self.user.len()
            + self.method.len()
            + self.target.len()
            + self.user_agent.len()
            + self.action.len()
            + self.raw.len()
            + self.rule_ids.iter().map(|r| r.len() + 24).sum::<usize>()
    }

    pub fn encode(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.ts.utc_ms.to_le_bytes())?;
        w.write_all(&self.ts.offset_secs.to_le_bytes())?;
        w.write_all(&self.file.to_le_bytes())?;
        w.write_all(&self.line.to_le_bytes())?;
        w.write_all(&[source_code(self.source)])?;
        let flags = u8::from(self.status.is_some()) | (u8::from(self.bytes.is_some()) << 1);
        w.write_all(&[flags])?;
        w.write_all(&self.status.unwrap_or(0).to_le_bytes())?;
        w.write_all(&self.bytes.unwrap_or(0).to_le_bytes())?;
        for s in [
            &self.client_ip,
            &self.user,
            &self.method,
            &self.target,
            &self.user_agent,
            &self.action,
            &self.raw,
        ] {
            put_str(w, s)?;
        }
        w.write_all(&(self.rule_ids.len() as u32).to_le_bytes())?;
        for r in &self.rule_ids {
            put_str(w, r)?;
        }
        Ok(())
    }

    /// Reads the next record; `Ok(None)` at a clean end of the run.
    pub fn decode(r: &mut impl Read) -> io::Result<Option<Record>> {
        let mut first = [0u8; 8];
        match r.read_exact(&mut first) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let utc_ms = i64::from_le_bytes(first);
        let offset = i32::from_le_bytes(get(r)?);
        let file = u32::from_le_bytes(get(r)?);
        let line = u64::from_le_bytes(get(r)?);
        let [source, flags] = get::<2>(r)?;
        let status = u16::from_le_bytes(get(r)?);
        let bytes = u64::from_le_bytes(get(r)?);
        let mut strs: [String; 7] = Default::default();
        for s in &mut strs {
            *s = get_str(r)?;
        }
        let n = u32::from_le_bytes(get(r)?) as usize;
        let mut rule_ids = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            rule_ids.push(get_str(r)?);
        }
        let [client_ip, user, method, target, user_agent, action, raw] = strs;
        Ok(Some(Record {
            ts: Timestamp::new(utc_ms, offset),
            file,
            line,
            source: source_kind(source),
            client_ip,
            user,
            method,
            target,
            status: (flags & 1 != 0).then_some(status),
            bytes: (flags & 2 != 0).then_some(bytes),
            user_agent,
            rule_ids,
            action,
            raw,
        }))
    }
}

fn put_str(w: &mut impl Write, s: &str) -> io::Result<()> {
    w.write_all(&(s.len() as u32).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

fn get<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    r.read_exact(&mut b)?;
    Ok(b)
}

/// Longest string a run may hold; runs are written by this process, so a larger length means
/// a damaged temporary file, not a reason to allocate.
const MAX_STR: usize = 1 << 20;

fn get_str(r: &mut impl Read) -> io::Result<String> {
    let n = u32::from_le_bytes(get(r)?) as usize;
    if n > MAX_STR {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "damaged run file",
        ));
    }
    let mut b = vec![0u8; n];
    r.read_exact(&mut b)?;
    String::from_utf8(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "damaged run file"))
}

const KINDS: [SourceKind; 6] = [
    SourceKind::Web,
    SourceKind::AdminLogin,
    SourceKind::App,
    SourceKind::Waf,
    SourceKind::Auth,
    SourceKind::Unknown,
];

fn source_code(k: SourceKind) -> u8 {
    KINDS.iter().position(|x| *x == k).unwrap_or(5) as u8
}

fn source_kind(c: u8) -> SourceKind {
    KINDS
        .get(c as usize)
        .copied()
        .unwrap_or(SourceKind::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        let r = Record {
            ts: Timestamp::new(1_700_000_000_123, 9 * 3600),
            file: 3,
            line: 77,
            source: SourceKind::Waf,
            client_ip: "2001:db8::1".into(),
            user: "管理者".into(),
            method: "POST".into(),
            target: "/a?b=c".into(),
            status: Some(403),
            bytes: None,
            user_agent: "ua".into(),
            rule_ids: vec!["942100".into(), "949110".into()],
            action: "blocked".into(),
            raw: "raw line".into(),
        };
        let mut buf = Vec::new();
        r.encode(&mut buf).unwrap();
        r.encode(&mut buf).unwrap();
        let mut rd = &buf[..];
        assert_eq!(Record::decode(&mut rd).unwrap(), Some(r.clone()));
        assert_eq!(Record::decode(&mut rd).unwrap(), Some(r));
        assert_eq!(Record::decode(&mut rd).unwrap(), None);
    }
}
