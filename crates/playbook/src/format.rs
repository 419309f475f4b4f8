//! The playbook format: typed playbooks, the TOML parser and the linter.
//!
//! A playbook file is TOML (documented in `playbooks/README.md`). [`parse`] reads it through
//! span-carrying raw structs so that [`lint`] can report every problem with its line; a
//! playbook that lints clean converts into the plain [`Playbook`] the rest of the crate uses.
//!
//! Playbook text is printed on terminals and written into Markdown, HTML and CACAO, and a
//! playbook may come from anyone: no text field may hold a control character (C0, DEL, C1) or
//! a bidi / zero-width format character ([`ecir_model::text::is_unsafe_char`]), except line
//! breaks and tabs in the prose fields (`summary_*`, `text_*`). The linter names the field.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ecir_model::text::{escape_controls, is_unsafe_char};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::cond::Cond;

/// Output language.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s.to_ascii_lowercase().as_str() {
            "ja" | "jp" | "japanese" => Some(Lang::Ja),
            "en" | "english" => Some(Lang::En),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

/// Incident-response phase of a step.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Prepare,
    Detect,
    Contain,
    Eradicate,
    Recover,
    Notify,
    Lessons,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Prepare,
        Phase::Detect,
        Phase::Contain,
        Phase::Eradicate,
        Phase::Recover,
        Phase::Notify,
        Phase::Lessons,
    ];
    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Prepare => "prepare",
            Phase::Detect => "detect",
            Phase::Contain => "contain",
            Phase::Eradicate => "eradicate",
            Phase::Recover => "recover",
            Phase::Notify => "notify",
            Phase::Lessons => "lessons",
        }
    }
    pub fn label(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::En => self.as_str(),
            Lang::Ja => match self {
                Phase::Prepare => "準備",
                Phase::Detect => "検知・分析",
                Phase::Contain => "封じ込め",
                Phase::Eradicate => "根絶",
                Phase::Recover => "復旧",
                Phase::Notify => "報告・通知",
                Phase::Lessons => "事後対応",
            },
        }
    }
}

/// A text in both languages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    pub ja: String,
    pub en: String,
}

impl Text {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Ja => &self.ja,
            Lang::En => &self.en,
        }
    }
}

/// Type of a case variable.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VarType {
    Bool,
    Int,
    String,
    /// RFC 3339 time, or a date / local date-time read in the case's zone.
    Time,
}

impl VarType {
    pub fn parse(s: &str) -> Option<VarType> {
        Some(match s {
            "bool" => VarType::Bool,
            "int" => VarType::Int,
            "string" => VarType::String,
            "time" => VarType::Time,
            _ => return None,
        })
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            VarType::Bool => "bool",
            VarType::Int => "int",
            VarType::String => "string",
            VarType::Time => "time",
        }
    }
}

/// A case variable a playbook reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: VarType,
    pub description: Text,
}

/// What a deadline counts from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Anchor {
    /// The case's discovery time (T0), as last recorded in the journal.
    Discovery,
    /// The time another step was completed.
    Step(String),
    /// A case variable holding a time.
    Var(String),
}

impl Anchor {
    pub fn parse(s: &str) -> Option<Anchor> {
        let s = s.trim();
        if s == "discovery" {
            return Some(Anchor::Discovery);
        }
        if let Some(id) = s.strip_prefix("step:") {
            return (!id.is_empty()).then(|| Anchor::Step(id.to_string()));
        }
        if let Some(v) = s.strip_prefix("var:") {
            return (!v.is_empty()).then(|| Anchor::Var(v.to_string()));
        }
        None
    }
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anchor::Discovery => f.write_str("discovery"),
            Anchor::Step(s) => write!(f, "step:{s}"),
            Anchor::Var(v) => write!(f, "var:{v}"),
        }
    }
}

/// How a deadline offset is counted.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    /// Exact hours after the anchor instant.
    Hours,
    /// Calendar days; the anchor day is not counted (民法140条) and the deadline is the end
    /// (24:00) of the last day in the case's zone.
    Days,
    /// Japanese business days after the anchor day (see [`crate::calendar`]); ends at 24:00.
    BusinessDays,
}

/// The longest deadline offset a playbook may give: about ten years, far beyond any
/// notification rule, and short enough that every deadline stays within the calendar's
/// range and the date arithmetic (a playbook may come from anyone).
pub const MAX_OFFSET_DAYS: i64 = 3650;

impl Unit {
    /// The largest offset in this unit ([`MAX_OFFSET_DAYS`] days, in hours for `hours`).
    pub fn max_offset(&self) -> i64 {
        match self {
            Unit::Hours => MAX_OFFSET_DAYS * 24,
            Unit::Days | Unit::BusinessDays => MAX_OFFSET_DAYS,
        }
    }
    pub fn parse(s: &str) -> Option<Unit> {
        Some(match s {
            "hours" => Unit::Hours,
            "days" => Unit::Days,
            "business-days" => Unit::BusinessDays,
            _ => return None,
        })
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Unit::Hours => "hours",
            Unit::Days => "days",
            Unit::BusinessDays => "business-days",
        }
    }
}

/// Soft deadlines are targets; missing a hard one breaks a rule.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeadlineKind {
    Soft,
    Hard,
}

/// A deadline rule of a step. A step may list several; the first whose `when` holds applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub when: Option<String>,
    pub anchor: Anchor,
    pub offset: i64,
    pub unit: Unit,
    pub kind: DeadlineKind,
    /// When the last day is a weekend, national holiday or 12/29–1/3, move to the next
    /// business day (行政機関の休日に関する法律2条 style). Days unit only.
    pub roll_forward: bool,
    /// Where the deadline comes from, in the original language (e.g. `個人情報保護法施行規則8条2項`).
    pub rule: String,
}

/// One step of a playbook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    pub phase: Phase,
    pub title: Text,
    pub text: Text,
    pub after: Vec<String>,
    pub when: Option<String>,
    pub deadlines: Vec<Deadline>,
    pub evidence: Vec<Text>,
    pub rules: Vec<String>,
}

/// A parsed, lint-clean playbook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Playbook {
    pub id: String,
    pub version: String,
    /// Date of the last content change (`YYYY-MM-DD`); CACAO `created`/`modified`.
    pub updated: String,
    pub title: Text,
    pub summary: Text,
    pub variables: Vec<Variable>,
    pub steps: Vec<Step>,
}

impl Playbook {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The steps in an order that respects `after`: no step before one it comes after.
    /// Among the steps whose dependencies are all placed, the earliest phase comes first,
    /// then declaration order. Dependencies on unknown steps are ignored; steps on a cycle
    /// (the linter refuses those) follow the rest in phase, then declaration, order.
    pub fn steps_in_dependency_order(&self) -> Vec<&Step> {
        use std::collections::{BTreeSet, HashMap};
        let index: HashMap<&str, usize> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let deps: Vec<BTreeSet<usize>> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.after
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .filter(|&d| d != i)
                    .collect()
            })
            .collect();
        let mut waiting: Vec<usize> = deps.iter().map(BTreeSet::len).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); self.steps.len()];
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                dependents[d].push(i);
            }
        }
        let key = |i: usize| (self.steps[i].phase, i);
        let mut ready: BTreeSet<(Phase, usize)> = (0..self.steps.len())
            .filter(|&i| waiting[i] == 0)
            .map(key)
            .collect();
        let mut placed = vec![false; self.steps.len()];
        let mut out = Vec::with_capacity(self.steps.len());
        while let Some((_, i)) = ready.pop_first() {
            placed[i] = true;
            out.push(&self.steps[i]);
            for &n in &dependents[i] {
                waiting[n] -= 1;
                if waiting[n] == 0 {
                    ready.insert(key(n));
                }
            }
        }
        let mut rest: Vec<usize> = (0..self.steps.len()).filter(|&i| !placed[i]).collect();
        rest.sort_by_key(|&i| key(i));
        out.extend(rest.into_iter().map(|i| &self.steps[i]));
        out
    }
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }
}

/// One lint problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    /// 1-based line.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

// ---- raw, span-carrying form ----

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    id: Option<S<String>>,
    version: Option<S<String>>,
    updated: Option<S<String>>,
    title_ja: Option<S<String>>,
    title_en: Option<S<String>>,
    summary_ja: Option<S<String>>,
    summary_en: Option<S<String>>,
    #[serde(default)]
    variables: Vec<S<RawVariable>>,
    #[serde(default)]
    steps: Vec<S<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    name: Option<S<String>>,
    #[serde(rename = "type")]
    kind: Option<S<String>>,
    ja: Option<S<String>>,
    en: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: Option<S<String>>,
    phase: Option<S<String>>,
    title_ja: Option<S<String>>,
    title_en: Option<S<String>>,
    text_ja: Option<S<String>>,
    text_en: Option<S<String>>,
    #[serde(default)]
    after: Vec<S<String>>,
    when: Option<S<String>>,
    #[serde(default)]
    deadlines: Vec<S<RawDeadline>>,
    #[serde(default)]
    evidence_ja: Vec<S<String>>,
    #[serde(default)]
    evidence_en: Vec<S<String>>,
    #[serde(default)]
    rules: Vec<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeadline {
    when: Option<S<String>>,
    anchor: Option<S<String>>,
    offset: Option<S<i64>>,
    unit: Option<S<String>>,
    kind: Option<S<String>>,
    #[serde(default)]
    roll_forward: bool,
    rule: Option<S<String>>,
}

struct Lines<'a> {
    src: &'a str,
    file: &'a str,
    problems: Vec<Problem>,
}

impl Lines<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.src.len());
        self.src.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }
    fn at<T>(&mut self, s: &S<T>, message: String) {
        let line = self.line(s.span().start);
        self.at_line(line, message);
    }
    /// Records a problem. Messages quote the playbook's own values, which may hold the very
    /// control characters a problem is about: they are escaped, like the file name.
    fn at_line(&mut self, line: usize, message: String) {
        self.problems.push(Problem {
            file: escape_controls(self.file, usize::MAX),
            line,
            message: escape_controls(&message, usize::MAX),
        });
    }
}

fn text_of(s: &Option<S<String>>) -> String {
    s.as_ref()
        .map(|v| v.get_ref().trim().to_string())
        .unwrap_or_default()
}

/// Reads and checks a playbook; `file` names it in problems. Returns every problem found.
pub fn parse(file: &str, src: &str) -> Result<Playbook, Vec<Problem>> {
    let raw: RawPlaybook = match toml::from_str(src) {
        Ok(r) => r,
        Err(e) => {
            let mut l = Lines {
                src,
                file,
                problems: Vec::new(),
            };
            let line = e.span().map(|s| l.line(s.start)).unwrap_or(1);
            let msg = e.message().trim().to_string();
            l.at_line(line, msg);
            return Err(l.problems);
        }
    };
    let mut l = Lines {
        src,
        file,
        problems: Vec::new(),
    };
    check_characters(&mut l, &raw);
    let pb = check(&mut l, &raw);
    if l.problems.is_empty() {
        Ok(pb)
    } else {
        l.problems.sort_by_key(|p| p.line);
        Err(l.problems)
    }
}

/// Every problem in a playbook file (empty when it is clean).
pub fn lint(file: &str, src: &str) -> Vec<Problem> {
    parse(file, src).err().unwrap_or_default()
}

fn require(l: &mut Lines, field: &Option<S<String>>, line: usize, what: &str) -> String {
    match field {
        Some(v) if !v.get_ref().trim().is_empty() => v.get_ref().trim().to_string(),
        Some(v) => {
            l.at(v, format!("{what} is empty"));
            String::new()
        }
        None => {
            l.at_line(line, format!("{what} is missing"));
            String::new()
        }
    }
}

/// The first character of `s` no playbook text may hold. Line breaks (LF, or CRLF as a file
/// saved on Windows has them) and tabs are allowed in `prose` fields only.
fn forbidden_char(s: &str, prose: bool) -> Option<char> {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let allowed = prose
            && match c {
                '\n' | '\t' => true,
                '\r' => chars.peek() == Some(&'\n'),
                _ => false,
            };
        if is_unsafe_char(c) && !allowed {
            return Some(c);
        }
    }
    None
}

/// Prose with CRLF line breaks made LF, so that views print no carriage return.
fn prose(s: String) -> String {
    if s.contains('\r') {
        s.replace("\r\n", "\n")
    } else {
        s
    }
}

/// Reports every text field holding a control or bidi character, naming the field.
fn check_characters(l: &mut Lines, raw: &RawPlaybook) {
    fn field(l: &mut Lines, v: &Option<S<String>>, what: &str, prose: bool) {
        if let Some(v) = v {
            item(l, v, what, prose);
        }
    }
    fn item(l: &mut Lines, v: &S<String>, what: &str, prose: bool) {
        if let Some(c) = forbidden_char(v.get_ref(), prose) {
            let allowed = if prose {
                " (line breaks and tabs are allowed)"
            } else {
                ""
            };
            l.at(
                v,
                format!(
                    "{what} contains the control character U+{:04X}: playbook text may not hold terminal control, bidi or zero-width characters{allowed}",
                    c as u32
                ),
            );
        }
    }
    fn list(l: &mut Lines, vs: &[S<String>], what: &str) {
        for (i, v) in vs.iter().enumerate() {
            item(l, v, &format!("{what} item {}", i + 1), false);
        }
    }
    field(l, &raw.id, "`id`", false);
    field(l, &raw.version, "`version`", false);
    field(l, &raw.updated, "`updated`", false);
    field(l, &raw.title_ja, "`title_ja`", false);
    field(l, &raw.title_en, "`title_en`", false);
    field(l, &raw.summary_ja, "`summary_ja`", true);
    field(l, &raw.summary_en, "`summary_en`", true);
    for (i, v) in raw.variables.iter().enumerate() {
        let r = v.get_ref();
        let label = match &r.name {
            Some(n) if forbidden_char(n.get_ref(), false).is_none() => {
                format!("variable `{}`", n.get_ref().trim())
            }
            _ => format!("variable {}", i + 1),
        };
        field(l, &r.name, &format!("{label}: `name`"), false);
        field(l, &r.kind, &format!("{label}: `type`"), false);
        field(l, &r.ja, &format!("{label}: `ja`"), false);
        field(l, &r.en, &format!("{label}: `en`"), false);
    }
    for (i, s) in raw.steps.iter().enumerate() {
        let r = s.get_ref();
        let label = match &r.id {
            Some(id) if forbidden_char(id.get_ref(), false).is_none() => {
                format!("step {}", id.get_ref().trim())
            }
            _ => format!("step {}", i + 1),
        };
        field(l, &r.id, &format!("{label}: `id`"), false);
        field(l, &r.phase, &format!("{label}: `phase`"), false);
        field(l, &r.title_ja, &format!("{label}: `title_ja`"), false);
        field(l, &r.title_en, &format!("{label}: `title_en`"), false);
        field(l, &r.text_ja, &format!("{label}: `text_ja`"), true);
        field(l, &r.text_en, &format!("{label}: `text_en`"), true);
        field(l, &r.when, &format!("{label}: `when`"), false);
        list(l, &r.after, &format!("{label}: `after`"));
        list(l, &r.evidence_ja, &format!("{label}: `evidence_ja`"));
        list(l, &r.evidence_en, &format!("{label}: `evidence_en`"));
        list(l, &r.rules, &format!("{label}: `rules`"));
        for (j, d) in r.deadlines.iter().enumerate() {
            let d = d.get_ref();
            let dl = format!("{label}: deadline {}", j + 1);
            field(l, &d.when, &format!("{dl} `when`"), false);
            field(l, &d.anchor, &format!("{dl} `anchor`"), false);
            field(l, &d.unit, &format!("{dl} `unit`"), false);
            field(l, &d.kind, &format!("{dl} `kind`"), false);
            field(l, &d.rule, &format!("{dl} `rule`"), false);
        }
    }
}

fn check(l: &mut Lines, raw: &RawPlaybook) -> Playbook {
    let id = require(l, &raw.id, 1, "playbook `id`");
    if !id.is_empty()
        && !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        let s = raw.id.as_ref().expect("id present");
        l.at(
            s,
            format!("playbook id `{id}` must be lower-case letters, digits and `-`"),
        );
    }
    let version = require(l, &raw.version, 1, "`version`");
    let updated = require(l, &raw.updated, 1, "`updated` (YYYY-MM-DD)");
    if !updated.is_empty() && chrono::NaiveDate::parse_from_str(&updated, "%Y-%m-%d").is_err() {
        let s = raw.updated.as_ref().expect("present");
        l.at(
            s,
            format!("`updated` must be a date YYYY-MM-DD, not `{updated}`"),
        );
    }
    let title = Text {
        ja: require(l, &raw.title_ja, 1, "`title_ja` (Japanese title)"),
        en: require(l, &raw.title_en, 1, "`title_en` (English title)"),
    };
    let summary = Text {
        ja: prose(text_of(&raw.summary_ja)),
        en: prose(text_of(&raw.summary_en)),
    };

    // Variables.
    let mut variables = Vec::new();
    let mut var_types: BTreeMap<String, VarType> = BTreeMap::new();
    for v in &raw.variables {
        let line = l.line(v.span().start);
        let r = v.get_ref();
        let name = require(l, &r.name, line, "variable `name`");
        let kind = match &r.kind {
            Some(k) => match VarType::parse(k.get_ref()) {
                Some(t) => t,
                None => {
                    l.at(
                        k,
                        format!(
                            "unknown variable type `{}` (expected bool, int, string or time)",
                            k.get_ref()
                        ),
                    );
                    VarType::String
                }
            },
            None => {
                l.at_line(line, format!("variable `{name}`: missing `type`"));
                VarType::String
            }
        };
        let description = Text {
            ja: require(
                l,
                &r.ja,
                line,
                &format!("variable `{name}`: Japanese description `ja`"),
            ),
            en: require(
                l,
                &r.en,
                line,
                &format!("variable `{name}`: English description `en`"),
            ),
        };
        if !name.is_empty() {
            if var_types.insert(name.clone(), kind).is_some() {
                l.at_line(line, format!("variable `{name}` declared twice"));
            }
            if !valid_var_name(&name) {
                l.at_line(
                    line,
                    format!("variable name `{name}` must be lower-case letters, digits and `_`"),
                );
            }
        }
        variables.push(Variable {
            name,
            kind,
            description,
        });
    }

    // Steps: first pass for ids.
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for (i, s) in raw.steps.iter().enumerate() {
        if let Some(id) = &s.get_ref().id {
            let idv = id.get_ref().trim().to_string();
            if ids.insert(idv.clone(), i).is_some() {
                l.at(id, format!("step id `{idv}` used twice"));
            }
        }
    }
    if raw.steps.is_empty() {
        l.at_line(1, "playbook has no steps ([[steps]])".to_string());
    }

    let mut steps = Vec::new();
    for s in &raw.steps {
        let line = l.line(s.span().start);
        let r = s.get_ref();
        let id = require(l, &r.id, line, "step `id`");
        let label = if id.is_empty() {
            "step".to_string()
        } else {
            format!("step {id}")
        };
        let line =
            r.id.as_ref()
                .map(|v| l.line(v.span().start))
                .unwrap_or(line);
        let phase = match &r.phase {
            Some(p) => match Phase::parse(p.get_ref().trim()) {
                Some(ph) => ph,
                None => {
                    l.at(p, format!(
                        "{label}: unknown phase `{}` (expected one of prepare, detect, contain, eradicate, recover, notify, lessons)",
                        p.get_ref()
                    ));
                    Phase::Detect
                }
            },
            None => {
                l.at_line(line, format!("{label}: missing `phase`"));
                Phase::Detect
            }
        };
        let title = Text {
            ja: require(
                l,
                &r.title_ja,
                line,
                &format!("{label}: Japanese title `title_ja`"),
            ),
            en: require(
                l,
                &r.title_en,
                line,
                &format!("{label}: English title `title_en`"),
            ),
        };
        let text = Text {
            ja: prose(require(
                l,
                &r.text_ja,
                line,
                &format!("{label}: Japanese text `text_ja`"),
            )),
            en: prose(require(
                l,
                &r.text_en,
                line,
                &format!("{label}: English text `text_en`"),
            )),
        };
        let mut after = Vec::new();
        for a in &r.after {
            let dep = a.get_ref().trim().to_string();
            if !ids.contains_key(&dep) {
                l.at(a, format!("{label}: depends on unknown step `{dep}`"));
            } else if dep == id {
                l.at(a, format!("{label}: depends on itself"));
            }
            after.push(dep);
        }
        let when = r.when.as_ref().map(|w| {
            check_cond(l, w, &var_types, &label);
            w.get_ref().trim().to_string()
        });
        let mut deadlines = Vec::new();
        for d in &r.deadlines {
            if let Some(dl) = check_deadline(l, d, &label, &id, &ids, &var_types) {
                deadlines.push(dl);
            }
        }
        if r.evidence_ja.len() != r.evidence_en.len() {
            l.at_line(line, format!(
                "{label}: {} Japanese evidence items (`evidence_ja`) but {} English (`evidence_en`); give each item in both languages",
                r.evidence_ja.len(),
                r.evidence_en.len()
            ));
        }
        let mut evidence = Vec::new();
        for (ja, en) in r.evidence_ja.iter().zip(&r.evidence_en) {
            if ja.get_ref().trim().is_empty() {
                l.at(ja, format!("{label}: empty Japanese evidence item"));
            }
            if en.get_ref().trim().is_empty() {
                l.at(en, format!("{label}: empty English evidence item"));
            }
            evidence.push(Text {
                ja: ja.get_ref().trim().to_string(),
                en: en.get_ref().trim().to_string(),
            });
        }
        steps.push(Step {
            id,
            phase,
            title,
            text,
            after,
            when,
            deadlines,
            evidence,
            rules: r
                .rules
                .iter()
                .map(|x| x.get_ref().trim().to_string())
                .collect(),
        });
    }

    // Cycles: report each step on a cycle once, at its id line.
    for (i, cyc) in find_cycles(&steps).into_iter().enumerate() {
        let _ = i;
        let first = &cyc[0];
        let idx = ids[first];
        let sp = raw.steps[idx].get_ref().id.as_ref().expect("id present");
        l.at(
            sp,
            format!("dependency cycle: {} -> {}", cyc.join(" -> "), first),
        );
    }

    Playbook {
        id,
        version,
        updated,
        title,
        summary,
        variables,
        steps,
    }
}

fn valid_var_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn check_cond(l: &mut Lines, w: &S<String>, vars: &BTreeMap<String, VarType>, label: &str) {
    match Cond::parse(w.get_ref()) {
        Ok(c) => {
            for v in c.variables() {
                if !vars.contains_key(&v) {
                    l.at(w, format!(
                        "{label}: condition uses undeclared variable `{v}` (declare it in [[variables]])"
                    ));
                }
            }
        }
        Err(e) => l.at(w, format!("{label}: bad condition `{}`: {e}", w.get_ref())),
    }
}

fn check_deadline(
    l: &mut Lines,
    d: &S<RawDeadline>,
    label: &str,
    self_id: &str,
    ids: &BTreeMap<String, usize>,
    vars: &BTreeMap<String, VarType>,
) -> Option<Deadline> {
    let line = l.line(d.span().start);
    let r = d.get_ref();
    let mut ok = true;
    if let Some(w) = &r.when {
        check_cond(l, w, vars, label);
    }
    let anchor = match &r.anchor {
        None => {
            l.at_line(line, format!("{label}: deadline without `anchor`"));
            ok = false;
            Anchor::Discovery
        }
        Some(a) => match Anchor::parse(a.get_ref()) {
            None => {
                l.at(a, format!(
                    "{label}: bad deadline anchor `{}` (expected `discovery`, `step:ID` or `var:NAME`)",
                    a.get_ref()
                ));
                ok = false;
                Anchor::Discovery
            }
            Some(Anchor::Step(s)) => {
                if !ids.contains_key(&s) {
                    l.at(
                        a,
                        format!("{label}: deadline anchor names unknown step `{s}`"),
                    );
                    ok = false;
                } else if s == self_id {
                    l.at(a, format!("{label}: deadline anchored on its own step"));
                    ok = false;
                }
                Anchor::Step(s)
            }
            Some(Anchor::Var(v)) => {
                match vars.get(&v) {
                    None => {
                        l.at(
                            a,
                            format!("{label}: deadline anchor names undeclared variable `{v}`"),
                        );
                        ok = false;
                    }
                    Some(VarType::Time) => {}
                    Some(t) => {
                        l.at(
                            a,
                            format!(
                                "{label}: deadline anchor variable `{v}` is {}, not time",
                                t.as_str()
                            ),
                        );
                        ok = false;
                    }
                }
                Anchor::Var(v)
            }
            Some(Anchor::Discovery) => Anchor::Discovery,
        },
    };
    let offset = match &r.offset {
        Some(o) if *o.get_ref() >= 0 => *o.get_ref(),
        Some(o) => {
            l.at(o, format!("{label}: deadline offset must not be negative"));
            ok = false;
            0
        }
        None => {
            l.at_line(line, format!("{label}: deadline without `offset`"));
            ok = false;
            0
        }
    };
    let unit = match &r.unit {
        Some(u) => match Unit::parse(u.get_ref()) {
            Some(u) => u,
            None => {
                l.at(
                    u,
                    format!(
                    "{label}: unknown deadline unit `{}` (expected hours, days or business-days)",
                    u.get_ref()
                ),
                );
                ok = false;
                Unit::Days
            }
        },
        None => {
            l.at_line(line, format!("{label}: deadline without `unit`"));
            ok = false;
            Unit::Days
        }
    };
    if let Some(o) = r
        .offset
        .as_ref()
        .filter(|o| *o.get_ref() > unit.max_offset())
    {
        l.at(
            o,
            format!(
                "{label}: deadline offset {} {} is too large: at most {MAX_OFFSET_DAYS} days ({} hours, {MAX_OFFSET_DAYS} business days)",
                o.get_ref(),
                unit.as_str(),
                Unit::Hours.max_offset()
            ),
        );
        ok = false;
    }
    let kind = match r.kind.as_ref().map(|k| (k, k.get_ref().as_str())) {
        Some((_, "soft")) => DeadlineKind::Soft,
        Some((_, "hard")) => DeadlineKind::Hard,
        Some((k, other)) => {
            l.at(
                k,
                format!("{label}: deadline kind `{other}` must be `soft` or `hard`"),
            );
            ok = false;
            DeadlineKind::Soft
        }
        None => {
            l.at_line(
                line,
                format!("{label}: deadline without `kind` (soft or hard)"),
            );
            ok = false;
            DeadlineKind::Soft
        }
    };
    if r.roll_forward && unit != Unit::Days {
        l.at_line(
            line,
            format!("{label}: `roll_forward` only applies to unit `days`"),
        );
        ok = false;
    }
    let rule = require(
        l,
        &r.rule,
        line,
        &format!("{label}: deadline `rule` (where it comes from)"),
    );
    ok.then(|| Deadline {
        when: r.when.as_ref().map(|w| w.get_ref().trim().to_string()),
        anchor,
        offset,
        unit,
        kind,
        roll_forward: r.roll_forward,
        rule,
    })
}

/// Dependency cycles among steps (each as the list of step ids on it).
fn find_cycles(steps: &[Step]) -> Vec<Vec<String>> {
    let index: BTreeMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    // 0 = unvisited, 1 = on stack, 2 = done
    let mut mark = vec![0u8; steps.len()];
    let mut cycles = Vec::new();
    let mut seen: BTreeSet<Vec<String>> = BTreeSet::new();
    fn dfs(
        i: usize,
        steps: &[Step],
        index: &BTreeMap<&str, usize>,
        mark: &mut [u8],
        stack: &mut Vec<usize>,
        cycles: &mut Vec<Vec<String>>,
        seen: &mut BTreeSet<Vec<String>>,
    ) {
        mark[i] = 1;
        stack.push(i);
        for dep in &steps[i].after {
            let Some(&j) = index.get(dep.as_str()) else {
                continue;
            };
            if mark[j] == 1 {
                let pos = stack.iter().position(|&k| k == j).expect("on stack");
                let mut cyc: Vec<String> =
                    stack[pos..].iter().map(|&k| steps[k].id.clone()).collect();
                let mut key = cyc.clone();
                key.sort();
                if seen.insert(key) {
                    // Start the cycle at its first step in file order.
                    let min = cyc
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, id)| index[id.as_str()])
                        .map(|(p, _)| p)
                        .unwrap_or(0);
                    cyc.rotate_left(min);
                    cycles.push(cyc);
                }
            } else if mark[j] == 0 {
                dfs(j, steps, index, mark, stack, cycles, seen);
            }
        }
        stack.pop();
        mark[i] = 2;
    }
    for i in 0..steps.len() {
        if mark[i] == 0 {
            let mut stack = Vec::new();
            dfs(
                i,
                steps,
                &index,
                &mut mark,
                &mut stack,
                &mut cycles,
                &mut seen,
            );
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"id = "t"
version = "1"
updated = "2026-11-26"
title_ja = "テスト"
title_en = "Test"

[[variables]]
name = "flag"
type = "bool"
ja = "フラグ"
en = "Flag"

[[steps]]
id = "A"
phase = "detect"
title_ja = "あ"
title_en = "A"
text_ja = "あ"
text_en = "A"

[[steps]]
id = "B"
phase = "notify"
title_ja = "い"
title_en = "B"
text_ja = "い"
text_en = "B"
after = ["A"]
when = "flag"
evidence_ja = ["証跡"]
evidence_en = ["record"]
[[steps.deadlines]]
anchor = "step:A"
offset = 3
unit = "days"
kind = "hard"
rule = "rule"
"#;

    fn problems(src: &str) -> Vec<Problem> {
        lint("t.toml", src)
    }

    #[test]
    fn good_playbook_parses() {
        let pb = parse("t.toml", GOOD).expect("clean");
        assert_eq!(pb.steps.len(), 2);
        assert_eq!(pb.steps[1].after, vec!["A".to_string()]);
        assert_eq!(pb.steps[1].deadlines[0].anchor, Anchor::Step("A".into()));
    }

    fn line_of(src: &str, needle: &str) -> usize {
        src[..src.find(needle).expect("needle")]
            .matches('\n')
            .count()
            + 1
    }

    #[test]
    fn unknown_phase_with_line() {
        let src = GOOD.replace("phase = \"notify\"", "phase = \"notifyy\"");
        let p = problems(&src);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.contains("unknown phase `notifyy`"));
        assert_eq!(p[0].line, line_of(&src, "phase = \"notifyy\""));
        assert_eq!(p[0].file, "t.toml");
    }

    #[test]
    fn dangling_dependency() {
        let src = GOOD.replace("after = [\"A\"]", "after = [\"Z\"]");
        let p = problems(&src);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.contains("unknown step `Z`"));
        assert_eq!(p[0].line, line_of(&src, "after = [\"Z\"]"));
    }

    #[test]
    fn dependency_cycle() {
        let src = GOOD.replace(
            "id = \"A\"\nphase = \"detect\"",
            "id = \"A\"\nafter = [\"B\"]\nphase = \"detect\"",
        );
        let p = problems(&src);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].message.contains("dependency cycle: A -> B -> A"),
            "{}",
            p[0].message
        );
        assert_eq!(p[0].line, line_of(&src, "id = \"A\""));
    }

    #[test]
    fn missing_language_text() {
        let src = GOOD.replace("text_en = \"B\"\n", "");
        let p = problems(&src);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].message
                .contains("step B: English text `text_en` is missing"),
            "{}",
            p[0].message
        );
        assert_eq!(p[0].line, line_of(&src, "id = \"B\""));
        let src = GOOD.replace("title_ja = \"い\"", "title_ja = \"  \"");
        let p = problems(&src);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.contains("Japanese title `title_ja` is empty"));
        assert_eq!(p[0].line, line_of(&src, "title_ja = \"  \""));
    }

    #[test]
    fn bad_deadline_anchor() {
        for (anchor, msg) in [
            ("later", "bad deadline anchor `later`"),
            ("step:Q", "unknown step `Q`"),
            ("var:flag", "is bool, not time"),
            ("var:nope", "undeclared variable `nope`"),
        ] {
            let src = GOOD.replace("anchor = \"step:A\"", &format!("anchor = \"{anchor}\""));
            let p = problems(&src);
            assert_eq!(p.len(), 1, "{anchor}: {p:?}");
            assert!(p[0].message.contains(msg), "{}", p[0].message);
            assert_eq!(p[0].line, line_of(&src, &format!("anchor = \"{anchor}\"")));
        }
    }

    #[test]
    fn several_problems_reported_together() {
        let src = GOOD
            .replace("phase = \"detect\"", "phase = \"hunt\"")
            .replace("after = [\"A\"]", "after = [\"X\"]")
            .replace("when = \"flag\"", "when = \"flagg\"");
        let p = problems(&src);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p.windows(2).all(|w| w[0].line <= w[1].line));
    }

    #[test]
    fn control_characters_are_rejected_naming_the_field() {
        // The OSC 8 hyperlink of the review, through TOML's own `\u` escape.
        let link = r"\u001b]8;;http://x\u001b\\link\u001b]8;;\u001b\\";
        for (find, replace, field) in [
            (
                "title_en = \"Test\"",
                format!("title_en = \"{link}\""),
                "`title_en`",
            ),
            (
                "title_en = \"B\"",
                "title_en = \"B\\u202e\"".to_string(),
                "step B: `title_en`",
            ),
            (
                "text_en = \"B\"",
                "text_en = \"line 1\\nline 2\\u009b2J\"".to_string(),
                "step B: `text_en`",
            ),
            (
                "en = \"Flag\"",
                "en = \"Fl\\u0007ag\"".to_string(),
                "variable `flag`: `en`",
            ),
            (
                "evidence_en = [\"record\"]",
                "evidence_en = [\"re\\bcord\"]".to_string(),
                "step B: `evidence_en` item 1",
            ),
            (
                "rule = \"rule\"",
                "rule = \"ru\\u200ble\"".to_string(),
                "step B: deadline 1 `rule`",
            ),
            (
                "summary_en = \"S\"",
                "summary_en = \"a\\rb\"".to_string(),
                "`summary_en`",
            ),
        ] {
            let base = GOOD.replace(
                "title_en = \"Test\"\n",
                "title_en = \"Test\"\nsummary_en = \"S\"\n",
            );
            assert!(base.contains(find), "{find}");
            let src = base.replacen(find, &replace, 1);
            let p = problems(&src);
            assert_eq!(p.len(), 1, "{field}: {p:?}");
            assert!(
                p[0].message
                    .starts_with(&format!("{field} contains the control character U+")),
                "{}",
                p[0].message
            );
            assert_eq!(p[0].line, line_of(&src, &replace));
            assert!(!p[0].to_string().chars().any(is_unsafe_char), "{:?}", p[0]);
            assert!(parse("t.toml", &src).is_err());
        }
        // Line breaks and tabs stay allowed in prose, even written across lines.
        let src = GOOD.replace(
            "text_en = \"B\"",
            "text_en = \"\"\"\nFirst line,\n\tthen a second.\"\"\"",
        );
        let pb = parse("t.toml", &src).expect("clean");
        assert_eq!(pb.steps[1].text.en, "First line,\n\tthen a second.");
        // A file saved with CRLF line ends: the break is kept, as LF.
        let pb = parse("t.toml", &src.replace('\n', "\r\n")).expect("CRLF file is clean");
        assert_eq!(pb.steps[1].text.en, "First line,\n\tthen a second.");
        let p = problems(&GOOD.replace("title_en = \"B\"", "title_en = \"B\\nC\""));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0]
            .message
            .contains("step B: `title_en` contains the control character U+000A"));
    }

    #[test]
    fn syntax_error_has_line() {
        let src = GOOD.replace("offset = 3", "offset = ");
        let p = problems(&src);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, line_of(&src, "offset = "));
    }

    #[test]
    fn offsets_beyond_ten_years_are_refused() {
        for (offset, unit) in [
            ("3651", "days"),
            ("3651", "business-days"),
            ("87601", "hours"),
            ("100000000", "days"),
            ("9223372036854775807", "hours"),
        ] {
            let src = GOOD
                .replace("offset = 3", &format!("offset = {offset}"))
                .replace("unit = \"days\"", &format!("unit = \"{unit}\""));
            let p = problems(&src);
            assert_eq!(p.len(), 1, "{offset} {unit}: {p:?}");
            assert!(
                p[0].message.contains("is too large: at most 3650 days"),
                "{}",
                p[0].message
            );
            assert_eq!(p[0].line, line_of(&src, &format!("offset = {offset}")));
        }
        for (offset, unit) in [
            ("3650", "days"),
            ("3650", "business-days"),
            ("87600", "hours"),
        ] {
            let src = GOOD
                .replace("offset = 3", &format!("offset = {offset}"))
                .replace("unit = \"days\"", &format!("unit = \"{unit}\""));
            assert!(problems(&src).is_empty(), "{offset} {unit}");
        }
    }

    #[test]
    fn dependency_order_respects_after_then_phase_then_declaration() {
        let mut pb = crate::bundled::find_bundled("card-skimming").unwrap();
        pb.steps.truncate(3); // CS-01 detect, CS-02 detect after 01, CS-03 contain after 01
        pb.steps[1].after = vec!["CS-03".into(), "CS-03".into(), "nope".into()];
        let ids = |pb: &Playbook| -> Vec<String> {
            pb.steps_in_dependency_order()
                .iter()
                .map(|s| s.id.clone())
                .collect()
        };
        assert_eq!(ids(&pb), ["CS-01", "CS-03", "CS-02"]);
        // Ready steps: the earlier phase first, then declaration order.
        pb.steps[1].after = vec!["CS-01".into()];
        pb.steps[1].phase = Phase::Notify;
        assert_eq!(ids(&pb), ["CS-01", "CS-03", "CS-02"]);
        pb.steps[1].phase = Phase::Contain;
        assert_eq!(ids(&pb), ["CS-01", "CS-02", "CS-03"]);
        // A cycle (refused by the linter) still lists every step once.
        pb.steps[0].after = vec!["CS-02".into()];
        pb.steps[1].after = vec!["CS-01".into()];
        pb.steps[2].after = Vec::new();
        assert_eq!(ids(&pb), ["CS-03", "CS-01", "CS-02"]);
    }
}
