//! Findings: what a detector concluded, with the evidence lines that show why.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// How urgent a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.to_ascii_lowercase().as_str() {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    /// One step up, capped at critical.
    pub fn raised(self) -> Severity {
        match self {
            Severity::Info => Severity::Low,
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            _ => Severity::Critical,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What area of compromise a finding belongs to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    AdminCompromise,
    CardSkimming,
    Webshell,
    WebAttack,
    Recon,
    CardTesting,
    Waf,
    HostCompromise,
    LogIntegrity,
}

impl Category {
    pub fn as_str(&self) -> &'static str {
        match self {
            Category::AdminCompromise => "admin-compromise",
            Category::CardSkimming => "card-skimming",
            Category::Webshell => "webshell",
            Category::WebAttack => "web-attack",
            Category::Recon => "recon",
            Category::CardTesting => "card-testing",
            Category::Waf => "waf",
            Category::HostCompromise => "host-compromise",
            Category::LogIntegrity => "log-integrity",
        }
    }
}

/// One log line cited by a finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The input file, as listed in the report's `inputs`.
    pub file: Arc<str>,
    /// 1-based line number (for multi-line records: the record's first line).
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ts: Option<Timestamp>,
    /// The line as read, made safe by [`crate::text::evidence_text`].
    pub text: String,
    /// How telling this line is (higher first); not part of the report.
    #[serde(skip)]
    pub weight: u32,
}

/// A conclusion a responder can act on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// `F0001`…, assigned after sorting.
    pub id: String,
    /// Detector rule id, e.g. `web.sqli`.
    pub rule: String,
    pub category: Category,
    pub severity: Severity,
    pub title: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub first_seen: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_seen: Option<Timestamp>,
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    /// How many events the finding covers.
    pub count: u64,
    pub evidence: Vec<Evidence>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub playbook: Option<String>,
    /// Ids of findings this one links (attack chains, correlations).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub related: Vec<String>,
}

/// Most evidence lines a finding carries.
pub const MAX_EVIDENCE: usize = 20;
/// Most IPs a finding lists (its summary or count says how many there were in all).
pub const MAX_IPS: usize = 50;
/// Most findings one finding links in `related` (its summary says how many there were).
pub const MAX_RELATED: usize = 20;

impl Finding {
    /// Escapes control, bidi and zero-width characters in the prose a finding may take from
    /// log fields (title, summary) as [`crate::text::escaped`] does, as its evidence text
    /// already is: a `%1b` decoded in a path must not reach whoever shows the title (`jq -r`,
    /// a SIEM, a chat hook) as a live terminal sequence. `paths` and `users` stay exactly as
    /// sent, for matching (JSON escapes their control characters as `\u001b`).
    pub fn escape_log_text(&mut self) {
        for s in [&mut self.title, &mut self.summary] {
            if let std::borrow::Cow::Owned(e) = crate::text::escaped(s) {
                *s = e;
            }
        }
    }

    pub fn new(rule: &str, category: Category, severity: Severity) -> Self {
        Finding {
            id: String::new(),
            rule: rule.to_string(),
            category,
            severity,
            title: String::new(),
            summary: String::new(),
            first_seen: None,
            last_seen: None,
            ips: Vec::new(),
            users: Vec::new(),
            paths: Vec::new(),
            count: 0,
            evidence: Vec::new(),
            playbook: None,
            related: Vec::new(),
        }
    }

    /// Orders evidence most telling first (then by time, file and line), dedups and caps it.
    pub fn normalize_evidence(&mut self) {
        // Each line once, with the best weight any detector gave it.
        self.evidence.sort_by(|a, b| {
            a.file
                .cmp(&b.file)
                .then(a.line.cmp(&b.line))
                .then(b.weight.cmp(&a.weight))
        });
        self.evidence
            .dedup_by(|a, b| a.file == b.file && a.line == b.line);
        self.evidence.sort_by(|a, b| {
            b.weight
                .cmp(&a.weight)
                .then(a.ts.cmp(&b.ts))
                .then(a.file.cmp(&b.file))
                .then(a.line.cmp(&b.line))
        });
        self.evidence.truncate(MAX_EVIDENCE);
        // Detectors gather more candidates than they keep: give back the room.
        self.evidence.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_in_a_finding_is_escaped() {
        let mut f = Finding::new("webshell.x", Category::Webshell, Severity::High);
        f.title = "Script at /y\u{1b}[2J\u{202e}.php".into();
        f.summary = "ok \u{7}".into();
        f.users = vec!["adm\u{85}in".into()];
        f.paths = vec!["/a\u{1b}]0;x\u{7}".into()];
        f.escape_log_text();
        assert_eq!(f.title, "Script at /y\\x1b[2J\\u{202e}.php");
        assert_eq!(f.summary, "ok \\x07");
        // Data fields stay exact.
        assert_eq!(f.users, ["adm\u{85}in"]);
        assert_eq!(f.paths, ["/a\u{1b}]0;x\u{7}"]);
    }

    #[test]
    fn severity_orders_and_raises() {
        assert!(Severity::Critical > Severity::High);
        assert_eq!(Severity::Medium.raised(), Severity::High);
        assert_eq!(Severity::Critical.raised(), Severity::Critical);
        assert_eq!(Severity::parse("HIGH"), Some(Severity::High));
    }
}
