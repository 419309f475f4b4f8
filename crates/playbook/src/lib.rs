//! Playbooks and cases: the incident-response runner of ecir.
//!
//! This crate owns
//! * the playbook format (human-editable TOML, see `playbooks/README.md`), its parser and linter,
//!   the bundled playbooks, and their exports (Markdown, OASIS CACAO 2.0 JSON) and CACAO import;
//! * the Japanese business-day calendar and the deadline arithmetic;
//! * cases: a directory whose hash-chained journal (`journal.jsonl`) is the only source of
//!   truth, evidence copies with their SHA-256, status, verification and the incident record.
//!
//! It must not know about terminals, colours, argument parsing or exit codes: every function
//! returns values or a typed [`Error`], and text it produces is plain (Markdown or HTML for
//! reports). The CLI renders and decides exit codes.

pub mod bundled;
pub mod cacao;
pub mod calendar;
pub mod case;
pub mod cond;
pub mod deadline;
pub mod error;
pub mod format;
pub mod journal;
pub mod mask;
pub mod render;
pub mod report;

pub use bundled::{bundled, find_bundled, list, load, PlaybookSummary};
pub use cacao::{export_cacao, import_cacao, to_toml};
pub use case::{
    add_evidence, add_note, apply_step, attach_report, correct_discovery, new_case, odd_times,
    report_var_notes, run_next, set_vars, state, status, CaseState, CaseStatus, NewCase,
    NextOutcome, OddTime, StepStatus, StepStatusRow, StepUpdate, TimeField, STATUS_SCHEMA,
};
pub use error::Error;
pub use format::{
    lint, parse, Anchor, Deadline, DeadlineKind, Lang, Phase, Playbook, Problem, Step, Text, Unit,
    VarType, Variable,
};
pub use journal::{verify, Verified};
pub use mask::{mask_card_data, mask_pans};
pub use render::{export_markdown, render_status, show};
pub use report::{case_report, ReportFormat};

/// The language to use when none was given: Japanese when `LANG` starts with `ja`, else
/// English. Pass `std::env::var("LANG").ok().as_deref()`.
pub fn default_lang(lang_env: Option<&str>) -> Lang {
    match lang_env {
        Some(l) if l.trim().to_ascii_lowercase().starts_with("ja") => Lang::Ja,
        _ => Lang::En,
    }
}

/// The operating-system user name (`USER`, `LOGNAME` or `USERNAME`), or `unknown`: the default
/// for `--by`.
pub fn os_user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lang_from_env() {
        assert_eq!(default_lang(Some("ja_JP.UTF-8")), Lang::Ja);
        assert_eq!(default_lang(Some("en_US.UTF-8")), Lang::En);
        assert_eq!(default_lang(Some("C")), Lang::En);
        assert_eq!(default_lang(None), Lang::En);
    }
}
