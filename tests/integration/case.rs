//! `ecir playbook` and `ecir case` through the binary: the card-skimming walk-through of the
//! README, journal verification and tampering, CACAO export and import.

use crate::support::*;

#[test]
fn card_skimming_case_walkthrough() {
    let dir = temp_dir("case");
    let case = dir.join("case");
    let c = case.to_str().unwrap();
    let o = run(&[
        "case",
        "new",
        c,
        "--playbook",
        "card-skimming",
        "--discovered",
        "2026-11-20T10:00:00+09:00",
        "--lang",
        "en",
        "--by",
        "owner",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A person's count is not overwritten by the scan.
    let o = run(&["case", "set", c, "completed_orders=500", "--by", "lawyer"]);
    assert_eq!(o.status.code(), Some(0));
    // Findings attach to the case and fill what they establish.
    let sample = root().join("fixtures/sample-shop").display().to_string();
    let o = run(&["scan", "--quiet", "--case", c, &sample]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ecir: note: set from the scan report: ")
            && err.contains("unauthorized_access=true"),
        "{err}"
    );
    assert!(
        err.contains("ecir: note: completed_orders: the scan report says 13; kept 500 (set by lawyer in record 2)"),
        "{err}"
    );
    let o = run(&[
        "case",
        "status",
        c,
        "--json",
        "--at",
        "2026-11-25T10:00:00+09:00",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["schema"], "ecir.case-status/1");
    assert_eq!(st["playbook"], "card-skimming");
    let steps = st["steps"].as_array().unwrap();
    assert!(
        steps.iter().any(|s| s["overdue"] == true),
        "some deadline is overdue five days on"
    );
    // The final report to the PPC gets 60 days after unauthorized access.
    let kakuho = steps
        .iter()
        .find(|s| s["deadline"].as_str() == Some("2027-01-20T00:00:00+09:00"))
        .is_some();
    assert!(
        kakuho,
        "60-day 確報 deadline after unauthorized access: {steps:?}"
    );
    // Record a step with evidence.
    let ev = write(
        &dir,
        "psp-call.txt",
        "Called the PSP at 10:30. Card 4111 1111 1111 1111 was mentioned.\n",
    );
    let first = steps[0]["id"].as_str().unwrap().to_string();
    let o = run(&[
        "case",
        "step",
        c,
        &first,
        "--status",
        "done",
        "--note",
        "card 4111111111111111 seen",
        "--evidence",
        ev.to_str().unwrap(),
        "--by",
        "owner",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let journal = std::fs::read_to_string(case.join("journal.jsonl")).unwrap();
    assert!(
        !journal.contains("4111111111111111"),
        "card numbers are masked in notes"
    );
    assert_eq!(run(&["case", "verify", c]).status.code(), Some(0));
    let o = run(&["case", "report", c, "--format", "md"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&first));
    // Tampering with the journal is detected.
    let edited = journal.replacen("owner", "intruder", 1);
    std::fs::write(case.join("journal.jsonl"), edited).unwrap();
    let o = run(&["case", "verify", c]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn playbooks_lint_export_and_import() {
    assert_eq!(
        run(&["playbook", "lint"]).status.code(),
        Some(0),
        "bundled playbooks lint clean"
    );
    let dir = temp_dir("cacao");
    let o = run(&["playbook", "export", "web-shell", "--format", "cacao"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["spec_version"], "cacao-2.0");
    assert!(v["id"].as_str().unwrap().starts_with("playbook--"));
    let f = write(&dir, "ws.json", &o.stdout);
    let o = run(&["playbook", "import", f.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("web-shell"));
    let bad = write(&dir, "bad.toml", "id = \"x\"\nphase = 3\n");
    let o = run(&["playbook", "lint", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("bad.toml")
            || String::from_utf8_lossy(&o.stderr).contains("bad.toml")
    );
}

#[test]
fn playbook_text_with_terminal_controls_is_refused_and_never_printed_raw() {
    let dir = temp_dir("pb-controls");
    let src = ecir_playbook::bundled()
        .iter()
        .find(|(f, _)| *f == "web-shell.toml")
        .unwrap()
        .1
        .replacen(
            "title_en = \"",
            "title_en = \"\\u001b]8;;http://x\\u001b\\\\link\\u001b]8;;\\u001b\\\\ ",
            1,
        );
    let f = write(&dir, "hostile.toml", &src);
    let f = f.to_str().unwrap();
    let o = run(&["playbook", "lint", f]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("hostile.toml:")
            && out.contains("`title_en` contains the control character U+001B"),
        "{out}"
    );
    for args in [
        vec!["playbook", "show", f, "--lang", "en"],
        vec!["playbook", "export", f, "--format", "md", "--lang", "en"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}");
        assert!(!o.stderr.contains(&0x1b), "{args:?}");
    }
    let case = dir.join("case");
    let o = run(&[
        "case",
        "new",
        case.to_str().unwrap(),
        "--playbook",
        f,
        "--discovered",
        "2026-11-20T08:00:00+09:00",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!case.join("journal.jsonl").exists());
    // A note's escape sequences are shown, not obeyed, in the text outputs of a case.
    let c = case.to_str().unwrap();
    let o = run(&[
        "case",
        "new",
        c,
        "--playbook",
        "web-shell",
        "--discovered",
        "2026-11-20T08:00:00+09:00",
        "--lang",
        "en",
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let note = "\u{1b}]8;;http://evil/\u{7}click\u{1b}]8;;\u{7} \u{1b}[2J\u{9b}1m\u{202e}";
    assert_eq!(run(&["case", "note", c, note]).status.code(), Some(0));
    for args in [
        vec!["case", "report", c, "--format", "md"],
        vec!["case", "report", c, "--format", "html"],
        vec!["case", "status", c],
        vec!["case", "status", c, "--json"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        let out = String::from_utf8(o.stdout).unwrap();
        assert!(
            !out.chars()
                .any(|ch| !matches!(ch, '\n' | '\t') && ecir_model::text::is_unsafe_char(ch)),
            "{args:?}: {out}"
        );
    }
    let md = String::from_utf8(run(&["case", "report", c, "--format", "md"]).stdout).unwrap();
    assert!(md.contains("\\\\x1b]8;;http://evil/\\\\x07click"), "{md}");
}

#[test]
fn case_next_reads_answers_from_a_pipe_and_set_and_discovery_recompute() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = temp_dir("case-next");
    let case = dir.join("case");
    let c = case.to_str().unwrap();
    let o = run(&[
        "case",
        "new",
        c,
        "--playbook",
        "card-skimming",
        "--discovered",
        "2026-11-20T10:00:00+09:00",
        "--lang",
        "en",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let mut child = ecir()
        .args(["case", "next", c, "--by", "tester"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"done\nnote called the hosting company\nskip\nquit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CS-01") && text.contains("CS-02"), "{text}");
    let status = |at: &str| -> serde_json::Value {
        let o = run(&["case", "status", c, "--json", "--at", at]);
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let st = status("2026-11-21T10:00:00+09:00");
    let steps = st["steps"].as_array().unwrap();
    let by_id = |id: &str| steps.iter().find(|s| s["id"] == id).unwrap().clone();
    assert_eq!(by_id("CS-01")["status"], "done");
    assert_eq!(by_id("CS-02")["status"], "skipped");
    // Variables and a corrected discovery time are journaled; state is derived again.
    assert_eq!(
        run(&["case", "set", c, "affected_count=12"]).status.code(),
        Some(0)
    );
    let deadlines = |st: &serde_json::Value| -> Vec<String> {
        st["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["deadline"].as_str().map(String::from))
            .collect()
    };
    let before = deadlines(&status("2026-11-21T10:00:00+09:00"));
    let o = run(&[
        "case",
        "discovered",
        c,
        "2026-11-18T10:00:00+09:00",
        "--reason",
        "earlier alert found",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let after = deadlines(&status("2026-11-21T10:00:00+09:00"));
    assert!(
        !before.is_empty() && before != after,
        "deadlines move with the discovery time"
    );
    assert_eq!(run(&["case", "verify", c]).status.code(), Some(0));
}

/// Playbook files named on the command line (lint, import, show, and a case's playbook) and
/// a report to attach are read only when they are regular files within their cap.
#[cfg(unix)]
#[test]
fn playbook_and_case_files_that_are_not_regular_are_refused() {
    let dir = temp_dir("playbook-bounded");
    let fifo = dir.join("fifo.toml");
    mkfifo(&fifo);
    let f = fifo.to_str().unwrap();
    for args in [
        &["playbook", "lint", "/dev/zero"][..],
        &["playbook", "import", "/dev/zero"],
        &["playbook", "show", "/dev/zero"],
    ] {
        assert_refused(
            &run_within(args),
            "/dev/zero: ",
            "not a regular file (a character device)",
        );
    }
    for args in [
        &["playbook", "lint", f][..],
        &["playbook", "import", f],
        &["playbook", "show", f],
    ] {
        assert_refused(&run_within(args), f, "not a regular file (a FIFO)");
    }
    let case = dir.join("case");
    let c = case.to_str().unwrap();
    let o = run_within(&[
        "case",
        "new",
        c,
        "--playbook",
        f,
        "--discovered",
        "2026-11-20 10:00",
    ]);
    assert_refused(&o, f, "not a regular file (a FIFO)");
    let o = run(&[
        "case",
        "new",
        c,
        "--playbook",
        "web-shell",
        "--discovered",
        "2026-11-20 10:00",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_refused(
        &run_within(&["case", "attach-report", c, f]),
        f,
        "not a regular file (a FIFO)",
    );
    // The journal swapped for a FIFO: an error naming it, not a hang.
    let journal = case.join("journal.jsonl");
    std::fs::rename(&journal, dir.join("kept")).unwrap();
    mkfifo(&journal);
    assert_refused(
        &run_within(&["case", "status", c]),
        "journal.jsonl",
        "not a regular file (a FIFO)",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
