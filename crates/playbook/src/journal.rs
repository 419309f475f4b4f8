//! The case journal: an append-only, hash-chained JSON Lines file (`journal.jsonl`).
//!
//! Each line is one [`Record`]: a sequence number, the time, who acted, what happened, the
//! hash of the previous record, and the record's own hash (SHA-256 over the JSON of every other
//! field, in order). `journal.head` holds the last sequence number and hash, so a removed or
//! edited last record is noticed too. Someone who can rewrite all three can forge a history:
//! write the head hash down somewhere else (the report prints it) to anchor it.
//!
//! Commands on one case may run at the same time (a lead and a scribe in two terminals):
//! [`lock`] takes an advisory lock on `journal.lock`, exclusive for a command that appends and
//! shared for one that only reads, and the head is replaced atomically (written to a
//! temporary file, then renamed), so no reader sees a journal and head from different moments.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ecir_input::{sha256_hex, HashingReader};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::{io, Error};

pub const JOURNAL: &str = "journal.jsonl";
pub const HEAD: &str = "journal.head";
/// The advisory lock file of a case ([`lock`]); it holds nothing.
pub const LOCK: &str = "journal.lock";
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A file copied into the case, with its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRef {
    /// The path it was copied from (as given).
    pub original: String,
    /// Path of the copy, relative to the case directory.
    pub stored: String,
    pub sha256: String,
    pub bytes: u64,
}

/// What a record says happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum What {
    /// The case was opened.
    Open {
        playbook: String,
        /// SHA-256 of the playbook copy `playbook.toml` in the case directory.
        playbook_sha256: String,
        discovered: String,
        lang: String,
        tz: String,
    },
    /// The discovery time (T0) was corrected.
    Discovered {
        discovered: String,
        reason: Option<String>,
    },
    /// Case variables were set.
    Set { vars: BTreeMap<String, String> },
    /// A step changed status.
    Step {
        step: String,
        status: String,
        note: Option<String>,
        evidence: Vec<EvidenceRef>,
    },
    /// A free note (optionally about a step).
    Note { step: Option<String>, text: String },
    /// Evidence attached on its own (optionally to a step).
    Evidence {
        step: Option<String>,
        file: EvidenceRef,
    },
    /// A scan report (`ecir.report/1`) was attached.
    Report {
        file: EvidenceRef,
        findings: u64,
        playbooks: Vec<String>,
        /// Variables the report set (only ones that were not set before).
        vars: BTreeMap<String, String>,
        /// Values the report gives for variables already set to something else: not applied,
        /// the earlier value (a person's decision) is kept.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        not_applied: BTreeMap<String, NotApplied>,
    },
}

/// A variable value a scan report gives but that was not applied because the variable
/// already held another value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotApplied {
    /// What the report says.
    pub report: String,
    /// The value kept.
    pub kept: String,
    /// Who set the kept value, and in which record.
    pub set_by: String,
    pub set_in: u64,
}

#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    at: &'a str,
    by: &'a str,
    what: &'a What,
    prev: &'a str,
}

/// One journal line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub seq: u64,
    /// RFC 3339.
    pub at: String,
    pub by: String,
    pub what: What,
    pub prev: String,
    pub hash: String,
}

impl Record {
    pub fn compute_hash(&self) -> String {
        let body = Body {
            seq: self.seq,
            at: &self.at,
            by: &self.by,
            what: &self.what,
            prev: &self.prev,
        };
        sha256_hex(
            serde_json::to_string(&body)
                .expect("serializable")
                .as_bytes(),
        )
    }
}

fn journal_path(dir: &Path) -> PathBuf {
    dir.join(JOURNAL)
}

/// Reads the records as written, without checking them.
pub fn read_records(dir: &Path) -> Result<Vec<Record>, Error> {
    let path = journal_path(dir);
    let text =
        ecir_input::read_bounded_string(&path, ecir_input::DOCUMENT_LIMIT).map_err(Error::Read)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(line).map_err(|e| {
            Error::Tampered(format!(
                "{}: line {} is not a journal record: {e}",
                JOURNAL,
                i + 1
            ))
        })?;
        out.push(r);
    }
    Ok(out)
}

/// How long a command waits for another command on the same case to finish.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// An advisory lock on a case, released when dropped.
#[derive(Debug)]
pub struct CaseLock {
    _file: Option<File>,
}

/// Locks the case in `dir`: `exclusive` for a command that appends to the journal, shared
/// for one that only reads it. Waits while another command holds a conflicting lock, up to
/// [`LOCK_WAIT`], then fails with [`Error::Busy`]. A case that cannot be written (a read-only
/// copy, where nothing can append either) and a file system without locks are read unlocked.
pub fn lock(dir: &Path, exclusive: bool) -> Result<CaseLock, Error> {
    let path = dir.join(LOCK);
    let file = if exclusive {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?
    } else if !journal_path(dir).exists() {
        // Not a case (the reader says so): create nothing in a directory that may be evidence.
        return Ok(CaseLock { _file: None });
    } else {
        match File::open(&path).or_else(|_| {
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
        }) {
            Ok(f) => f,
            Err(_) => return Ok(CaseLock { _file: None }),
        }
    };
    let started = Instant::now();
    loop {
        let tried = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match tried {
            Ok(()) => return Ok(CaseLock { _file: Some(file) }),
            Err(TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Busy(format!(
                    "{}: the case is busy: another ecir command has held {LOCK} for {} seconds",
                    dir.display(),
                    LOCK_WAIT.as_secs()
                )))
            }
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                return Ok(CaseLock { _file: None })
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::Io { path, source: e });
            }
        }
    }
}

/// Appends a record after checking the chain, and returns it. The caller holds the case's
/// exclusive [`lock`].
pub fn append(dir: &Path, at: &str, by: &str, what: What) -> Result<Record, Error> {
    let existing = if journal_path(dir).exists() {
        check_chain(dir)?
    } else {
        Vec::new()
    };
    let (seq, prev) = match existing.last() {
        Some(r) => (r.seq + 1, r.hash.clone()),
        None => (1, GENESIS.to_string()),
    };
    let mut rec = Record {
        seq,
        at: at.to_string(),
        by: by.to_string(),
        what,
        prev,
        hash: String::new(),
    };
    rec.hash = rec.compute_hash();
    let line = serde_json::to_string(&rec).expect("serializable");
    let path = journal_path(dir);
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))?;
    writeln!(f, "{line}").map_err(io(&path))?;
    f.sync_all().map_err(io(&path))?;
    write_head(dir, &rec)?;
    Ok(rec)
}

/// Replaces `journal.head` atomically: a reader sees the old head or the new one, never a
/// half-written file.
fn write_head(dir: &Path, rec: &Record) -> Result<(), Error> {
    let head = dir.join(HEAD);
    let tmp = dir.join(format!("{HEAD}.tmp"));
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    writeln!(f, "{} {}", rec.seq, rec.hash).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, &head).map_err(io(&head))
}

/// Checks the hash chain and the head; returns the records when they hold.
pub fn check_chain(dir: &Path) -> Result<Vec<Record>, Error> {
    let recs = read_records(dir)?;
    let mut prev = GENESIS.to_string();
    for (i, r) in recs.iter().enumerate() {
        let expect_seq = i as u64 + 1;
        if r.hash != r.compute_hash() {
            return Err(Error::Tampered(format!(
                "record {} (line {}) was edited: its content does not match its hash",
                r.seq,
                i + 1
            )));
        }
        if r.seq != expect_seq {
            return Err(Error::Tampered(format!(
                "line {} holds record {} where record {expect_seq} belongs: records were removed, inserted or reordered",
                i + 1,
                r.seq
            )));
        }
        if r.prev != prev {
            return Err(Error::Tampered(format!(
                "record {} (line {}) does not follow the record before it: records were removed, inserted or reordered",
                r.seq,
                i + 1
            )));
        }
        prev = r.hash.clone();
    }
    let head_path = dir.join(HEAD);
    let head = ecir_input::read_config(&head_path).map_err(|e| {
        Error::Tampered(if e.is_not_found() {
            format!("{HEAD} is missing")
        } else {
            format!("{HEAD} cannot be read: {}", e.problem)
        })
    })?;
    let mut parts = head.split_whitespace();
    let (hseq, hhash) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let last_seq = recs.last().map_or(0, |r| r.seq);
    if hseq != last_seq.to_string() || hhash != prev {
        let hseq = shown(hseq);
        return Err(Error::Tampered(format!(
            "{HEAD} names record {hseq} but the journal ends at record {last_seq} (or with a different hash): records were removed or added at the end"
        )));
    }
    Ok(recs)
}

/// What [`verify`] checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub records: u64,
    /// Hash of the last record: write it down elsewhere to anchor the journal.
    pub head: String,
    pub evidence_files: u64,
    /// Files in the case's `evidence/` directory that no record names (paths relative to the
    /// case directory, sorted): a copy left by a command that failed before journaling it,
    /// or a file put there by hand. Not tampering with recorded evidence, so not an error;
    /// the CLI warns about each.
    pub unreferenced: Vec<String>,
}

/// The files recorded as evidence, with the number of the record that stored each.
pub fn evidence_files(records: &[Record]) -> Vec<(u64, &EvidenceRef)> {
    let mut files = Vec::new();
    for r in records {
        match &r.what {
            What::Step { evidence, .. } => files.extend(evidence.iter().map(|e| (r.seq, e))),
            What::Evidence { file, .. } | What::Report { file, .. } => files.push((r.seq, file)),
            _ => {}
        }
    }
    files
}

/// The playbook copy's text, after checking it against the SHA-256 the opening record
/// holds: a playbook edited after the case was opened would move its deadlines unnoticed.
pub fn checked_playbook(dir: &Path, records: &[Record]) -> Result<String, Error> {
    let copy = crate::case::PLAYBOOK_COPY;
    let Some((seq, want)) = records.iter().find_map(|r| match &r.what {
        What::Open {
            playbook_sha256, ..
        } => Some((r.seq, playbook_sha256)),
        _ => None,
    }) else {
        return Err(Error::Case(
            "the journal does not start with an `open` record".into(),
        ));
    };
    let src = ecir_input::read_config(&dir.join(copy)).map_err(|e| {
        Error::Tampered(if e.is_not_found() {
            format!("{copy} is missing")
        } else {
            format!("{copy} cannot be read: {}", e.problem)
        })
    })?;
    let got = sha256_hex(src.as_bytes());
    if &got != want {
        let want = shown(want);
        return Err(Error::Tampered(format!(
            "{copy} was changed after record {seq} (sha256 {got}, journal says {want})"
        )));
    }
    Ok(src)
}

/// Text taken from the journal or head file for a message: a forged record may hold any
/// characters, so C0/C1 controls and bidi overrides are escaped (`\x9b`, `\u{202e}`) and
/// the length is capped.
fn shown(s: &str) -> String {
    ecir_model::text::escape_controls(s, 300)
}

/// Verifies a case: the hash chain, the head, the playbook copy and every evidence file.
/// [`Error::Tampered`] names the first record or file that does not hold.
pub fn verify(dir: &Path) -> Result<Verified, Error> {
    let _lock = lock(dir, false)?;
    verify_locked(dir)
}

/// Whether a journal's stored name is one file directly under `evidence/`, as ecir writes
/// it.
fn stored_under_evidence(stored: &str) -> bool {
    stored
        .strip_prefix(crate::case::EVIDENCE_DIR)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|name| {
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
        })
}

/// [`verify`], for a caller that holds the case's [`lock`].
pub(crate) fn verify_locked(dir: &Path) -> Result<Verified, Error> {
    let recs = check_chain(dir)?;
    checked_playbook(dir, &recs)?;
    let files = evidence_files(&recs);
    for (seq, e) in &files {
        let stored = shown(&e.stored);
        // ecir stores every copy as one file directly under `evidence/`: any other name (an
        // absolute path, `..`) was written by hand, and must not make verify read outside
        // the case.
        if !stored_under_evidence(&e.stored) {
            return Err(Error::Tampered(format!(
                "evidence file {stored} (record {seq}) is not a file directly under {}/: the journal was edited",
                crate::case::EVIDENCE_DIR
            )));
        }
        let p = dir.join(&e.stored);
        // Streamed, not read whole: an evidence copy may be as large as the evidence.
        let (file, _) = ecir_input::open_regular(&p).map_err(|x| {
            Error::Tampered(if x.is_not_found() {
                format!("evidence file {stored} (record {seq}) is missing")
            } else {
                format!(
                    "evidence file {stored} (record {seq}) cannot be read: {}",
                    x.problem
                )
            })
        })?;
        let (got, _, err) = HashingReader::new(file).finish();
        if let Some(x) = err {
            return Err(Error::Io { path: p, source: x });
        }
        if got != e.sha256 {
            return Err(Error::Tampered(format!(
                "evidence file {stored} (record {seq}) was changed: sha256 {got}, journal says {}",
                shown(&e.sha256)
            )));
        }
    }
    let referenced: std::collections::BTreeSet<&str> =
        files.iter().map(|(_, e)| e.stored.as_str()).collect();
    let mut unreferenced = Vec::new();
    unreferenced_in(
        dir,
        crate::case::EVIDENCE_DIR,
        &referenced,
        &mut unreferenced,
    )?;
    unreferenced.sort();
    Ok(Verified {
        records: recs.len() as u64,
        head: recs.last().map(|r| r.hash.clone()).unwrap_or_default(),
        evidence_files: files.len() as u64,
        unreferenced,
    })
}

/// Adds to `out` every entry below `dir/rel` (a directory of the case) that is not a
/// directory and not in `referenced`, as a `/`-separated path relative to `dir`. Links are
/// not followed; a missing directory holds nothing.
fn unreferenced_in(
    dir: &Path,
    rel: &str,
    referenced: &std::collections::BTreeSet<&str>,
    out: &mut Vec<String>,
) -> Result<(), Error> {
    let path = dir.join(rel);
    let entries = match fs::read_dir(&path) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::Io { path, source: e }),
    };
    for entry in entries {
        let entry = entry.map_err(io(&path))?;
        let name = format!("{rel}/{}", entry.file_name().to_string_lossy());
        let is_dir = entry.file_type().map_err(io(entry.path()))?.is_dir();
        if is_dir {
            unreferenced_in(dir, &name, referenced, out)?;
        } else if !referenced.contains(name.as_str()) {
            out.push(name);
        }
    }
    Ok(())
}
