//! `ecir audit` and `ecir manifest` through the binary: exit statuses, JSON schema, the HTML
//! page (self-contained, escaped), and access times left alone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn ecir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ecir"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ecir-it-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Daily-rotated access logs for October 1..=n, 2026 (skipping `skip`).
fn family(dir: &Path, n: u32, skip: Option<u32>) {
    for d in 1..=n {
        if Some(d) == skip {
            continue;
        }
        let mut s = String::new();
        for h in 0..24 {
            s.push_str(&format!(
                "192.0.2.1 - - [{d:02}/Oct/2026:{h:02}:00:00 +0900] \"GET / HTTP/1.1\" 200 10 \"-\" \"UA\"\n"
            ));
        }
        std::fs::write(
            dir.join(format!("access_log-202610{d:02}.gz")),
            gz(s.as_bytes()),
        )
        .unwrap();
    }
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = ecir().args(args).env("TZ", "Asia/Tokyo").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn audit_exit_codes_and_json() {
    let dir = tmp("exit");
    family(&dir, 10, None);
    let d = dir.to_str().unwrap();
    let (code, out, _) = run(&["audit", d, "--retention", "10d", "--as-of", "2026-10-10"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Verdict: PASS"));
    // Missing day → 1, with the reason in JSON.
    std::fs::remove_file(dir.join("access_log-20261005.gz")).unwrap();
    let (code, out, _) = run(&[
        "audit",
        d,
        "--retention",
        "10d",
        "--as-of",
        "2026-10-10",
        "--json",
        "-",
        "-q",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema"], "ecir.audit/1");
    assert_eq!(v["verdict"], "fail");
    assert_eq!(v["policy"]["retention_days"], 10);
    assert_eq!(v["policy"]["as_of"], "2026-10-10");
    assert_eq!(v["streams"][0]["missing_days"][0], "2026-10-05");
    assert_eq!(v["streams"][0]["days_covered"], 9);
    assert!(v["coverage_gaps"].is_array() && v["card_numbers"].is_array());
    // Errors → 2: a missing path, a bad duration.
    let (code, _, err) = run(&[
        "audit",
        dir.join("nope").to_str().unwrap(),
        "--as-of",
        "2026-10-10",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["audit", d, "--retention", "twelve"]);
    assert_eq!(code, 2);
    assert!(err.contains("--retention"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn html_is_self_contained_and_escaped() {
    let dir = tmp("html");
    let evil = dir.join("<script>alert(1)<");
    std::fs::create_dir_all(&evil).unwrap();
    family(&evil, 5, Some(3));
    let page = dir.with_extension("html");
    let (code, _, err) = run(&[
        "audit",
        dir.to_str().unwrap(),
        "--retention",
        "5d",
        "--as-of",
        "2026-10-05",
        "--html",
        page.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(code, 1, "{err}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Content-Security-Policy"));
    assert!(!html.contains("<script"));
    assert!(html.contains("&lt;script&gt;"));
    assert!(html.contains("title=\"2026-10-03: 0 lines, missing\""));
    assert!(!html.contains("http://") && !html.contains("https://"));
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_file(&page).unwrap();
}

#[test]
fn manifest_create_verify_exit_codes() {
    let dir = tmp("manifest");
    family(&dir, 3, None);
    let m = dir.with_extension("manifest.json");
    let (d, ms) = (dir.to_str().unwrap(), m.to_str().unwrap());
    let before = std::fs::metadata(dir.join("access_log-20261001.gz"))
        .unwrap()
        .accessed()
        .unwrap();
    let (code, _, err) = run(&["manifest", "create", d, "-o", ms]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    assert_eq!(v["schema"], "ecir.manifest/1");
    assert_eq!(v["files"].as_array().unwrap().len(), 3);
    assert_eq!(v["files"][0]["format"], "combined");
    assert!(v["created_by"].as_str().unwrap().contains('@'));
    let (code, out, _) = run(&["manifest", "verify", ms]);
    assert_eq!(code, 0, "{out}");
    // Reading did not change the access time (owner or root may use O_NOATIME).
    let after = std::fs::metadata(dir.join("access_log-20261001.gz"))
        .unwrap()
        .accessed()
        .unwrap();
    assert_eq!(before, after);
    std::fs::write(dir.join("access_log-20261002.gz"), b"tampered").unwrap();
    std::fs::remove_file(dir.join("access_log-20261003.gz")).unwrap();
    std::fs::write(dir.join("extra.log"), b"x\n").unwrap();
    let (code, out, _) = run(&["manifest", "verify", ms]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("MODIFIED") && out.contains("MISSING") && out.contains("ADDED"),
        "{out}"
    );
    let (code, _, _) = run(&[
        "manifest",
        "verify",
        dir.join("nope.json").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_file(&m).unwrap();
}

/// Chain of custody: hidden files are recorded, and what the manifest leaves out (links,
/// pipes; hidden files with `--skip-hidden`) is listed on stderr, one line each with its
/// reason, and under `omitted` in the manifest.
#[cfg(unix)]
#[test]
fn manifest_records_hidden_files_and_lists_what_it_leaves_out() {
    let dir = tmp("manifest-omitted");
    let ev = dir.join("evidence");
    std::fs::create_dir_all(ev.join(".well-known")).unwrap();
    std::fs::write(ev.join("access_log"), "x\n").unwrap();
    std::fs::write(ev.join(".htaccess"), "deny from all\n").unwrap();
    std::fs::write(ev.join(".well-known/shell.php"), "<?php\n").unwrap();
    std::os::unix::fs::symlink("access_log", ev.join("current")).unwrap();
    assert!(Command::new("mkfifo")
        .arg(ev.join("pipe"))
        .status()
        .unwrap()
        .success());
    let m = dir.join("m.json");
    let (e, ms) = (ev.to_str().unwrap(), m.to_str().unwrap());
    let (code, _, err) = run(&["manifest", "create", e, "-o", ms]);
    assert_eq!(code, 0, "{err}");
    let warned: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warned.len(), 2, "{err}");
    assert!(
        warned[0].contains("current") && warned[0].contains("symbolic link"),
        "{err}"
    );
    assert!(
        warned[1].contains("pipe") && warned[1].contains("not a regular file"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    let files: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["relative_path"].as_str().unwrap())
        .collect();
    assert_eq!(files, [".htaccess", ".well-known/shell.php", "access_log"]);
    assert_eq!(v["include_hidden"], true);
    let omitted: Vec<(&str, &str)> = v["omitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["path"].as_str().unwrap(), o["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        omitted,
        [
            (format!("{e}/current").as_str(), "symlink"),
            (format!("{e}/pipe").as_str(), "not-a-regular-file")
        ]
    );
    let (code, out, _) = run(&["manifest", "verify", ms]);
    assert_eq!(code, 0, "{out}");
    // A hidden file added later is seen by verify.
    std::fs::write(ev.join(".user.ini"), "auto_prepend_file=x\n").unwrap();
    let (code, out, _) = run(&["manifest", "verify", ms]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ADDED") && out.contains(".user.ini"), "{out}");
    std::fs::remove_file(ev.join(".user.ini")).unwrap();

    std::fs::remove_file(&m).unwrap();
    let (code, _, err) = run(&["manifest", "create", "--skip-hidden", e, "-o", ms]);
    assert_eq!(code, 0, "{err}");
    let hidden: Vec<&str> = err.lines().filter(|l| l.contains(": hidden")).collect();
    assert_eq!(hidden.len(), 2, "{err}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 1);
    assert_eq!(v["include_hidden"], false);
    assert_eq!(v["omitted"][0]["reason"], "hidden");
    let (code, out, _) = run(&["manifest", "verify", ms]);
    assert_eq!(code, 0, "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `manifest create` under a file-size limit it hits part-way through the document: one
/// error line naming FILE, exit 2, and neither a cut-off manifest nor a temporary file is
/// left; an earlier manifest at FILE is kept as it was.
#[cfg(unix)]
#[test]
fn a_manifest_that_cannot_be_written_whole_is_not_left_behind() {
    use std::os::unix::process::CommandExt;
    let dir = tmp("manifest-partial");
    let ev = dir.join("evidence");
    std::fs::create_dir_all(&ev).unwrap();
    for i in 0..20 {
        std::fs::write(ev.join(format!("f{i}.log")), format!("{i}\n")).unwrap();
    }
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let m = out.join("m.json");
    let create = |m: &Path| {
        let mut c = ecir();
        c.args([
            "manifest",
            "create",
            ev.to_str().unwrap(),
            "-o",
            m.to_str().unwrap(),
        ]);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(|| {
                // Writes past 2 KiB fail with EFBIG instead of killing the process.
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let lim = libc::rlimit {
                    rlim_cur: 2048,
                    rlim_max: 2048,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c.output().unwrap()
    };
    let o = create(&m);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("ecir: error: ")
            && lines[0].contains(m.to_str().unwrap())
            && lines[0].contains("cannot write the manifest"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    // An earlier manifest stays whole.
    let (code, _, err) = run(&[
        "manifest",
        "create",
        ev.to_str().unwrap(),
        "-o",
        m.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let earlier = std::fs::read(&m).unwrap();
    assert!(earlier.len() > 2048);
    let o = create(&m);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&m).unwrap(), earlier);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `ecir audit` names files whose names differ only in bytes that are not UTF-8 apart, on
/// the terminal and in JSON (`\xHH` for each such byte, never U+FFFD).
#[cfg(unix)]
#[test]
fn audit_shows_names_that_are_not_utf8_apart() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tmp("audit-bytes");
    let l = "192.0.2.1 - - [01/Oct/2026:10:00:00 +0900] \"GET / HTTP/1.1\" 200 10 \"-\" \"UA\"\n";
    std::fs::write(dir.join(std::ffi::OsStr::from_bytes(b"a\xfe.log")), l).unwrap();
    std::fs::write(dir.join(std::ffi::OsStr::from_bytes(b"a\xff.log")), l).unwrap();
    let d = dir.to_str().unwrap();
    let (_, out, err) = run(&["audit", d, "--as-of", "2026-10-02"]);
    assert!(!out.contains('\u{fffd}'), "{out}");
    assert!(
        out.contains("a\\xfe.log") && out.contains("a\\xff.log"),
        "{out}{err}"
    );
    let (_, json, _) = run(&["audit", d, "--as-of", "2026-10-02", "--json", "-"]);
    assert!(!json.contains('\u{fffd}'), "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [format!("{d}/a\\xfe.log"), format!("{d}/a\\xff.log")]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scan_reports_log_integrity_findings() {
    let dir = tmp("scan");
    family(&dir, 6, Some(3));
    let mut six = String::new();
    for h in 0..24 {
        six.push_str(&format!(
            "192.0.2.1 - - [07/Oct/2026:{h:02}:00:00 +0900] \"GET / HTTP/1.1\" 200 10 \"-\" \"UA\"\n"
        ));
    }
    let data = gz(six.repeat(50).as_bytes());
    std::fs::write(dir.join("access_log-20261007.gz"), &data[..data.len() / 2]).unwrap();
    let (code, out, _) = run(&["scan", dir.to_str().unwrap(), "--json", "-", "-q"]);
    assert_eq!(code, 2, "a damaged archive is an error for scan");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rules: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["category"] == "log-integrity")
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"log.missing_days"), "{rules:?}");
    assert!(rules.contains(&"log.damaged_archive"), "{rules:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Combined-log lines for day `d` of October 2026: `per_hour(h)` lines in hour `h`.
fn day_lines(d: u32, per_hour: impl Fn(u32) -> u32) -> String {
    let mut s = String::new();
    for h in 0..24 {
        for k in 0..per_hour(h) {
            s.push_str(&format!(
                "192.0.2.{} - - [{d:02}/Oct/2026:{h:02}:{:02}:00 +0900] \"GET /products/detail/{k} HTTP/1.1\" 200 10 \"-\" \"UA\"\n",
                1 + k % 50,
                (k * 7) % 60
            ));
        }
    }
    s
}

fn integrity(dir: &Path, extra: &[&str]) -> (Vec<serde_json::Value>, serde_json::Value) {
    let mut args = vec!["scan", "--json", "-", "-q", "--fail-on", "never"];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    let (_, out, err) = run(&args);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["category"] == "log-integrity")
        .cloned()
        .collect();
    (f, v)
}

fn rules_of(f: &[serde_json::Value]) -> Vec<&str> {
    f.iter().map(|f| f["rule"].as_str().unwrap()).collect()
}

#[test]
fn scan_sees_defects_inside_one_file() {
    // A shop that sells nothing at night (01:00-07:00): quiet nights are not silences.
    let night = |h: u32| if (1..7).contains(&h) { 0 } else { 8 };
    let dir = tmp("scan-one-file");
    let mut s = String::new();
    for d in 1..=9 {
        s.push_str(&day_lines(d, night));
    }
    std::fs::write(dir.join("access_log"), &s).unwrap();
    let (f, _) = integrity(&dir, &[]);
    assert!(f.is_empty(), "quiet nights reported: {:?}", rules_of(&f));

    // The same file without the 4th and 5th, and without 10:00-16:00 on the 7th.
    let mut s = String::new();
    for d in (1..=9).filter(|d| *d != 4 && *d != 5) {
        let cut = move |h: u32| {
            if d == 7 && (10..16).contains(&h) {
                0
            } else {
                night(h)
            }
        };
        s.push_str(&day_lines(d, cut));
    }
    std::fs::write(dir.join("access_log"), &s).unwrap();
    let (f, v) = integrity(&dir, &[]);
    assert_eq!(rules_of(&f), ["log.missing_days", "log.silence"], "{f:?}");
    assert_eq!(f[0]["count"], 2);
    assert_eq!(f[0]["first_seen"], "2026-10-04T00:00:00+09:00");
    assert_eq!(f[0]["last_seen"], "2026-10-06T00:00:00+09:00");
    assert_eq!(f[1]["first_seen"], "2026-10-07T10:00:00+09:00");
    assert_eq!(f[1]["last_seen"], "2026-10-07T16:00:00+09:00");
    // Per-hour counts merge across chunks and threads: same report either way.
    let (_, v2) = integrity(&dir, &["-j", "2", "--chunk-size", "4096"]);
    let (_, v1) = integrity(&dir, &["-j", "1"]);
    for x in [&v1, &v2] {
        assert_eq!(x["findings"], v["findings"]);
        assert_eq!(x["inputs"], v["inputs"]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scan_source_silent_but_not_a_quiet_waf() {
    let dir = tmp("scan-sources");
    let mut access = String::new();
    for d in 1..=10 {
        access.push_str(&day_lines(d, |_| 4));
    }
    std::fs::write(dir.join("access_log"), &access).unwrap();
    // A second site log that stopped on the 6th while the shop had traffic.
    let mut ssl = String::new();
    for d in 1..=5 {
        ssl.push_str(&day_lines(d, |_| 2));
    }
    std::fs::write(dir.join("ssl_access_log"), &ssl).unwrap();
    let (f, _) = integrity(&dir, &[]);
    assert_eq!(rules_of(&f), ["log.source_silent"], "{f:?}");
    assert!(f[0]["paths"][0]
        .as_str()
        .unwrap()
        .ends_with("ssl_access_log"));
    assert_eq!(f[0]["count"], 5);
    // A WAF-style log that only writes when it blocks something (three days out of ten) has
    // nothing on quiet days: no gap, no missing day.
    std::fs::remove_file(dir.join("ssl_access_log")).unwrap();
    let mut waf = String::new();
    for d in [2, 5, 9] {
        waf.push_str(&day_lines(d, |h| u32::from(h == 14)));
    }
    std::fs::write(dir.join("waf_blocked.log"), &waf).unwrap();
    let (f, _) = integrity(&dir, &[]);
    assert!(f.is_empty(), "{f:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn manifest_verifies_from_another_directory() {
    let dir = tmp("manifest-cwd");
    let evidence = dir.join("evidence");
    std::fs::create_dir_all(&evidence).unwrap();
    family(&evidence, 2, None);
    let m = dir.join("case.manifest.json");
    // Made with a relative root from the case directory…
    let out = ecir()
        .args(["manifest", "create", "evidence", "-o", "case.manifest.json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    assert_eq!(v["roots"][0], "evidence");
    let abs = v["absolute_roots"][0].as_str().unwrap();
    assert!(
        Path::new(abs).is_absolute() && abs.ends_with("evidence"),
        "{abs}"
    );
    assert_eq!(v["files"][0]["path"], "evidence/access_log-20261001.gz");
    assert_eq!(v["files"][0]["relative_path"], "access_log-20261001.gz");
    assert_eq!(v["files"][0]["root"], 0);
    // …verified from elsewhere: every file matches, none missing or added.
    let elsewhere = std::env::temp_dir();
    let out = ecir()
        .args(["manifest", "verify", m.to_str().unwrap()])
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("2 of 2 file(s) match"), "{text}");
    // And a change is still seen from there.
    std::fs::write(evidence.join("access_log-20261002.gz"), b"x").unwrap();
    let out = ecir()
        .args(["manifest", "verify", m.to_str().unwrap()])
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("MODIFIED"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The repro of the report: two evidence files whose names differ only in bytes that are
/// not UTF-8 (Shift_JIS names, say). Untouched they verify (exit 0); overwriting one is
/// reported as MODIFIED for that file alone (exit 1), named with its odd byte visible.
#[cfg(unix)]
#[test]
fn manifest_verifies_names_that_are_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tmp("manifest-bytes");
    let ev = dir.join("ev2");
    std::fs::create_dir_all(&ev).unwrap();
    let named = |b: &[u8]| ev.join(std::ffi::OsStr::from_bytes(b));
    std::fs::write(named(b"bad\xff"), b"one\n").unwrap();
    std::fs::write(named(b"bad\xfe"), b"two\n").unwrap();
    let run_in = |args: &[&str]| ecir().args(args).current_dir(&dir).output().unwrap();
    let o = run_in(&["manifest", "create", "ev2", "-o", "man2.json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("man2.json")).unwrap()).unwrap();
    let rel: Vec<(&str, &str)> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["relative_path"].as_str().unwrap(),
                f["relative_path_bytes"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(rel, [("bad\\xfe", "626164fe"), ("bad\\xff", "626164ff")]);
    let o = run_in(&["manifest", "verify", "man2.json"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("2 of 2 file(s) match"), "{out}");
    std::fs::write(named(b"bad\xfe"), b"tampered\n").unwrap();
    let o = run_in(&["manifest", "verify", "man2.json"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let modified: Vec<&str> = out.lines().filter(|l| l.starts_with("MODIFIED")).collect();
    assert_eq!(modified.len(), 1, "{out}");
    assert!(modified[0].starts_with("MODIFIED ev2/bad\\xfe "), "{out}");
    assert!(out.contains("1 of 2 file(s) match"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `manifest verify` reads the manifest with a size cap and only from a regular file:
/// `/dev/zero`, a FIFO or a directory is one error line naming it, a hint, and status 2.
#[cfg(unix)]
#[test]
fn manifest_verify_refuses_what_is_not_a_regular_file() {
    use crate::support::{assert_refused, mkfifo, run_within};
    let dir = tmp("manifest-bounded");
    let fifo = dir.join("man.json");
    mkfifo(&fifo);
    for (m, problem) in [
        ("/dev/zero", "not a regular file (a character device)"),
        (fifo.to_str().unwrap(), "not a regular file (a FIFO)"),
        (dir.to_str().unwrap(), "not a regular file (a directory)"),
    ] {
        let o = run_within(&["manifest", "verify", m]);
        assert_refused(&o, &format!("{m}: cannot read the manifest: "), problem);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn audit_json_to_stdout_is_only_json_and_the_summary_goes_to_stderr() {
    let dir = tmp("dash");
    family(&dir, 3, None);
    let d = dir.to_str().unwrap();
    let (code, out, err) = run(&[
        "audit",
        d,
        "--retention",
        "3d",
        "--as-of",
        "2026-10-03",
        "--json",
        "-",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("}\n"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "pass");
    assert!(err.contains("Verdict: PASS"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn audit_refuses_two_outputs_sharing_a_path() {
    let dir = tmp("twoout");
    family(&dir, 3, None);
    let out = tmp("twoout-out");
    let o = out.join("o.json");
    let dotted = format!("{}/./o.json", out.display());
    let (code, stdout, err) = run(&[
        "audit",
        dir.to_str().unwrap(),
        "--json",
        o.to_str().unwrap(),
        "--html",
        &dotted,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        err.contains("name the same file") && err.contains("hint:"),
        "{err}"
    );
    assert!(!o.exists());
    for d in [dir, out] {
        std::fs::remove_dir_all(&d).unwrap();
    }
}

#[test]
fn audit_of_nothing_says_why() {
    // An empty directory: the reason, not a bare verdict.
    let dir = tmp("empty");
    let (code, out, _) = run(&["audit", dir.to_str().unwrap(), "--as-of", "2026-10-03"]);
    assert_eq!(code, 1);
    assert!(out.contains("No log file was found under"), "{out}");
    assert!(out.contains(dir.to_str().unwrap()), "{out}");
    // A path that does not exist: only the error.
    let missing = dir.join("nope");
    let (code, out, err) = run(&["audit", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out}");
    assert!(!err.contains("Verdict"), "{err}");
    assert!(err.contains("no such file or directory"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn audit_as_of_with_an_offset_counts_days_in_that_offset() {
    let dir = tmp("asofoffset");
    family(&dir, 3, None);
    let d = dir.to_str().unwrap();
    // 00:30 on 3 October in Japan is still 2 October in UTC: the user means the 3rd.
    let out = ecir()
        .args([
            "audit",
            d,
            "--retention",
            "3d",
            "--as-of",
            "2026-10-03T00:30:00+09:00",
            "--json",
            "-",
            "-q",
        ])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["policy"]["as_of"], "2026-10-03");
    assert_eq!(v["policy"]["timezone"], "Etc/GMT-9");
    assert!(v["policy"]["timezone_source"]
        .as_str()
        .unwrap()
        .contains("--as-of"));
    // --tz still wins.
    let out = ecir()
        .args([
            "audit",
            d,
            "--as-of",
            "2026-10-03T00:30:00+09:00",
            "--tz",
            "UTC",
            "--json",
            "-",
            "-q",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["policy"]["as_of"], "2026-10-02");
    std::fs::remove_dir_all(&dir).unwrap();
}
