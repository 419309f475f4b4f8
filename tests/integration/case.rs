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
    // A hard deadline is overdue: exit status 1, for a cron or CI check.
    assert_eq!(o.status.code(), Some(1));
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
        vec!["case", "status", c, "--at", "2026-11-20T09:00:00+09:00"],
        vec![
            "case",
            "status",
            c,
            "--json",
            "--at",
            "2026-11-20T09:00:00+09:00",
        ],
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

fn new_case(c: &str, playbook: &str) {
    let o = run(&[
        "case",
        "new",
        c,
        "--playbook",
        playbook,
        "--discovered",
        "2026-11-20 03:00",
        "--lang",
        "en",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `case report -o` never writes into the case's journal, playbook copy or evidence, nor over
/// an original recorded as evidence (with `--force` either), and replaces another existing
/// file only with `--force`.
#[test]
fn case_report_output_never_overwrites_the_case_or_its_evidence() {
    let dir = temp_dir("case-report-out");
    let case = dir.join("case");
    let c = case.to_str().unwrap();
    new_case(c, "card-skimming");
    let log = write(
        &dir,
        "access_log",
        line(
            "203.0.113.5",
            "20/Nov/2026:03:00:00 +0900",
            "GET / HTTP/1.1",
            200,
            1,
            "x",
        ),
    );
    let o = run(&[
        "case",
        "step",
        c,
        "CS-01",
        "--status",
        "done",
        "--evidence",
        log.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let stored = std::fs::read_dir(case.join("evidence"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let before: Vec<(std::path::PathBuf, Vec<u8>)> = [
        case.join("journal.jsonl"),
        case.join("journal.head"),
        case.join("playbook.toml"),
        stored.clone(),
        log.clone(),
    ]
    .into_iter()
    .map(|p| {
        let b = std::fs::read(&p).unwrap();
        (p, b)
    })
    .collect();
    let mut targets: Vec<std::path::PathBuf> = before.iter().map(|(p, _)| p.clone()).collect();
    targets.push(case.join("evidence").join("new-report.md"));
    #[cfg(unix)]
    {
        let link = dir.join("link-to-journal");
        std::os::unix::fs::symlink(case.join("journal.jsonl"), &link).unwrap();
        targets.push(link);
    }
    for t in &targets {
        for force in [false, true] {
            let mut args = vec!["case", "report", c, "--format", "html", "-o"];
            args.push(t.to_str().unwrap());
            if force {
                args.push("--force");
            }
            let o = run(&args);
            assert_refused(
                &o,
                &t.display().to_string(),
                "refusing to write the report over",
            );
        }
    }
    for (p, b) in &before {
        assert_eq!(&std::fs::read(p).unwrap(), b, "{} changed", p.display());
    }
    assert!(!case.join("evidence").join("new-report.md").exists());
    assert_eq!(run(&["case", "verify", c]).status.code(), Some(0));
    // A new file is written; an existing one is replaced only with --force.
    let out = dir.join("incident.md");
    let o = out.to_str().unwrap();
    assert_eq!(run(&["case", "report", c, "-o", o]).status.code(), Some(0));
    std::fs::write(&out, "keep").unwrap();
    assert_refused(&run(&["case", "report", c, "-o", o]), o, "exists already");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep");
    let r = run(&["case", "report", c, "-o", o, "--force"]);
    assert_eq!(r.status.code(), Some(0));
    assert!(std::fs::read_to_string(&out).unwrap().starts_with('#'));
    // A report next to the journal, inside the case directory, is fine.
    let inside = case.join("incident.md");
    let r = run(&["case", "report", c, "-o", inside.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every command that reads a case refuses a playbook copy edited after the case was
/// opened (its SHA-256 is in the opening record), as it refuses an edited journal.
#[test]
fn an_edited_playbook_copy_is_refused_by_every_case_command() {
    let dir = temp_dir("case-edited-playbook");
    let case = dir.join("case");
    let c = case.to_str().unwrap();
    new_case(c, "card-skimming");
    let copy = case.join("playbook.toml");
    let text = std::fs::read_to_string(&copy).unwrap();
    assert!(text.contains("\noffset = 30\n"));
    std::fs::write(
        &copy,
        text.replacen("\noffset = 30\n", "\noffset = 90\n", 1),
    )
    .unwrap();
    let journal = std::fs::read(case.join("journal.jsonl")).unwrap();
    let scan = write(
        &dir,
        "scan.json",
        "{\"schema\": \"ecir.report/1\", \"findings\": []}",
    );
    let commands: Vec<Vec<&str>> = vec![
        vec!["case", "status", c],
        vec!["case", "status", c, "--json"],
        vec!["case", "report", c],
        vec!["case", "step", c, "CS-01", "--status", "done"],
        vec!["case", "note", c, "a note"],
        vec!["case", "set", c, "unauthorized_access=true"],
        vec!["case", "discovered", c, "2026-11-19 03:00"],
        vec!["case", "attach-report", c, scan.to_str().unwrap()],
        vec!["case", "next", c],
    ];
    for args in &commands {
        let o = run(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_refused(
            &o,
            "playbook.toml was changed after record 1",
            "verification failed",
        );
        assert!(err.contains("ecir case verify"), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(std::fs::read(case.join("journal.jsonl")).unwrap(), journal);
    let o = run(&["case", "verify", c]);
    assert_eq!(o.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A playbook whose deadline offsets reach past ten years does not lint, import or open a
/// case (it used to pass, then make `case status` panic).
#[test]
fn huge_deadline_offsets_are_refused_before_a_case_uses_them() {
    let dir = temp_dir("case-huge-offset");
    let o = run(&["playbook", "export", "card-skimming", "--format", "cacao"]);
    let mut doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for v in doc["workflow"].as_object_mut().unwrap().values_mut() {
        if let Some(exts) = v.get_mut("step_extensions").and_then(|e| e.as_object_mut()) {
            for e in exts.values_mut() {
                if let Some(dls) = e.get_mut("deadlines").and_then(|d| d.as_array_mut()) {
                    for dl in dls {
                        dl["offset"] = serde_json::json!(100_000_000u64);
                    }
                }
            }
        }
    }
    let cacao = write(&dir, "huge.json", serde_json::to_vec(&doc).unwrap());
    let o = run(&["playbook", "import", cacao.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("is too large: at most 3650 days"), "{err}");
    // The same playbook as TOML: lint and `case new` refuse it.
    let src = std::fs::read_to_string(root().join("playbooks/card-skimming.toml")).unwrap();
    let huge = write(
        &dir,
        "huge.toml",
        src.replacen("\noffset = 30\n", "\noffset = 100000000\n", 1),
    );
    let h = huge.to_str().unwrap();
    let o = run(&["playbook", "lint", h]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("at most 3650 days"));
    let case = dir.join("case");
    let o = run(&[
        "case",
        "new",
        case.to_str().unwrap(),
        "--playbook",
        h,
        "--discovered",
        "2026-11-20 03:00",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("at most 3650 days"), "{err}");
    assert!(!case.join("journal.jsonl").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Commands on one case from several terminals at once: every one succeeds and the journal
/// holds (they used to report tampering when one read the head another was writing).
#[test]
fn concurrent_case_commands_neither_fail_nor_break_the_chain() {
    let dir = temp_dir("case-concurrent");
    let case = dir.join("case");
    let c = case.to_str().unwrap();
    new_case(c, "card-skimming");
    let writers = 12;
    let mut children = Vec::new();
    for k in 0..writers {
        let note = format!("lead {k}");
        for args in [
            vec!["case", "note", c, note.as_str(), "--by", "lead"],
            vec!["case", "status", c, "--at", "2026-11-20 04:00"],
            vec!["case", "verify", c],
        ] {
            children.push((
                format!("{args:?}"),
                ecir()
                    .args(&args)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap(),
            ));
        }
    }
    for (what, child) in children {
        let o = child.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = run(&["case", "verify", c]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.starts_with(&format!("ok: {} records", writers + 1)),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `case status` exits 1 while a hard deadline is overdue (pending and applicable), 0
/// before, and 0 again once the step is done or marked skipped or not applicable.
#[test]
fn case_status_exits_1_while_a_hard_deadline_is_overdue() {
    let dir = temp_dir("case-status-exit");
    let case = dir.join("case");
    let c = case.to_str().unwrap();
    new_case(c, "card-skimming");
    let code = |at: &str| {
        let text = run(&["case", "status", c, "--at", at]);
        let json = run(&["case", "status", c, "--json", "--at", at]);
        assert_eq!(text.status.code(), json.status.code());
        text.status.code()
    };
    // T0 2026-11-20 03:00: the GDPR notice (CS-20, hard, 72 hours) falls 11-23 03:00.
    assert_eq!(code("2026-11-20 04:00"), Some(0));
    assert_eq!(code("2026-11-23 04:00"), Some(1));
    let o = run(&["case", "step", c, "CS-20", "--status", "not-applicable"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(code("2026-11-23 04:00"), Some(0));
    // The brand report (CS-13, hard) falls on 11-26 24:00; skipped is not overdue either.
    assert_eq!(code("2026-11-27 10:00"), Some(1));
    let o = run(&["case", "step", c, "CS-13", "--status", "skipped"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(code("2026-11-27 10:00"), Some(0));
    // Errors stay 2.
    let o = run(&["case", "status", c, "--at", "not a time"]);
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every problem of a playbook that does not load is an error line of its own naming the
/// file, never one line with `\x0a` where the line breaks were.
#[test]
fn playbook_problems_are_printed_one_per_line() {
    let dir = temp_dir("playbook-problems");
    let src = std::fs::read_to_string(root().join("playbooks/readiness.toml")).unwrap();
    let bad = write(
        &dir,
        "mine.toml",
        src.replace("phase = \"prepare\"", "phase = \"bogus\""),
    );
    let steps = src.matches("phase = \"prepare\"").count();
    let case = dir.join("case");
    for args in [
        vec![
            "case",
            "new",
            case.to_str().unwrap(),
            "--playbook",
            bad.to_str().unwrap(),
            "--discovered",
            "2026-11-20 10:00",
        ],
        vec!["playbook", "show", bad.to_str().unwrap()],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("\\x0a"), "{err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), steps, "{err}");
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with("ecir: error: ") && l.contains("mine.toml:")),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `case verify` names files in evidence/ that no journal record references, as warnings:
/// not tampering with recorded evidence, so the result stays ok (exit 0).
#[test]
fn case_verify_warns_of_unreferenced_evidence_files() {
    let dir = temp_dir("case-unreferenced");
    let case = dir.join("case");
    let c = case.to_str().unwrap();
    new_case(c, "card-skimming");
    std::fs::write(case.join("evidence/stray.log"), "x").unwrap();
    let o = run(&["case", "verify", c]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.starts_with("ok: 1 records") && out.trim_end().ends_with(", 1 unreferenced file(s)"),
        "{out}"
    );
    assert!(
        err.lines().any(|l| l == "ecir: warning: evidence/stray.log: not referenced by any journal record"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A time in the future or a step dated before T0 is recorded (responders back-fill) with
/// one warning line naming the value, what is odd and a hint.
#[test]
fn odd_times_are_recorded_with_a_warning() {
    let dir = temp_dir("case-odd-times");
    let case = dir.join("case");
    let c = case.to_str().unwrap();
    new_case(c, "card-skimming"); // T0 2026-11-20 03:00
    let warnings = |o: &std::process::Output| -> Vec<String> {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .map(String::from)
            .collect()
    };
    let o = run(&[
        "case",
        "step",
        c,
        "CS-01",
        "--status",
        "done",
        "--at",
        "2026-11-19 09:00",
    ]);
    let w = warnings(&o);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("ecir: warning: --at 2026-11-19T09:00:00+09:00 is 18h 0m before the discovery time (T0 2026-11-20T03:00:00+09:00); recorded as given (hint: "),
        "{w:?}"
    );
    // Far ahead of any clock this test runs on.
    let o = run(&[
        "case",
        "step",
        c,
        "CS-02",
        "--status",
        "done",
        "--at",
        "2099-01-01 00:00",
    ]);
    let w = warnings(&o);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("ecir: warning: --at 2099-01-01T00:00:00+09:00 is ")
            && w[0].contains(" in the future (now "),
        "{w:?}"
    );
    // A step between T0 and now: no warning.
    let o = run(&[
        "case",
        "step",
        c,
        "CS-03",
        "--status",
        "done",
        "--at",
        "2026-11-20 04:00",
    ]);
    assert_eq!(warnings(&o), Vec::<String>::new());
    let o = run(&["case", "discovered", c, "2099-01-01 00:00"]);
    let w = warnings(&o);
    assert!(
        w.len() == 1
            && w[0].starts_with("ecir: warning: the discovery time 2099-01-01T00:00:00+09:00 is "),
        "{w:?}"
    );
    let o = run(&[
        "case",
        "new",
        dir.join("c2").to_str().unwrap(),
        "--playbook",
        "web-shell",
        "--discovered",
        "2099-01-01 00:00",
    ]);
    let w = warnings(&o);
    assert!(
        w.len() == 1
            && w[0].starts_with("ecir: warning: --discovered 2099-01-01T00:00:00+09:00 is "),
        "{w:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `ecir scan DIR --case CASE` with CASE inside DIR is refused before anything is read or
/// written: the scan would read the case's own journal and evidence copies as logs.
#[test]
fn scan_refuses_a_case_inside_its_input() {
    let dir = temp_dir("case-in-input");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    write(
        &logs,
        "access_log",
        line(
            "203.0.113.5",
            "03/Nov/2026:10:00:00 +0900",
            "GET / HTTP/1.1",
            200,
            1,
            "x",
        ),
    );
    let case = logs.join("case");
    let c = case.to_str().unwrap();
    new_case(c, "web-shell");
    let journal = std::fs::read(case.join("journal.jsonl")).unwrap();
    let o = run(&["scan", "--quiet", logs.to_str().unwrap(), "--case", c]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the case directory is inside the input") && err.contains("hint: "),
        "{err}"
    );
    assert_eq!(std::fs::read(case.join("journal.jsonl")).unwrap(), journal);
    // Beside the logs it is attached.
    let beside = dir.join("case");
    new_case(beside.to_str().unwrap(), "web-shell");
    let o = run(&[
        "scan",
        "--quiet",
        logs.join("access_log").to_str().unwrap(),
        "--case",
        beside.to_str().unwrap(),
    ]);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
