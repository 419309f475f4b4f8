//! Case lifecycle tests: journal, deadlines, tampering, evidence, interactive next, reports.
//! Every test works in its own temporary directory and removes it.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use ecir_playbook::*;

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ecir-playbook-test-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn open(tmp: &TempDir, playbook: &str, discovered: &str) -> PathBuf {
    let dir = tmp.path().join("case");
    new_case(
        &dir,
        &NewCase {
            playbook,
            discovered,
            lang: Lang::En,
            tz: "Asia/Tokyo",
            by: "alice",
            at: Some(discovered),
        },
    )
    .unwrap();
    dir
}

fn step(dir: &Path, id: &str, status: StepStatus, at: &str) {
    apply_step(
        dir,
        &StepUpdate {
            step: id,
            status,
            note: None,
            evidence: vec![],
            by: "bob",
            at: Some(at),
        },
    )
    .unwrap();
}

fn row<'a>(s: &'a CaseStatus, id: &str) -> &'a StepStatusRow {
    s.steps.iter().find(|r| r.id == id).unwrap()
}

#[test]
fn new_case_journals_and_status_json_schema() {
    let tmp = TempDir::new("status");
    let dir = open(&tmp, "card-skimming", "2026-04-01T10:00:00+09:00");
    assert!(dir.join("journal.jsonl").exists());
    let st = status(&dir, Some("2026-04-02T10:00:00+09:00")).unwrap();
    let v = serde_json::to_value(&st).unwrap();
    assert_eq!(v["schema"], "ecir.case-status/1");
    assert_eq!(v["playbook"], "card-skimming");
    assert_eq!(v["discovered"], "2026-04-01T10:00:00+09:00");
    for s in v["steps"].as_array().unwrap() {
        for k in ["id", "phase", "status", "applies", "deadline", "overdue"] {
            assert!(s.get(k).is_some(), "{k} missing in {s}");
        }
    }
    // Undecided 確報: 30 days, rolled forward: 5/1 is a Friday -> 2026-05-01 24:00.
    assert_eq!(
        row(&st, "CS-19").deadline.as_deref(),
        Some("2026-05-02T00:00:00+09:00")
    );
    assert_eq!(st.next.first().map(String::as_str), Some("CS-01"));
    // A second new_case into the same directory is refused.
    let again = new_case(
        &dir,
        &NewCase {
            playbook: "card-skimming",
            discovered: "2026-04-01",
            lang: Lang::En,
            tz: "Asia/Tokyo",
            by: "x",
            at: None,
        },
    );
    assert!(matches!(again, Err(Error::Case(_))));
}

#[test]
fn deadlines_follow_variables_and_corrected_discovery() {
    let tmp = TempDir::new("deadlines");
    let dir = open(&tmp, "card-skimming", "2026-03-04T10:00:00+09:00");
    set_vars(
        &dir,
        &[
            "unauthorized_access=yes".into(),
            "card_data_exposed=true".into(),
        ],
        "alice",
        Some("2026-03-04T11:00:00+09:00"),
    )
    .unwrap();
    let st = status(&dir, Some("2026-03-05T00:00:00+09:00")).unwrap();
    // 60 days -> 5/3 (Sun, holiday) -> 5/4, 5/5, 5/6 振替休日 -> 5/7 24:00.
    assert_eq!(
        row(&st, "CS-19").deadline.as_deref(),
        Some("2026-05-08T00:00:00+09:00")
    );
    assert_eq!(st.variables["unauthorized_access"], "true");
    // Discovery corrected a day earlier: 60 days from 3/3 is 5/2 (Sat) -> 5/7 as well; use 2/20.
    correct_discovery(
        &dir,
        "2026-02-20 09:00",
        Some("earlier PSP e-mail found"),
        "alice",
        None,
    )
    .unwrap();
    let st = status(&dir, Some("2026-03-05T00:00:00+09:00")).unwrap();
    assert_eq!(st.discovered, "2026-02-20T09:00:00+09:00");
    // 2/20 + 60 = 4/21 (Tue).
    assert_eq!(
        row(&st, "CS-19").deadline.as_deref(),
        Some("2026-04-22T00:00:00+09:00")
    );
    // GDPR 72 h hard deadline, overdue once past and flagged.
    set_vars(&dir, &["eu_data_subjects=true".into()], "alice", None).unwrap();
    let st = status(&dir, Some("2026-02-23T09:00:01+09:00")).unwrap();
    assert!(row(&st, "CS-20").overdue);
    assert!(st.overdue_hard.contains(&"CS-20".to_string()));
    // PFI preliminary report: waits for pfi_engaged_at, then 5 business days (GW).
    set_vars(&dir, &["pfi_required=true".into()], "alice", None).unwrap();
    let st = status(&dir, Some("2026-04-28T16:00:00+09:00")).unwrap();
    assert_eq!(row(&st, "CS-21").deadline, None);
    assert_eq!(
        row(&st, "CS-21").deadline_waiting_for.as_deref(),
        Some("variable pfi_engaged_at")
    );
    set_vars(
        &dir,
        &["pfi_engaged_at=2026-04-28 15:00".into()],
        "alice",
        None,
    )
    .unwrap();
    let st = status(&dir, Some("2026-04-28T16:00:00+09:00")).unwrap();
    assert_eq!(
        row(&st, "CS-21").deadline.as_deref(),
        Some("2026-05-12T00:00:00+09:00")
    );
    // Bad values are refused.
    assert!(set_vars(&dir, &["affected_count=many".into()], "a", None).is_err());
    assert!(set_vars(&dir, &["pfi_required=perhaps".into()], "a", None).is_err());
}

fn instant(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

#[test]
fn day_deadlines_count_japanese_days_whatever_the_case_zone() {
    // The same instant of discovery, kept in UTC, Berlin and Tokyo: 11/21 05:00 in Tokyo.
    let mut dues: Vec<Vec<(String, Option<String>)>> = Vec::new();
    for (tz, t0) in [
        ("UTC", "2026-11-20 20:00"),
        ("Europe/Berlin", "2026-11-20 21:00"),
        ("Asia/Tokyo", "2026-11-21 05:00"),
    ] {
        let tmp = TempDir::new("tz");
        let dir = tmp.path().join("case");
        new_case(
            &dir,
            &NewCase {
                playbook: "card-skimming",
                discovered: t0,
                lang: Lang::En,
                tz,
                by: "alice",
                at: Some("2026-11-21T00:00:00Z"),
            },
        )
        .unwrap();
        set_vars(
            &dir,
            &["pfi_engaged_at=2026-11-21T00:00:00Z".into()],
            "alice",
            None,
        )
        .unwrap();
        let st = status(&dir, Some("2026-11-21T00:00:00Z")).unwrap();
        // APPI 確報 (conservative 30 days while undecided): day 1 is 11/22 in Tokyo, day 30
        // is 12/21 (Mon): 2026-12-21 24:00 JST in every zone.
        assert_eq!(
            instant(row(&st, "CS-19").deadline.as_deref().unwrap()),
            instant("2026-12-22T00:00:00+09:00"),
            "{tz}"
        );
        if tz == "UTC" {
            assert_eq!(
                row(&st, "CS-19").deadline_shown.as_deref(),
                Some("2026-12-21 15:00 UTC (2026-12-21 24:00 JST)")
            );
        }
        dues.push(
            st.steps
                .iter()
                .map(|r| {
                    (
                        r.id.clone(),
                        r.deadline.as_deref().map(|d| instant(d).to_rfc3339()),
                    )
                })
                .collect(),
        );
    }
    // Every deadline (hours, days, business days) falls at the same instant in all three.
    assert_eq!(dues[0], dues[1]);
    assert_eq!(dues[0], dues[2]);
}

#[test]
fn appi_and_brand_deadlines_show_while_conditions_are_undecided() {
    // Web shell, nothing decided yet: the APPI 速報 and 確報 deadlines are shown.
    let tmp = TempDir::new("ws-undecided");
    let dir = open(&tmp, "web-shell", "2026-11-20T03:00:00+09:00");
    let st = status(&dir, Some("2026-11-20T04:00:00+09:00")).unwrap();
    let ws07 = row(&st, "WS-07");
    assert!(ws07.applies);
    assert_eq!(ws07.deadline.as_deref(), Some("2026-11-24T00:00:00+09:00"));
    assert_eq!(ws07.deadline_kind, Some(DeadlineKind::Soft));
    // 30 days (conservative, undecided): 12/20 is a Sunday -> 12/21 24:00.
    let ws13 = row(&st, "WS-13");
    assert_eq!(ws13.deadline.as_deref(), Some("2026-12-22T00:00:00+09:00"));
    assert!(ws13
        .deadline_rule
        .as_deref()
        .unwrap()
        .contains("conservative"));
    assert_eq!(ws13.deadline_undecided, ["unauthorized_access"]);
    assert!(render_status(&st)
        .contains("APPI final report (確報) to the PPC [undecided: unauthorized_access; the conservative deadline is shown]"));
    set_vars(&dir, &["unauthorized_access=true".into()], "lead", None).unwrap();
    let st = status(&dir, Some("2026-11-20T04:00:00+09:00")).unwrap();
    assert!(row(&st, "WS-13").deadline_undecided.is_empty());
    // 60 days: 1/19 (Tue).
    assert_eq!(
        row(&st, "WS-13").deadline.as_deref(),
        Some("2027-01-20T00:00:00+09:00")
    );
    set_vars(
        &dir,
        &[
            "personal_data_exposed=false".into(),
            "card_data_exposed=false".into(),
        ],
        "lead",
        None,
    )
    .unwrap();
    let st = status(&dir, Some("2026-11-20T04:00:00+09:00")).unwrap();
    assert!(!row(&st, "WS-07").applies && !row(&st, "WS-13").applies);

    // Admin takeover with personal data exposed: 速報 (AT-08) and 確報 (AT-15) apart.
    let tmp = TempDir::new("at-reports");
    let dir = open(&tmp, "admin-takeover", "2026-11-20T03:00:00+09:00");
    set_vars(
        &dir,
        &[
            "personal_data_exposed=true".into(),
            "unauthorized_access=true".into(),
        ],
        "lead",
        None,
    )
    .unwrap();
    let st = status(&dir, Some("2026-11-20T04:00:00+09:00")).unwrap();
    assert_eq!(
        row(&st, "AT-08").deadline.as_deref(),
        Some("2026-11-24T00:00:00+09:00")
    );
    assert_eq!(
        row(&st, "AT-15").deadline.as_deref(),
        Some("2027-01-20T00:00:00+09:00")
    );

    // Card skimming: Visa's account numbers get their own 10-business-day deadline.
    let tmp = TempDir::new("cs-visa");
    let dir = open(&tmp, "card-skimming", "2026-11-20T03:00:00+09:00");
    let st = status(&dir, Some("2026-11-20T04:00:00+09:00")).unwrap();
    // 3 BD from Fri 11/20: 11/24 (11/23 勤労感謝の日), 11/25, 11/26.
    assert_eq!(
        row(&st, "CS-13").deadline.as_deref(),
        Some("2026-11-27T00:00:00+09:00")
    );
    // 10 BD: 11/24, 25, 26, 27, 30, 12/1, 2, 3, 4, 7.
    assert_eq!(
        row(&st, "CS-24").deadline.as_deref(),
        Some("2026-12-08T00:00:00+09:00")
    );
    assert_eq!(row(&st, "CS-24").deadline_kind, Some(DeadlineKind::Hard));
}

#[test]
fn conditions_hide_steps_and_completion_is_met_or_late() {
    let tmp = TempDir::new("cond");
    let dir = open(&tmp, "card-skimming", "2026-06-01T09:00:00+09:00");
    let st = status(&dir, Some("2026-06-01T09:00:00+09:00")).unwrap();
    assert!(
        row(&st, "CS-20").applies,
        "undecided applies conservatively"
    );
    set_vars(&dir, &["eu_data_subjects=false".into()], "a", None).unwrap();
    let st = status(&dir, Some("2026-06-01T09:00:00+09:00")).unwrap();
    assert!(!row(&st, "CS-20").applies);
    // CS-05 soft 24 h: done in time is not late; CS-10 done late is late.
    step(&dir, "CS-01", StepStatus::Done, "2026-06-01T09:10:00+09:00");
    step(&dir, "CS-05", StepStatus::Done, "2026-06-01T12:00:00+09:00");
    step(&dir, "CS-10", StepStatus::Done, "2026-06-10T12:00:00+09:00");
    let st = status(&dir, Some("2026-06-11T00:00:00+09:00")).unwrap();
    assert!(!row(&st, "CS-05").late);
    assert!(row(&st, "CS-10").late);
    assert_eq!(
        row(&st, "CS-05").completed_at.as_deref(),
        Some("2026-06-01T12:00:00+09:00")
    );
    let detect = st.phases.iter().find(|p| p.phase == Phase::Detect).unwrap();
    assert_eq!(detect.resolved, 1);
    assert!(matches!(
        apply_step(
            &dir,
            &StepUpdate {
                step: "ZZ-99",
                status: StepStatus::Done,
                note: None,
                evidence: vec![],
                by: "b",
                at: None
            }
        ),
        Err(Error::UnknownStep(_))
    ));
}

fn journal_lines(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(dir: &Path, lines: &[String]) {
    fs::write(
        dir.join("journal.jsonl"),
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn sample_case(tmp: &TempDir) -> PathBuf {
    let dir = open(tmp, "web-shell", "2026-11-20T08:00:00+09:00");
    step(&dir, "WS-01", StepStatus::Done, "2026-11-20T08:05:00+09:00");
    add_note(&dir, Some("WS-02"), "snapshot requested", "carol", None).unwrap();
    step(&dir, "WS-02", StepStatus::Done, "2026-11-20T09:00:00+09:00");
    set_vars(&dir, &["personal_data_exposed=false".into()], "carol", None).unwrap();
    dir
}

#[test]
fn verify_detects_each_kind_of_tampering() {
    let tmp = TempDir::new("tamper");
    let dir = sample_case(&tmp);
    let ok = verify(&dir).unwrap();
    assert_eq!(ok.records, 5);
    let orig = journal_lines(&dir);

    let expect = |lines: Vec<String>, needle: &str| {
        write_lines(&dir, &lines);
        match verify(&dir) {
            Err(Error::Tampered(m)) => assert!(m.contains(needle), "{m} should contain {needle}"),
            other => panic!("expected tampering, got {other:?}"),
        }
        write_lines(&dir, &orig);
        verify(&dir).unwrap();
    };
    // Edit record 3's text.
    let mut edited = orig.clone();
    edited[2] = edited[2].replace("snapshot requested", "nothing to see");
    expect(edited, "record 3 (line 3) was edited");
    // Remove record 2.
    let mut removed = orig.clone();
    removed.remove(1);
    expect(removed, "line 2 holds record 3");
    // Reorder records 2 and 3.
    let mut reordered = orig.clone();
    reordered.swap(1, 2);
    expect(reordered, "line 2 holds record 3");
    // Insert a copy of record 2 after itself.
    let mut inserted = orig.clone();
    inserted.insert(2, orig[1].clone());
    expect(inserted, "line 3 holds record 2");
    // Remove the last record.
    let mut truncated = orig.clone();
    truncated.pop();
    expect(truncated, "journal.head");
    // Forge a record with a fresh hash but a wrong link: renumbering everything is caught by prev.
    let mut relinked = orig.clone();
    let mut rec: serde_json::Value = serde_json::from_str(&relinked[3]).unwrap();
    rec["prev"] = serde_json::json!("00");
    relinked[3] = rec.to_string();
    expect(relinked, "record 4");
    // The case state refuses a broken journal too.
    let mut edited = orig.clone();
    edited[1] = edited[1].replace("done", "skipped");
    write_lines(&dir, &edited);
    assert!(matches!(state(&dir), Err(Error::Tampered(_))));
    write_lines(&dir, &orig);
}

#[test]
fn evidence_is_copied_with_hash_and_tampering_detected() {
    let tmp = TempDir::new("evidence");
    let dir = open(&tmp, "admin-takeover", "2026-11-20T08:00:00+09:00");
    let src = tmp.path().join("auth.log");
    let content = b"Nov 20 07:59:01 sshd[1]: Accepted password for admin from 203.0.113.9\n";
    fs::write(&src, content).unwrap();
    let before = fs::metadata(&src).unwrap().modified().unwrap();
    let rec = apply_step(
        &dir,
        &StepUpdate {
            step: "AT-02",
            status: StepStatus::Done,
            note: Some("exported; test card 4111 1111 1111 1111 seen in a log"),
            evidence: vec![src.clone()],
            by: "dave",
            at: None,
        },
    )
    .unwrap();
    // Source untouched.
    assert_eq!(fs::read(&src).unwrap(), content);
    assert_eq!(fs::metadata(&src).unwrap().modified().unwrap(), before);
    let ecir_playbook::journal::What::Step { evidence, note, .. } = &rec.what else {
        panic!()
    };
    assert_eq!(
        note.as_deref(),
        Some("exported; test card 4111 11** **** 1111 seen in a log")
    );
    let e = &evidence[0];
    let expected = ecir_input::sha256_hex(content);
    assert_eq!(e.sha256, expected);
    assert_eq!(fs::read(dir.join(&e.stored)).unwrap(), content);
    assert!(!fs::read_to_string(dir.join("journal.jsonl"))
        .unwrap()
        .contains("4111 1111 1111 1111"));
    let v = verify(&dir).unwrap();
    assert_eq!(v.evidence_files, 1);
    // Tamper with the copy.
    fs::write(dir.join(&e.stored), b"edited").unwrap();
    match verify(&dir) {
        Err(Error::Tampered(m)) => {
            assert!(m.contains(&e.stored) && m.contains("was changed"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    // Remove it.
    fs::remove_file(dir.join(&e.stored)).unwrap();
    assert!(matches!(verify(&dir), Err(Error::Tampered(m)) if m.contains("missing")));
    // Changing the playbook copy is detected too.
    fs::write(dir.join(&e.stored), content).unwrap();
    verify(&dir).unwrap();
    let pb = dir.join("playbook.toml");
    let text = fs::read_to_string(&pb).unwrap();
    fs::write(&pb, text.replace("Post-incident review", "Whatever")).unwrap();
    assert!(matches!(verify(&dir), Err(Error::Tampered(m)) if m.contains("playbook.toml")));
}

#[test]
fn interactive_next_reads_answers() {
    let tmp = TempDir::new("next");
    let dir = open(&tmp, "log-audit", "2026-11-01T09:00:00+09:00");
    let ev = tmp.path().join("sources.csv");
    fs::write(&ev, "source,owner\nweb,ops\n").unwrap();
    let answers = format!("note inventory started with 5555555555554444 on file\nattach {}\nwhat?\ndone\nskip\nquit\n", ev.display());
    let mut out = Vec::new();
    let res = run_next(&dir, &mut Cursor::new(answers), &mut out, "erin").unwrap();
    assert_eq!(
        res,
        NextOutcome {
            resolved: vec!["LA-01".into(), "LA-02".into()],
            finished: false
        }
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("[LA-01] Inventory log sources"));
    assert!(text.contains("Evidence stored: evidence/"));
    assert!(text.contains("Unrecognised answer."));
    assert!(text.contains("[LA-03]"));
    let st = state(&dir).unwrap();
    assert_eq!(st.steps["LA-01"].status, StepStatus::Done);
    assert_eq!(
        st.steps["LA-01"].notes,
        vec!["inventory started with 555555******4444 on file".to_string()]
    );
    assert_eq!(st.steps["LA-01"].evidence.len(), 1);
    assert_eq!(st.steps["LA-02"].status, StepStatus::Skipped);
    // End of input ends the session; 'na' on everything else finishes the playbook.
    let mut out = Vec::new();
    let res = run_next(&dir, &mut Cursor::new("na\n".repeat(20)), &mut out, "erin").unwrap();
    assert!(res.finished);
    assert!(status(&dir, None).unwrap().next.is_empty());
    verify(&dir).unwrap();
}

#[test]
fn attach_report_sets_variables_and_recommends_playbooks() {
    let tmp = TempDir::new("report");
    let dir = open(&tmp, "card-skimming", "2026-11-20T08:00:00+09:00");
    let report = serde_json::json!({
        "schema": "ecir.report/1",
        "findings": [
            {"id": "F0001", "category": "admin-compromise", "severity": "critical", "playbook": "admin-takeover"},
            {"id": "F0002", "category": "card-skimming", "severity": "high", "playbook": "card-skimming"},
            {"id": "F0003", "category": "recon", "severity": "low"}
        ],
        "exposure": {"start": "2026-11-03T03:10:00+09:00", "end": "2026-11-20T10:00:00+09:00", "basis": ["F0002"], "completed_orders": 412, "distinct_customer_ips": 398}
    });
    let bytes = serde_json::to_vec(&report).unwrap();
    attach_report(&dir, &bytes, "frank", None).unwrap();
    let st = status(&dir, None).unwrap();
    assert_eq!(st.variables["card_data_exposed"], "true");
    assert_eq!(st.variables["unauthorized_access"], "true");
    assert_eq!(st.variables["exposure_start"], "2026-11-03T03:10:00+09:00");
    assert_eq!(st.variables["completed_orders"], "412");
    assert_eq!(st.recommended_playbooks, vec!["admin-takeover".to_string()]);
    // 確報 is now 60 days.
    assert_eq!(
        row(&st, "CS-19").deadline.as_deref(),
        Some("2027-01-20T00:00:00+09:00")
    );
    let v = verify(&dir).unwrap();
    assert_eq!(v.evidence_files, 1);
    let text = fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    assert!(text.contains(&ecir_input::sha256_hex(&bytes)));
    // Only admin-compromise at low severity: no unauthorized_access.
    let tmp2 = TempDir::new("report2");
    let dir2 = open(&tmp2, "card-skimming", "2026-11-20T08:00:00+09:00");
    let low = serde_json::json!({"schema": "ecir.report/1", "findings": [{"category": "webshell", "severity": "medium"}]});
    attach_report(&dir2, low.to_string().as_bytes(), "f", None).unwrap();
    assert!(!status(&dir2, None)
        .unwrap()
        .variables
        .contains_key("unauthorized_access"));
    assert!(attach_report(&dir2, b"{\"schema\":\"other\"}", "f", None).is_err());
}

#[test]
fn attach_report_fills_only_unset_variables_and_records_disagreements() {
    let tmp = TempDir::new("report-keep");
    let dir = open(&tmp, "card-skimming", "2026-11-20T03:00:00+09:00");
    set_vars(
        &dir,
        &[
            "unauthorized_access=false".into(),
            "completed_orders=500".into(),
            "exposure_start=2026-10-01 00:00".into(),
        ],
        "lawyer",
        Some("2026-11-20T04:00:00+09:00"),
    )
    .unwrap();
    let before = status(&dir, Some("2026-11-20T05:00:00+09:00")).unwrap();
    let report = serde_json::json!({
        "schema": "ecir.report/1",
        "findings": [
            {"category": "admin-compromise", "severity": "critical"},
            {"category": "card-skimming", "severity": "high"}
        ],
        "exposure": {"start": "2026-11-03T02:52:42+09:00", "end": "2026-11-20T02:00:00+09:00", "completed_orders": 13}
    });
    let rec = attach_report(&dir, report.to_string().as_bytes(), "bob", None).unwrap();
    let st = status(&dir, Some("2026-11-20T05:00:00+09:00")).unwrap();
    // The lawyer's values stay; only unset variables were filled.
    assert_eq!(st.variables["unauthorized_access"], "false");
    assert_eq!(st.variables["completed_orders"], "500");
    assert_eq!(st.variables["exposure_start"], "2026-10-01T00:00:00+09:00");
    assert_eq!(st.variables["card_data_exposed"], "true");
    assert_eq!(st.variables["exposure_end"], "2026-11-20T02:00:00+09:00");
    assert_eq!(
        row(&st, "CS-19").deadline,
        row(&before, "CS-19").deadline,
        "the legal deadline did not move"
    );
    // The user is told, and the record keeps what the report said.
    let notes = report_var_notes(&rec, Lang::En);
    assert_eq!(
        notes,
        [
            "set from the scan report: card_data_exposed=true, exposure_end=2026-11-20T02:00:00+09:00",
            "completed_orders: the scan report says 13; kept 500 (set by lawyer in record 2)",
            "exposure_start: the scan report says 2026-11-03T02:52:42+09:00; kept 2026-10-01T00:00:00+09:00 (set by lawyer in record 2)",
            "unauthorized_access: the scan report says true; kept false (set by lawyer in record 2)",
        ]
    );
    let journal = fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"not_applied\""), "{journal}");
    verify(&dir).unwrap();
    // The timeline shows every variable change and what was not applied.
    let md = case_report(&dir, ReportFormat::Markdown).unwrap();
    assert!(
        md.contains("set card_data_exposed=true, exposure_end="),
        "{md}"
    );
    assert!(
        md.contains(
            "unauthorized_access not applied (the report says true; kept false set by lawyer)"
        ),
        "{md}"
    );
    // A second identical report changes nothing and disagrees with the same values.
    let rec2 = attach_report(&dir, report.to_string().as_bytes(), "bob", None).unwrap();
    let notes2 = report_var_notes(&rec2, Lang::En);
    assert_eq!(notes2.len(), 3, "{notes2:?}");
    assert!(notes2.iter().all(|n| !n.starts_with("set from")));
}

#[test]
fn card_numbers_and_security_codes_never_reach_the_journal() {
    let tmp = TempDir::new("mask");
    let dir = open(&tmp, "card-skimming", "2026-11-20T03:00:00+09:00");
    add_note(
        &dir,
        None,
        "f ４１１１１１１１１１１１１１１１ g 4111.1111.1111.1111 c cc=4111111111111111&cvv=123",
        "scribe",
        None,
    )
    .unwrap();
    set_vars(
        &dir,
        &[
            "ppc_other=カード番号５５５５５５５５５５５５４４４４、セキュリティコード：１２３"
                .into(),
        ],
        "scribe",
        None,
    )
    .unwrap();
    let journal = fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    for clear in [
        "４１１１１１１１１１１１１１１１",
        "4111.1111.1111.1111",
        "4111111111111111",
        "cvv=123",
        "５５５５５５５５５５５５４４４４",
        "：１２３",
    ] {
        assert!(!journal.contains(clear), "{clear} in {journal}");
    }
    assert!(journal.contains(
        "f ４１１１１１******１１１１ g 4111.11**.****.1111 c cc=411111******1111&cvv=***"
    ));
    assert!(journal.contains("カード番号５５５５５５******４４４４、セキュリティコード：***"));
    verify(&dir).unwrap();
}

#[test]
fn case_report_markdown_and_escaped_html() {
    let tmp = TempDir::new("casereport");
    let dir = open(&tmp, "card-skimming", "2026-11-20T08:00:00+09:00");
    set_vars(
        &dir,
        &[
            "card_data_exposed=true".into(),
            "affected_count=120".into(),
            "ppc_cause=<script>alert(1)</script> SQLi in plugin".into(),
        ],
        "alice",
        None,
    )
    .unwrap();
    step(&dir, "CS-01", StepStatus::Done, "2026-11-20T08:10:00+09:00");
    let md = case_report(&dir, ReportFormat::Markdown).unwrap();
    for needle in [
        "Timeline",
        "alice",
        "bob",
        "CS-01: done",
        "概要",
        "本人の数",
        "| 3. 本人の数 | 120 |",
        "原因",
        "二次被害",
        "本人への対応の実施状況",
        "公表の実施状況",
        "再発防止のための措置",
        "その他参考となる事項",
        "APPI final report",
    ] {
        assert!(md.contains(needle), "markdown lacks {needle}");
    }
    let html = case_report(&dir, ReportFormat::Html).unwrap();
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.starts_with("<!DOCTYPE html>"));
    // A tampered case gives no report.
    let mut lines = journal_lines(&dir);
    lines[1] = lines[1].replace("120", "12");
    write_lines(&dir, &lines);
    assert!(matches!(
        case_report(&dir, ReportFormat::Markdown),
        Err(Error::Tampered(_))
    ));
}

/// Runs `f` on a thread and fails (rather than hangs) when it does not return within ten
/// seconds: the files below would block a plain read forever.
#[cfg(unix)]
fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("blocked reading a file that is not a regular file")
}

#[cfg(unix)]
fn mkfifo(p: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", p.display());
}

/// A playbook named by path, and a case's journal, head, playbook copy and evidence copies,
/// are read only when they are regular files (and, read whole, within their size cap): a
/// FIFO or a device is refused at once with an error naming it, never read or waited on.
#[cfg(unix)]
#[test]
fn files_that_are_not_regular_are_refused_without_blocking() {
    let tmp = TempDir::new("bounded");
    // Playbooks by path.
    let fifo = tmp.path().join("pb.toml");
    mkfifo(&fifo);
    let p = fifo.to_str().unwrap().to_string();
    let e = within(move || load(&p)).unwrap_err();
    assert!(
        matches!(&e, Error::Read(_)) && e.to_string().contains("not a regular file (a FIFO)"),
        "{e}"
    );
    assert!(
        e.to_string().contains("pb.toml") && e.hint().is_some(),
        "{e}"
    );
    let e = within(|| load("/dev/zero")).unwrap_err();
    assert!(
        e.to_string().contains("/dev/zero: not a regular file"),
        "{e}"
    );
    let big = tmp.path().join("big.toml");
    fs::File::create(&big)
        .unwrap()
        .set_len(ecir_input::CONFIG_LIMIT + 1)
        .unwrap();
    let e = load(big.to_str().unwrap()).unwrap_err();
    assert!(
        e.to_string().contains("larger than the limit of 16 MiB"),
        "{e}"
    );
    let e = new_case(
        &tmp.path().join("never"),
        &NewCase {
            playbook: "/dev/zero",
            discovered: "2026-11-20T08:00:00+09:00",
            lang: Lang::En,
            tz: "Asia/Tokyo",
            by: "alice",
            at: None,
        },
    )
    .unwrap_err();
    assert!(matches!(e, Error::Read(_)), "{e}");

    // A case whose files are swapped for FIFOs, one at a time.
    let src = tmp.path().join("auth.log");
    fs::write(&src, "Nov 20 07:59:01 sshd[1]: Accepted password\n").unwrap();
    let dir = open(&tmp, "admin-takeover", "2026-11-20T08:00:00+09:00");
    let rec = add_evidence(&dir, Some("AT-02"), &src, "dave", None).unwrap();
    let journal::What::Evidence { file, .. } = &rec.what else {
        panic!()
    };
    verify(&dir).unwrap();
    let swap = |name: &str| {
        let p = dir.join(name);
        let keep = tmp.path().join("kept");
        fs::rename(&p, &keep).unwrap();
        mkfifo(&p);
        let d = dir.clone();
        let got = within(move || (verify(&d).map(|_| ()), state(&d).map(|_| ())));
        fs::remove_file(&p).unwrap();
        fs::rename(&keep, &p).unwrap();
        got
    };
    let (v, s) = swap("journal.jsonl");
    let v = v.unwrap_err();
    assert!(matches!(&v, Error::Read(_)), "{v}");
    assert!(
        v.to_string().contains("journal.jsonl: not a regular file"),
        "{v}"
    );
    assert!(matches!(s, Err(Error::Read(_))), "{s:?}");
    let (v, _) = swap("journal.head");
    assert!(
        matches!(&v, Err(Error::Tampered(m)) if m.contains("journal.head cannot be read: not a regular file")),
        "{v:?}"
    );
    let (v, s) = swap("playbook.toml");
    assert!(
        matches!(&v, Err(Error::Tampered(m)) if m.contains("playbook.toml cannot be read: not a regular file")),
        "{v:?}"
    );
    // Every command checks the playbook copy as `verify` does.
    assert_eq!(format!("{s:?}"), format!("{v:?}"));
    let (v, _) = swap(&file.stored);
    assert!(
        matches!(&v, Err(Error::Tampered(m)) if m.contains(&file.stored) && m.contains("not a regular file")),
        "{v:?}"
    );
    verify(&dir).unwrap();
}

/// Any character a terminal would obey or reorder by: no output may carry one raw (line
/// breaks and tabs of the layout aside).
fn raw_control(s: &str) -> Option<char> {
    s.chars()
        .find(|&c| c != '\n' && c != '\t' && ecir_model::text::is_unsafe_char(c))
}

#[test]
fn notes_values_and_file_names_with_controls_are_escaped_in_text_outputs() {
    let tmp = TempDir::new("controls");
    let dir = open(&tmp, "card-skimming", "2026-11-20T08:00:00+09:00");
    let link = "\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\";
    add_note(
        &dir,
        Some("CS-01"),
        &format!("see {link} \u{1b}[2J\u{9b}1m\u{202e}txt.exe\rforged"),
        "alice\u{1b}[31m",
        None,
    )
    .unwrap();
    set_vars(
        &dir,
        &["ppc_cause=plugin \u{1b}[5mSQLi\u{7}".to_string()],
        "bob",
        None,
    )
    .unwrap();
    let evidence = tmp.path().join("shell\u{1b}[31m.php");
    fs::write(&evidence, b"<?php eval($_POST[1]);").unwrap();
    add_evidence(&dir, Some("CS-01"), &evidence, "bob", None).unwrap();
    let md = case_report(&dir, ReportFormat::Markdown).unwrap();
    assert_eq!(raw_control(&md), None, "{md}");
    // (`[` escaped too: no text opens a Markdown link.)
    for shown in [
        "\\\\x1b]8;;http://x\\\\x1b\\\\link",
        "\\\\x1b\\[2J\\\\x9b1m\\\\u{202e}txt.exe\\\\x0dforged",
        "alice\\\\x1b\\[31m",
        "plugin \\\\x1b\\[5mSQLi\\\\x07",
        "shell\\\\x1b\\[31m.php",
    ] {
        assert!(md.contains(shown), "{shown} not in {md}");
    }
    let html = case_report(&dir, ReportFormat::Html).unwrap();
    assert_eq!(raw_control(&html), None);
    let st = status(&dir, Some("2026-11-21T08:00:00+09:00")).unwrap();
    assert_eq!(raw_control(&render_status(&st)), None);
    let mut out = Vec::new();
    let mut input = Cursor::new(b"note \x1b]0;title\x07 more\nquit\n".to_vec());
    run_next(&dir, &mut input, &mut out, "carol").unwrap();
    assert_eq!(raw_control(&String::from_utf8(out).unwrap()), None);
    let md = case_report(&dir, ReportFormat::Markdown).unwrap();
    assert!(md.contains("\\\\x1b]0;title\\\\x07 more"), "{md}");
}

/// A forged journal (hashes recomputed) whose evidence names carry C1 controls and bidi
/// overrides: what `verify` says about it reaches the terminal with them escaped.
#[test]
fn a_forged_journal_cannot_put_controls_in_what_verify_prints() {
    let tmp = TempDir::new("forged-controls");
    let dir = open(&tmp, "web-shell", "2026-11-20T08:00:00+09:00");
    let src = tmp.path().join("access.log");
    fs::write(&src, b"x\n").unwrap();
    add_evidence(&dir, Some("WS-01"), &src, "bob", None).unwrap();
    let mut lines = journal_lines(&dir);
    let last = lines.len() - 1;
    let mut rec: journal::Record = serde_json::from_str(&lines[last]).unwrap();
    let forged = "evidence/\u{9b}2J\u{85}\u{202e}gpj.exe\u{2066}";
    match &mut rec.what {
        journal::What::Evidence { file, .. } => file.stored = forged.into(),
        other => panic!("{other:?}"),
    }
    rec.hash = rec.compute_hash();
    lines[last] = serde_json::to_string(&rec).unwrap();
    write_lines(&dir, &lines);
    fs::write(
        dir.join("journal.head"),
        format!("{} {}\n", rec.seq, rec.hash),
    )
    .unwrap();
    match verify(&dir) {
        Err(Error::Tampered(m)) => {
            assert_eq!(raw_control(&m), None, "{m:?}");
            assert!(m.contains("\\x9b2J\\x85\\u{202e}gpj.exe\\u{2066}"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // The head file is the forger's too.
    let head = format!("9\u{9b}\u{202e} {}\n", rec.hash);
    fs::write(dir.join("journal.head"), head).unwrap();
    match verify(&dir) {
        Err(Error::Tampered(m)) => assert_eq!(raw_control(&m), None, "{m:?}"),
        other => panic!("{other:?}"),
    }
}

/// A forged journal whose evidence record names a file outside the case, with that file's
/// true hash: verify refuses the name instead of reading (and vouching for) the file.
#[test]
fn a_forged_journal_cannot_make_verify_read_outside_the_case() {
    let tmp = TempDir::new("forged-outside");
    let dir = open(&tmp, "web-shell", "2026-11-20T08:00:00+09:00");
    let src = tmp.path().join("access.log");
    fs::write(&src, b"x\n").unwrap();
    add_evidence(&dir, Some("WS-01"), &src, "bob", None).unwrap();
    let outside = tmp.path().join("outside.txt");
    fs::write(&outside, b"x\n").unwrap();
    for forged in [
        "evidence/../../outside.txt".to_string(),
        outside.display().to_string(),
        "evidence/".to_string(),
    ] {
        let mut lines = journal_lines(&dir);
        let last = lines.len() - 1;
        let mut rec: journal::Record = serde_json::from_str(&lines[last]).unwrap();
        match &mut rec.what {
            journal::What::Evidence { file, .. } => file.stored = forged.clone(),
            other => panic!("{other:?}"),
        }
        rec.hash = rec.compute_hash();
        lines[last] = serde_json::to_string(&rec).unwrap();
        write_lines(&dir, &lines);
        fs::write(
            dir.join("journal.head"),
            format!("{} {}\n", rec.seq, rec.hash),
        )
        .unwrap();
        match verify(&dir) {
            Err(Error::Tampered(m)) => {
                assert!(m.contains("not a file directly under evidence/"), "{m}")
            }
            other => panic!("{forged}: {other:?}"),
        }
    }
}

#[test]
fn a_playbook_with_controls_is_rejected_by_lint_load_and_cacao_import() {
    let tmp = TempDir::new("pbcontrols");
    let src = find_source("card-skimming").replacen(
        "title_en = \"",
        "title_en = \"\\u001b]8;;http://x\\u001b\\\\link\\u001b]8;;\\u001b\\\\ ",
        1,
    );
    let p = lint("hostile.toml", &src);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].message
            .starts_with("`title_en` contains the control character U+001B"),
        "{}",
        p[0].message
    );
    let file = tmp.path().join("hostile.toml");
    fs::write(&file, &src).unwrap();
    assert!(matches!(
        load(file.to_str().unwrap()),
        Err(Error::Playbook(_))
    ));
    let dir = tmp.path().join("case");
    assert!(matches!(
        new_case(
            &dir,
            &NewCase {
                playbook: file.to_str().unwrap(),
                discovered: "2026-11-20T08:00:00+09:00",
                lang: Lang::En,
                tz: "Asia/Tokyo",
                by: "alice",
                at: None,
            },
        ),
        Err(Error::Playbook(_))
    ));
    // A CACAO document carrying the same title does not import either.
    let pb = find_bundled("card-skimming").unwrap();
    let text = serde_json::to_string(&export_cacao(&pb)).unwrap();
    assert!(import_cacao(&text).is_ok());
    let quoted = serde_json::to_string(&pb.title.en).unwrap();
    assert!(text.contains(&quoted));
    let bad = text.replace(&quoted, &quoted.replacen('"', "\"\\u202e", 1));
    match import_cacao(&bad) {
        Err(Error::Playbook(p)) => assert!(
            p.iter()
                .any(|p| p.message.contains("contains the control character")),
            "{p:?}"
        ),
        other => panic!("imported: {:?}", other.map(|(p, _)| p.id)),
    }
}

fn find_source(id: &str) -> String {
    bundled()
        .iter()
        .find(|(f, _)| f.strip_suffix(".toml") == Some(id))
        .map(|(_, s)| s.to_string())
        .unwrap()
}

#[test]
fn an_edited_playbook_copy_is_refused_by_state_status_and_appends() {
    let tmp = TempDir::new("edited-playbook");
    let dir = sample_case(&tmp);
    let copy = dir.join("playbook.toml");
    let orig = fs::read_to_string(&copy).unwrap();
    fs::write(&copy, orig.replacen("offset = ", "offset = 1", 1)).unwrap();
    let refused = |r: Result<(), Error>| match r {
        Err(Error::Tampered(m)) => {
            assert!(
                m.contains("playbook.toml was changed after record 1"),
                "{m}"
            )
        }
        other => panic!("expected the edited playbook to be refused, got {other:?}"),
    };
    refused(state(&dir).map(|_| ()));
    refused(status(&dir, None).map(|_| ()));
    refused(add_note(&dir, None, "x", "carol", None).map(|_| ()));
    refused(case_report(&dir, ReportFormat::Markdown).map(|_| ()));
    let e = state(&dir).unwrap_err();
    assert!(e.hint().is_some_and(|h| h.contains("ecir case verify")));
    assert_eq!(verify(&dir).unwrap_err().to_string(), e.to_string());
    fs::write(&copy, orig).unwrap();
    assert_eq!(verify(&dir).unwrap().records, 5);
}

/// Appends and reads from several threads at once (each opens the case itself, as separate
/// processes do): none fails, and the chain and head hold with every record.
#[test]
fn concurrent_appends_and_reads_keep_the_chain() {
    let tmp = TempDir::new("concurrent");
    let dir = open(&tmp, "card-skimming", "2026-11-20T03:00:00+09:00");
    let threads: Vec<_> = (0..8)
        .map(|k| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                for i in 0..5 {
                    add_note(&dir, None, &format!("note {k}.{i}"), "lead", None)?;
                    status(&dir, None)?;
                    verify(&dir)?;
                }
                set_vars(&dir, &[format!("completed_orders={k}")], "scribe", None)?;
                Ok::<(), Error>(())
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let v = verify(&dir).unwrap();
    assert_eq!(v.records, 1 + 8 * 5 + 8);
    let recs = journal::check_chain(&dir).unwrap();
    assert!(recs.iter().enumerate().all(|(i, r)| r.seq == i as u64 + 1));
    // No temporary head is left behind.
    assert!(!dir.join("journal.head.tmp").exists());
}

/// A hard deadline of a step skipped or marked not applicable is shown as such by `status`,
/// as the incident record shows it, never as met.
#[test]
fn a_skipped_or_not_applicable_deadline_is_not_shown_as_met() {
    let tmp = TempDir::new("skipped-deadline");
    let dir = open(&tmp, "card-skimming", "2026-11-20T03:00:00+09:00");
    set_vars(&dir, &["eu_data_subjects=true".into()], "a", None).unwrap();
    step(
        &dir,
        "CS-20",
        StepStatus::NotApplicable,
        "2026-11-26T10:00:00+09:00",
    );
    step(
        &dir,
        "CS-05",
        StepStatus::Skipped,
        "2026-11-26T10:00:00+09:00",
    );
    step(&dir, "CS-01", StepStatus::Done, "2026-11-20T03:10:00+09:00");
    let st = status(&dir, Some("2026-11-27T10:00:00+09:00")).unwrap();
    let text = render_status(&st);
    let line = |id: &str| {
        text.lines()
            .find(|l| l.contains(&format!("{id} ")) && l.contains('['))
            .unwrap_or_else(|| panic!("no deadline line for {id}:\n{text}"))
            .to_string()
    };
    assert!(
        line("CS-20").contains("(not applicable)"),
        "{}",
        line("CS-20")
    );
    assert!(line("CS-05").contains("(skipped)"), "{}", line("CS-05"));
    assert!(!text.contains("(met)"), "{text}");
    let report = case_report(&dir, ReportFormat::Markdown).unwrap();
    assert!(!report.contains("| met |"), "{report}");
}

/// The step ids of the rows of `table` (a Markdown table whose first column is the step),
/// after the heading `heading`, in order.
fn table_ids(md: &str, heading: &str) -> Vec<String> {
    md.split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("no {heading} in {md}"))
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_start_matches("| ")
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn deadlines_are_listed_by_due_time_unknown_ones_last() {
    let tmp = TempDir::new("by-due");
    let dir = open(&tmp, "card-skimming", "2026-11-20T10:00:00+09:00");
    let st = status(&dir, Some("2026-11-20T11:00:00+09:00")).unwrap();
    // CS-08 and CS-20 fall at the same instant (T0 + 72 h): playbook order between them.
    let want = [
        "CS-05", "CS-08", "CS-20", "CS-10", "CS-13", "CS-24", "CS-19", "CS-21", "CS-23",
    ];
    let text = render_status(&st);
    let listed: Vec<&str> = text
        .split("Deadlines:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| l[3..].split(' ').next().unwrap())
        .collect();
    assert_eq!(listed, want, "{text}");
    let ids: Vec<&str> = st
        .deadlines_by_due()
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(ids, want);
    let md = case_report(&dir, ReportFormat::Markdown).unwrap();
    assert_eq!(table_ids(&md, "## Deadlines"), want, "{md}");
    // Overdue hard deadlines are named by due time too.
    let st = status(&dir, Some("2026-12-30T10:00:00+09:00")).unwrap();
    assert_eq!(st.overdue_hard, ["CS-20", "CS-13", "CS-24", "CS-19"]);
}

#[test]
fn playbook_problems_display_on_one_line_each_naming_the_file() {
    let tmp = TempDir::new("pb-problems");
    let src = find_source("readiness").replace("phase = \"prepare\"", "phase = \"bogus\"");
    let file = tmp.path().join("mine.toml");
    fs::write(&file, &src).unwrap();
    let e = new_case(
        &tmp.path().join("case"),
        &NewCase {
            playbook: file.to_str().unwrap(),
            discovered: "2026-11-20T10:00:00+09:00",
            lang: Lang::En,
            tz: "Asia/Tokyo",
            by: "alice",
            at: None,
        },
    )
    .unwrap_err();
    let Error::Playbook(problems) = &e else {
        panic!("{e:?}")
    };
    assert!(problems.len() > 1, "{problems:?}");
    let text = e.to_string();
    assert!(!text.contains('\n'), "{text}");
    let parts: Vec<&str> = text.split("; ").collect();
    assert_eq!(parts.len(), problems.len(), "{text}");
    assert!(parts.iter().all(|p| p.contains("mine.toml:")), "{text}");
}

#[test]
fn script_links_in_notes_and_values_are_not_links_in_the_markdown_record() {
    let tmp = TempDir::new("md-links");
    let dir = open(&tmp, "card-skimming", "2026-11-20T08:00:00+09:00");
    for note in [
        "see [the log](javascript:alert(1))",
        "![img](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](VBScript:msgbox(1)) and [y][r]",
        "[r]: javascript:alert(2)",
        "<javascript:alert(3)> \\[z](javascript:alert(4))",
    ] {
        add_note(&dir, Some("CS-01"), note, "alice", None).unwrap();
    }
    set_vars(
        &dir,
        &["ppc_cause=[click](javascript:alert(5))".into()],
        "alice",
        None,
    )
    .unwrap();
    let md = case_report(&dir, ReportFormat::Markdown).unwrap();
    // Every `[` is escaped (an odd number of backslashes before it): nothing opens a link.
    for (i, _) in md.match_indices('[') {
        let slashes = md[..i].chars().rev().take_while(|&c| c == '\\').count();
        assert!(
            slashes % 2 == 1,
            "unescaped [ at {i}: {}",
            &md[i.saturating_sub(40)..]
        );
    }
    assert!(!md.contains("<javascript:"), "{md}");
    assert!(md.contains("see \\[the log](javascript:alert(1))"), "{md}");
}

#[test]
fn the_record_lists_steps_in_dependency_order() {
    let tmp = TempDir::new("dep-order");
    // The PSP report (CS-05) declared last, after the steps that come after it.
    let src = find_source("card-skimming");
    let start = src.find("[[steps]]\nid = \"CS-05\"").unwrap();
    let end = start + 1 + src[start + 1..].find("[[steps]]").unwrap();
    let moved = format!("{}{}\n{}", &src[..start], &src[end..], &src[start..end]);
    let file = tmp.path().join("moved.toml");
    fs::write(&file, &moved).unwrap();
    let dir = open(&tmp, file.to_str().unwrap(), "2026-11-20T08:00:00+09:00");
    let md = case_report(&dir, ReportFormat::Markdown).unwrap();
    let ids = table_ids(&md, "## Steps");
    let at = |id: &str| ids.iter().position(|x| x == id).unwrap();
    let pb = find_bundled("card-skimming").unwrap();
    assert_eq!(ids.len(), pb.steps.len());
    for st in &pb.steps {
        for dep in &st.after {
            assert!(at(dep) < at(&st.id), "{dep} before {}: {ids:?}", st.id);
        }
    }
    // The PSP report (CS-05) precedes the PFI (CS-08) and resuming card acceptance (CS-21).
    assert!(
        at("CS-05") < at("CS-08") && at("CS-08") < at("CS-21"),
        "{ids:?}"
    );
}

#[test]
fn undeclared_variables_and_negative_counts_are_refused() {
    let tmp = TempDir::new("vars");
    let dir = open(&tmp, "card-skimming", "2026-11-20T08:00:00+09:00");
    let set = |a: &str| set_vars(&dir, &[a.to_string()], "alice", None);
    let e = set("affected_cuont=3").unwrap_err();
    assert!(matches!(e, Error::UnknownVariable(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("`affected_cuont` is not a variable of playbook card-skimming")
            && msg.contains("did you mean affected_count?"),
        "{msg}"
    );
    assert!(!msg.contains('\n') && e.hint().is_some());
    // Nothing close: the declared names are listed.
    let msg = set("zzz=1").unwrap_err().to_string();
    assert!(msg.contains("its variables: card_data_exposed, "), "{msg}");
    // Counts are never negative, declared or the record's own.
    let e = set("affected_count=-3").unwrap_err();
    assert!(e.to_string().contains("cannot be negative"), "{e}");
    assert!(set("completed_orders=-1").is_err());
    // The incident record's items are accepted in every case, typed.
    let ws = TempDir::new("vars-ws");
    let wdir = open(&ws, "web-shell", "2026-11-20T08:00:00+09:00");
    let wset = |a: &str| set_vars(&wdir, &[a.to_string()], "alice", None);
    wset("ppc_cause=SQLi in a plugin").unwrap();
    wset("affected_count=0").unwrap();
    assert!(wset("affected_count=-5").is_err());
    assert!(wset("exposure_start=yesterday").is_err());
    assert!(matches!(
        wset("pfi_required=true"),
        Err(Error::UnknownVariable(_))
    ));
    // Nothing of a refused command is journaled.
    assert_eq!(journal_lines(&dir).len(), 1);
}

#[test]
fn verify_lists_evidence_files_no_record_names() {
    let tmp = TempDir::new("unreferenced");
    let dir = open(&tmp, "card-skimming", "2026-11-20T08:00:00+09:00");
    let ev = tmp.path().join("call.txt");
    fs::write(&ev, "called the PSP").unwrap();
    add_evidence(&dir, Some("CS-05"), &ev, "alice", None).unwrap();
    assert_eq!(verify(&dir).unwrap().unreferenced, Vec::<String>::new());
    fs::write(dir.join("evidence/stray.txt"), "dropped by hand").unwrap();
    fs::create_dir_all(dir.join("evidence/sub")).unwrap();
    fs::write(dir.join("evidence/sub/x.log"), "x").unwrap();
    let v = verify(&dir).unwrap();
    assert_eq!(v.evidence_files, 1);
    assert_eq!(v.unreferenced, ["evidence/stray.txt", "evidence/sub/x.log"]);
}

#[test]
fn future_and_pre_discovery_times_are_flagged_not_refused() {
    let tmp = TempDir::new("odd-times");
    let dir = open(&tmp, "card-skimming", "2026-11-20T10:00:00+09:00");
    let now = instant("2026-11-21T10:00:00+09:00");
    let odd = |rec: &journal::Record| odd_times(&state(&dir).unwrap(), rec, now);
    let at = |t: &str| {
        apply_step(
            &dir,
            &StepUpdate {
                step: "CS-01",
                status: StepStatus::Done,
                note: None,
                evidence: vec![],
                by: "bob",
                at: Some(t),
            },
        )
        .unwrap()
    };
    // Between T0 and now (within the slack): nothing odd.
    assert_eq!(odd(&at("2026-11-20T12:00:00+09:00")), vec![]);
    assert_eq!(odd(&at("2026-11-21T10:04:00+09:00")), vec![]);
    // A day ahead of now.
    let o = odd(&at("2026-11-22T10:00:00+09:00"));
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o[0].field, TimeField::At);
    assert_eq!(o[0].value, "2026-11-22T10:00:00+09:00");
    assert_eq!(
        o[0].problem,
        "1d 0h in the future (now 2026-11-21T10:00:00+09:00)"
    );
    // Before T0.
    let o = odd(&at("2026-11-19T22:00:00+09:00"));
    assert_eq!(o.len(), 1, "{o:?}");
    assert!(
        o[0].problem
            .starts_with("12h 0m before the discovery time (T0 2026-11-20T10:00:00+09:00)"),
        "{o:?}"
    );
    assert!(o[0].hint.contains("ecir case discovered"));
    // A time variable in the future; exposure_start before T0 is not odd.
    let rec = set_vars(
        &dir,
        &[
            "pfi_engaged_at=2027-01-05 09:00".into(),
            "exposure_start=2026-10-01 00:00".into(),
        ],
        "alice",
        Some("2026-11-21T09:00:00+09:00"),
    )
    .unwrap();
    let o = odd(&rec);
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o[0].field, TimeField::Var("pfi_engaged_at".into()));
    // A discovery time in the future, as opened or corrected.
    let rec = correct_discovery(&dir, "2026-11-30 10:00", None, "alice", None).unwrap();
    let o = odd(&rec);
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o[0].field, TimeField::Discovered);
    let st = state(&dir).unwrap();
    assert_eq!(odd_times(&st, &st.records[0], now), vec![]);
    let later = TempDir::new("odd-times-open");
    let d2 = open(&later, "card-skimming", "2026-12-24T10:00:00+09:00");
    let st = state(&d2).unwrap();
    assert_eq!(
        odd_times(&st, &st.records[0], now)[0].field,
        TimeField::Discovered
    );
}
