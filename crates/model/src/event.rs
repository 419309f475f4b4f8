//! Normalized events: what one log record says, whatever format it came in.
//!
//! An [`Event`] borrows from the line (or record) it was parsed from, so the hot path allocates
//! nothing; a detector copies the few fields it keeps. Web-request fields are common to every
//! source (a WAF record and an admin-login record both name a client, a method and a path);
//! what only one kind of source knows goes in [`EventDetail`].

use std::borrow::Cow;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// What kind of evidence an input is (`source` in the report).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// Web server access logs.
    Web,
    /// Admin-panel login records (login history exports, admin application logs).
    AdminLogin,
    /// Application logs of the shop software.
    App,
    /// Web application firewall logs.
    Waf,
    /// Host authentication logs (sshd, PAM, sudo).
    Auth,
    /// A file no parser recognised.
    Unknown,
}

impl SourceKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceKind::Web => "web",
            SourceKind::AdminLogin => "admin-login",
            SourceKind::App => "app",
            SourceKind::Waf => "waf",
            SourceKind::Auth => "auth",
            SourceKind::Unknown => "unknown",
        }
    }
}

/// Outcome of a login attempt, as far as the source can tell.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoginOutcome {
    Success,
    Failure,
    Unknown,
}

/// What a WAF actually did with a request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WafAction {
    Blocked,
    LoggedOnly,
    Allowed,
    Unknown,
}

/// The kind of attack a WAF rule (or vendor label) says it detected. OWASP CRS rule ranges map
/// as 913 scanner, 920-922 protocol, 930 LFI, 931 RFI, 932 RCE, 933 PHP, 934 generic, 941 XSS,
/// 942 SQLi, 943 session fixation, 944 Java, 950-956 data leakage.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WafClass {
    Sqli,
    Xss,
    Lfi,
    Rfi,
    Rce,
    Php,
    Java,
    Ssrf,
    Scanner,
    Protocol,
    Session,
    Leakage,
    Bot,
    RateLimit,
    AccessControl,
    Generic,
}

impl WafClass {
    /// Attack class of an OWASP CRS (v3/v4) rule id by its range (`942100` → SQLi); `None` for
    /// other ids and for scoring/correlation rules (949, 959, 980).
    pub fn of_crs_id(id: &str) -> Option<WafClass> {
        if id.len() != 6 || !id.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some(match &id[..3] {
            "913" => WafClass::Scanner,
            "911" | "920" | "921" | "922" => WafClass::Protocol,
            "912" => WafClass::RateLimit,
            "930" => WafClass::Lfi,
            "931" => WafClass::Rfi,
            "932" => WafClass::Rce,
            "933" => WafClass::Php,
            "934" => WafClass::Generic,
            "941" => WafClass::Xss,
            "942" => WafClass::Sqli,
            "943" => WafClass::Session,
            "944" => WafClass::Java,
            "950" | "951" | "952" | "953" | "954" | "955" | "956" => WafClass::Leakage,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            WafClass::Sqli => "sqli",
            WafClass::Xss => "xss",
            WafClass::Lfi => "lfi",
            WafClass::Rfi => "rfi",
            WafClass::Rce => "rce",
            WafClass::Php => "php",
            WafClass::Java => "java",
            WafClass::Ssrf => "ssrf",
            WafClass::Scanner => "scanner",
            WafClass::Protocol => "protocol",
            WafClass::Session => "session",
            WafClass::Leakage => "leakage",
            WafClass::Bot => "bot",
            WafClass::RateLimit => "rate-limit",
            WafClass::AccessControl => "access-control",
            WafClass::Generic => "generic",
        }
    }

    /// Injection classes: a match means attacker payload in the request.
    pub fn is_injection(&self) -> bool {
        matches!(
            self,
            WafClass::Sqli
                | WafClass::Xss
                | WafClass::Lfi
                | WafClass::Rfi
                | WafClass::Rce
                | WafClass::Php
                | WafClass::Java
                | WafClass::Ssrf
        )
    }
}

/// Source-specific facts an event carries beyond the request fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum EventDetail<'a> {
    /// A plain web request.
    #[default]
    Web,
    /// A login attempt.
    Login {
        user: Option<Cow<'a, str>>,
        outcome: LoginOutcome,
    },
    /// A WAF record.
    Waf {
        rule_ids: Vec<Cow<'a, str>>,
        messages: Vec<Cow<'a, str>>,
        action: WafAction,
        severity: Option<Cow<'a, str>>,
        /// The engine (or the matching rule) only logged: ModSecurity `DetectionOnly`,
        /// Cloudflare `log`, Azure `Detected`, SiteGuard `MONITOR`. Not AWS `COUNT`: a count
        /// action is one rule's, not the web ACL's (see `counted_by`).
        detection_only: bool,
        /// Rules that matched with a count (non-terminating, log-only) action: AWS `COUNT`. One
        /// rule's setting, which says nothing of the policy's other rules; whether the policy
        /// as a whole only watched is judged over all its records (`policy`).
        counted_by: Vec<Cow<'a, str>>,
        /// The policy that judged the request, when the log names it: AWS `webaclId`.
        policy: Option<Cow<'a, str>>,
        /// The most specific attack class among the matched rules.
        attack: Option<WafClass>,
        /// Engine mode as the log writes it (`DETECTION_ONLY`, `Enabled`, …), when it does.
        engine_mode: Option<Cow<'a, str>>,
        /// Transaction id joining records of one request (`unique_id`, `transactionId`, `RayID`).
        transaction: Option<Cow<'a, str>>,
    },
    /// A host authentication record (sshd, sudo, account changes).
    Auth {
        program: Cow<'a, str>,
        user: Option<Cow<'a, str>>,
        action: Cow<'a, str>,
        outcome: LoginOutcome,
        /// The process id of the syslog tag (`sshd[1234]:`): sshd runs one process per
        /// connection, so it joins the lines of one connection.
        pid: Option<u32>,
        /// How many times the line was logged: N for rsyslog's `message repeated N times:
        /// [ … ]` (the message stands for N more lines, the first was logged before it), 1
        /// otherwise.
        times: u32,
        /// The remote host when the line names it by a host name, not an address (PAM's
        /// `rhost=` after sshd's reverse lookup): then `client_ip` is `None`.
        remote_name: Option<Cow<'a, str>>,
    },
    /// An application log message.
    App {
        level: Cow<'a, str>,
        channel: Option<Cow<'a, str>>,
        message: Cow<'a, str>,
    },
}

/// One normalized log record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Event<'a> {
    pub ts: Option<Timestamp>,
    pub source: Option<SourceKind>,
    /// The client the record is about, after `--trust-proxy` resolution.
    pub client_ip: Option<IpAddr>,
    /// HTTP method as written (`GET`, `POST`, …).
    pub method: Option<Cow<'a, str>>,
    /// Request target as written: path plus query, still percent-encoded.
    pub target: Option<Cow<'a, str>>,
    pub protocol: Option<Cow<'a, str>>,
    pub status: Option<u16>,
    /// Response body bytes (or bytes sent, as the format logs it).
    pub bytes: Option<u64>,
    pub referer: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    /// Virtual host or `Host` header, when logged.
    pub host: Option<Cow<'a, str>>,
    /// HTTP-auth or application user, when logged.
    pub user: Option<Cow<'a, str>>,
    /// Request duration in milliseconds, when logged.
    pub duration_ms: Option<u64>,
    pub detail: EventDetail<'a>,
    /// Where the target's query starts, found once on first use (leave it default).
    pub query_memo: QueryMemo,
}

/// A memo of the position of `?` in an event's target: every detector splits the target
/// into path and query, so the search runs once per event, not once per detector. It holds
/// nothing of its own: equal, hashed and printed as nothing.
#[derive(Clone, Default)]
pub struct QueryMemo(std::cell::Cell<u32>);

/// Not searched yet.
const MEMO_UNKNOWN: u32 = 0;
/// Searched: the target has no `?`.
const MEMO_NONE: u32 = u32::MAX;

impl QueryMemo {
    /// The byte position of the first `?` in `target`.
    #[inline]
    fn query_at(&self, target: &str) -> Option<usize> {
        match self.0.get() {
            MEMO_NONE => None,
            MEMO_UNKNOWN => {
                let at = memchr::memchr(b'?', target.as_bytes());
                // Position + 1, so that 0 stays "unknown"; targets near 4 GiB are not
                // remembered (lines are capped far below that).
                match at {
                    None => self.0.set(MEMO_NONE),
                    Some(i) if i < (u32::MAX - 1) as usize => self.0.set(i as u32 + 1),
                    Some(_) => {}
                }
                at
            }
            n => Some(n as usize - 1),
        }
    }
}

impl PartialEq for QueryMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for QueryMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueryMemo")
    }
}

impl<'a> Event<'a> {
    /// The path part of the target (before `?`), or `""`.
    #[inline]
    pub fn path(&self) -> &str {
        match self.target.as_deref() {
            Some(t) => match self.query_memo.query_at(t) {
                Some(i) => &t[..i],
                None => t,
            },
            None => "",
        }
    }

    /// The query part of the target (after `?`), if any.
    #[inline]
    pub fn query(&self) -> Option<&str> {
        let t = self.target.as_deref()?;
        self.query_memo.query_at(t).map(|i| &t[i + 1..])
    }

    pub fn is_success(&self) -> bool {
        matches!(self.status, Some(200..=299))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query_split() {
        let e = Event {
            target: Some(Cow::Borrowed("/a/b.php?cmd=id&x=1")),
            ..Default::default()
        };
        assert_eq!(e.path(), "/a/b.php");
        assert_eq!(e.query(), Some("cmd=id&x=1"));
        // Again, from the memo.
        assert_eq!(e.path(), "/a/b.php");
        assert_eq!(e.query(), Some("cmd=id&x=1"));
        let plain = Event {
            target: Some(Cow::Borrowed("/a")),
            ..Default::default()
        };
        for _ in 0..2 {
            assert_eq!(plain.path(), "/a");
            assert_eq!(plain.query(), None);
        }
        let bare = Event {
            target: Some(Cow::Borrowed("?")),
            ..Default::default()
        };
        assert_eq!((bare.path(), bare.query()), ("", Some("")));
        assert_eq!((bare.path(), bare.query()), ("", Some("")));
    }
}
