//! The playbooks shipped in the binary (`playbooks/*.toml`, compiled in with `include_str!`),
//! and loading a playbook by id or path.

use std::path::Path;

use serde::Serialize;

use crate::error::Error;
use crate::format::{self, Lang, Playbook};

/// `(file name, TOML source)` of every bundled playbook.
pub fn bundled() -> &'static [(&'static str, &'static str)] {
    &[
        (
            "card-skimming.toml",
            include_str!("../../../playbooks/card-skimming.toml"),
        ),
        (
            "admin-takeover.toml",
            include_str!("../../../playbooks/admin-takeover.toml"),
        ),
        (
            "web-shell.toml",
            include_str!("../../../playbooks/web-shell.toml"),
        ),
        (
            "log-audit.toml",
            include_str!("../../../playbooks/log-audit.toml"),
        ),
        (
            "readiness.toml",
            include_str!("../../../playbooks/readiness.toml"),
        ),
    ]
}

/// One line of `playbook list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlaybookSummary {
    pub id: String,
    pub version: String,
    pub title: String,
    pub steps: usize,
}

/// The bundled playbooks, titles in `lang`.
pub fn list(lang: Lang) -> Result<Vec<PlaybookSummary>, Error> {
    bundled()
        .iter()
        .map(|(file, src)| {
            let pb = format::parse(file, src).map_err(Error::Playbook)?;
            Ok(PlaybookSummary {
                id: pb.id.clone(),
                version: pb.version.clone(),
                title: pb.title.get(lang).to_string(),
                steps: pb.steps.len(),
            })
        })
        .collect()
}

/// The bundled playbook with this id.
pub fn find_bundled(id: &str) -> Result<Playbook, Error> {
    let (file, src) = bundled_source(id).ok_or_else(|| Error::UnknownPlaybook(id.to_string()))?;
    format::parse(file, src).map_err(Error::Playbook)
}

fn bundled_source(id: &str) -> Option<(&'static str, &'static str)> {
    bundled()
        .iter()
        .find(|(file, _)| file.strip_suffix(".toml") == Some(id))
        .copied()
}

/// `(file name, source)` of a bundled playbook id, or of a `.toml` file path.
pub fn load_source(id_or_path: &str) -> Result<(String, String), Error> {
    if let Some((f, s)) = bundled_source(id_or_path) {
        return Ok((f.to_string(), s.to_string()));
    }
    let p = Path::new(id_or_path);
    // A path: named `.toml`, written with a directory, or an existing file. Read with the
    // configuration cap, so `/dev/zero` or a FIFO is refused rather than read forever.
    if id_or_path.ends_with(".toml") || p.components().count() > 1 || p.is_file() {
        let src = ecir_input::read_config(p).map_err(Error::Read)?;
        return Ok((id_or_path.to_string(), src));
    }
    Err(Error::UnknownPlaybook(id_or_path.to_string()))
}

/// A playbook by bundled id or file path, parsed and lint-clean.
pub fn load(id_or_path: &str) -> Result<Playbook, Error> {
    let (file, src) = load_source(id_or_path)?;
    format::parse(&file, &src).map_err(Error::Playbook)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Anchor, DeadlineKind, Unit};

    #[test]
    fn every_bundled_playbook_lints_clean() {
        assert_eq!(bundled().len(), 5);
        for (file, src) in bundled() {
            let problems = format::lint(file, src);
            assert!(problems.is_empty(), "{file}: {problems:#?}");
            let pb = format::parse(file, src).unwrap();
            assert_eq!(format!("{}.toml", pb.id), *file);
        }
    }

    #[test]
    fn list_and_find() {
        let l = list(Lang::En).unwrap();
        let ids: Vec<&str> = l.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "card-skimming",
                "admin-takeover",
                "web-shell",
                "log-audit",
                "readiness"
            ]
        );
        assert!(matches!(
            find_bundled("nope"),
            Err(Error::UnknownPlaybook(_))
        ));
        let cs = find_bundled("card-skimming").unwrap();
        assert_eq!(cs.steps.len(), 24);
        assert_eq!(cs.steps[0].id, "CS-01");
        for v in [
            "card_data_exposed",
            "personal_data_exposed",
            "unauthorized_access",
            "pfi_required",
            "eu_data_subjects",
            "affected_count",
        ] {
            assert!(cs.variable(v).is_some(), "{v}");
        }
    }

    #[test]
    fn appi_final_report_deadline_depends_on_unauthorized_access() {
        use crate::cond::{eval_opt, Truth};
        use std::collections::BTreeMap;
        for (pb, id) in [
            ("card-skimming", "CS-19"),
            ("admin-takeover", "AT-15"),
            ("web-shell", "WS-13"),
        ] {
            let p = find_bundled(pb).unwrap();
            let s = p.step(id).unwrap();
            let pick = |vars: &BTreeMap<String, String>| {
                s.deadlines
                    .iter()
                    .find(|d| eval_opt(d.when.as_deref(), vars) == Truth::True)
                    .map(|d| (d.offset, d.kind, d.rule.clone()))
                    .unwrap()
            };
            let mut vars = BTreeMap::new();
            // Undecided: the earlier of the two legal deadlines, labelled as such.
            let (days, kind, rule) = pick(&vars);
            assert_eq!((days, kind), (30, DeadlineKind::Hard), "{id}");
            assert!(
                rule.contains("安全側") && rule.contains("conservative"),
                "{id}: {rule}"
            );
            // Item 3: 60 days, the legal rule.
            vars.insert("unauthorized_access".to_string(), "true".to_string());
            let (days, _, rule) = pick(&vars);
            assert_eq!(days, 60, "{id}");
            assert!(
                rule.contains("8条2項") && !rule.contains("安全側"),
                "{id}: {rule}"
            );
            // Decided not item 3: 30 days is then the legal rule.
            vars.insert("unauthorized_access".to_string(), "false".to_string());
            let (days, _, rule) = pick(&vars);
            assert_eq!(days, 30, "{id}");
            assert!(
                rule.contains("8条2項") && !rule.contains("安全側"),
                "{id}: {rule}"
            );
        }
    }

    #[test]
    fn appi_preliminary_reports_and_visa_account_numbers_have_their_own_deadlines() {
        let one = |pb: &str, id: &str| {
            let p = find_bundled(pb).unwrap();
            let s = p.step(id).unwrap().clone();
            assert_eq!(s.deadlines.len(), 1, "{pb} {id}");
            s
        };
        // 速報: "promptly", the guidelines' 3-5 days: a soft T0 + 3 days, no condition of its own.
        for (pb, id) in [
            ("card-skimming", "CS-10"),
            ("admin-takeover", "AT-08"),
            ("web-shell", "WS-07"),
        ] {
            let d = &one(pb, id).deadlines[0];
            assert_eq!(
                (d.offset, d.unit, d.kind, d.when.as_deref()),
                (3, Unit::Days, DeadlineKind::Soft, None),
                "{pb} {id}"
            );
            assert!(d.rule.contains("8条1項"), "{pb} {id}");
        }
        // Visa: incident report 3 business days, account numbers 10, both from discovery.
        for (id, bd) in [("CS-13", 3), ("CS-24", 10)] {
            let s = one("card-skimming", id);
            let d = &s.deadlines[0];
            assert_eq!(
                (d.offset, d.unit, d.kind, &d.anchor),
                (
                    bd,
                    Unit::BusinessDays,
                    DeadlineKind::Hard,
                    &Anchor::Discovery
                ),
                "{id}"
            );
        }
    }
}
