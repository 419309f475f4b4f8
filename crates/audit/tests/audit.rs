//! End-to-end tests of the audit library on generated log trees: stream grouping, every
//! defect class, the verdict, coverage gaps, card numbers and the manifest.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use ecir_audit::manifest;
use ecir_audit::{audit, AuditOptions, AuditReport, StreamReport, Verdict};
use ecir_formats::ParseContext;
use ecir_input::Hidden;
use ecir_model::Timestamp;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ecir-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Access-log lines for `day`, one every `step` minutes over the hours in `hours`.
fn clf_day(day: NaiveDate, hours: std::ops::Range<u32>, step: u32) -> String {
    let mut s = String::new();
    for h in hours {
        for m in (0..60).step_by(step as usize) {
            s.push_str(&format!(
                "198.51.100.7 - - [{}:{h:02}:{m:02}:00 +0900] \"GET / HTTP/1.1\" 200 100 \"-\" \"UA\"\n",
                day.format("%d/%b/%Y")
            ));
        }
    }
    s
}

fn opts(as_of: &str, retention: u32) -> AuditOptions {
    let d = date(as_of);
    AuditOptions {
        retention_days: retention,
        online_days: 3,
        online_uncompressed: false,
        as_of_date: d,
        as_of_instant: Timestamp::parse_rfc3339(&format!("{as_of}T23:59:59+09:00")).unwrap(),
        // The run happens at the end of the audit date unless a test says otherwise.
        now: Timestamp::parse_rfc3339(&format!("{as_of}T23:59:59+09:00")).unwrap(),
        tz_source: "--tz".into(),
        parse: ParseContext {
            tz: "Asia/Tokyo".parse().unwrap(),
            ..Default::default()
        },
        jobs: 2,
        exclude: vec![],
        version: "test".into(),
        cards: true,
    }
}

fn days(from: &str, n: u64) -> Vec<NaiveDate> {
    (0..n).map(|i| date(from) + chrono::Days::new(i)).collect()
}

/// A daily-rotated access_log family: `access_log-YYYYMMDD.gz`, live file for the last day.
fn write_family(dir: &Path, ds: &[NaiveDate]) {
    for (i, d) in ds.iter().enumerate() {
        let text = clf_day(*d, 0..24, 10);
        if i + 1 == ds.len() {
            std::fs::write(dir.join("access_log"), text).unwrap();
        } else {
            let name = format!("access_log-{}.gz", d.format("%Y%m%d"));
            std::fs::write(dir.join(name), gz(text.as_bytes())).unwrap();
        }
    }
}

fn stream<'a>(r: &'a AuditReport, suffix: &str) -> &'a StreamReport {
    r.streams
        .iter()
        .find(|s| s.name.ends_with(suffix))
        .unwrap_or_else(|| {
            panic!(
                "no stream {suffix}: {:?}",
                r.streams.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
}

#[test]
fn complete_family_passes() {
    let dir = tmp("pass");
    write_family(&dir, &days("2026-10-01", 10));
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-10", 10)).unwrap();
    assert_eq!(r.streams.len(), 1, "{:?}", r.streams);
    let s = &r.streams[0];
    assert_eq!(s.files.len(), 10);
    assert_eq!(s.source, "web");
    assert_eq!(s.days_covered, 10);
    assert!(s.missing_days.is_empty());
    assert_eq!(s.lines_per_day["2026-10-05"], 24 * 6);
    assert_eq!(
        s.first_ts.unwrap().to_rfc3339(),
        "2026-10-01T00:00:00+09:00"
    );
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
    // Oldest first in rotation order, the live file last.
    assert!(s.files[0].path.ends_with("access_log-20261001.gz"));
    assert!(s.files[9].path.ends_with("access_log"));
    // Retention longer than the logs: fails with a sentence saying so.
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-10", 30)).unwrap();
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(
        r.streams[0].reasons[0].contains("covers only 10 of the 30 days"),
        "{:?}",
        r.streams[0].reasons
    );
    // Audit long after the last line: logging stopped.
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-20", 10)).unwrap();
    assert!(r.streams[0]
        .reasons
        .iter()
        .any(|x| x.contains("logging stopped")));
    // Online days required uncompressed: only the live file is.
    let mut o = opts("2026-10-10", 10);
    o.online_uncompressed = true;
    let r = audit(std::slice::from_ref(&dir), &o).unwrap();
    assert_eq!(
        r.streams[0].online_compressed_days,
        vec!["2026-10-08", "2026-10-09"]
    );
    assert_eq!(r.verdict, Verdict::Fail);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rotation_schemes_group_into_streams() {
    let dir = tmp("group");
    let d = days("2026-10-01", 3);
    std::fs::write(
        dir.join("access.log.2.gz"),
        gz(clf_day(d[0], 0..24, 30).as_bytes()),
    )
    .unwrap();
    std::fs::write(dir.join("access.log.1"), clf_day(d[1], 0..24, 30)).unwrap();
    std::fs::write(dir.join("access.log"), clf_day(d[2], 0..24, 30)).unwrap();
    for day in &d {
        std::fs::write(
            dir.join(format!("admin-{day}.log")),
            format!("[{day} 10:00:00] admin.INFO: login ok\n[{day} 11:00:00] admin.INFO: order\n"),
        )
        .unwrap();
    }
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-03", 3)).unwrap();
    assert_eq!(r.streams.len(), 2);
    let a = stream(&r, "/access.log");
    let names: Vec<&str> = a
        .files
        .iter()
        .map(|f| f.path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, vec!["access.log.2.gz", "access.log.1", "access.log"]);
    assert!(a.file_order.is_empty(), "{:?}", a.file_order);
    let adm = stream(&r, "/admin.log");
    assert_eq!(adm.files.len(), 3);
    assert_eq!(adm.days_covered, 3);
    assert_eq!(adm.files[0].format, "generic-timestamp");
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn defects_are_found() {
    let dir = tmp("defects");
    let ds = days("2026-10-01", 12);
    // Missing day: 2026-10-04 never written.
    let family: Vec<NaiveDate> = ds
        .iter()
        .copied()
        .filter(|d| d.to_string() != "2026-10-04")
        .collect();
    write_family(&dir, &family);
    // Truncated archive for 2026-10-06 (rewritten, cut in half).
    let six = gz(clf_day(ds[5], 0..24, 1).as_bytes());
    std::fs::write(dir.join("access_log-20261006.gz"), &six[..six.len() / 2]).unwrap();
    // Bad CRC for 2026-10-07.
    let mut seven = gz(clf_day(ds[6], 0..24, 10).as_bytes());
    let n = seven.len();
    seven[n - 8] ^= 0xff;
    std::fs::write(dir.join("access_log-20261007.gz"), seven).unwrap();
    // Empty rotated file, and a duplicate of 2026-10-02 under a numbered name.
    std::fs::write(dir.join("access_log.3"), "").unwrap();
    std::fs::copy(
        dir.join("access_log-20261002.gz"),
        dir.join("access_log.2.gz"),
    )
    .unwrap();
    // 2026-10-09 holds the lines of 2026-10-01 (runs backwards), plus a silence on 10-10.
    std::fs::write(
        dir.join("access_log-20261009.gz"),
        gz(clf_day(ds[0], 0..24, 15).as_bytes()),
    )
    .unwrap();
    let mut ten = clf_day(ds[9], 0..8, 10);
    ten.push_str(&clf_day(ds[9], 16..24, 10));
    std::fs::write(dir.join("access_log-20261010.gz"), gz(ten.as_bytes())).unwrap();
    // Backwards inside a file, and a line in the future of the audit date (10-11 file).
    let mut eleven = clf_day(ds[10], 0..12, 10);
    eleven.push_str(
        "198.51.100.7 - - [11/Oct/2026:02:00:00 +0900] \"GET / HTTP/1.1\" 200 1 \"-\" \"UA\"\n",
    );
    eleven.push_str(&clf_day(ds[10], 12..24, 10));
    eleven.push_str("198.51.100.7 - - [01/Dec/2026:00:00:00 +0900] \"GET /?cc_number=4111-1111-1111-1111 HTTP/1.1\" 200 1 \"-\" \"UA\"\n");
    std::fs::write(dir.join("access_log-20261011.gz"), gz(eleven.as_bytes())).unwrap();

    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-12", 12)).unwrap();
    let s = stream(&r, "/access_log");
    assert_eq!(
        s.missing_days,
        vec!["2026-10-04", "2026-10-09"],
        "{:?}",
        s.lines_per_day
    );
    let damaged: Vec<&str> = s
        .damaged_files
        .iter()
        .map(|d| d.file.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        damaged,
        vec!["access_log-20261006.gz", "access_log-20261007.gz"]
    );
    assert!(
        s.damaged_files[0].problem.contains("truncated"),
        "{}",
        s.damaged_files[0].problem
    );
    let p = &s.damaged_files[1].problem;
    assert!(p.contains("CRC") || p.contains("checksum"), "{p}");
    assert_eq!(s.empty_files.len(), 1, "{:?}", s.empty_files);
    assert!(s.empty_files[0].ends_with("access_log.3"));
    assert_eq!(s.duplicate_files.len(), 1);
    assert!(s.duplicate_files[0]
        .same_as
        .ends_with("access_log-20261002.gz"));
    assert!(s.duplicate_files[0].file.ends_with("access_log.2.gz"));
    let back: Vec<(&str, &str)> = s
        .file_order
        .iter()
        .map(|o| (o.file.rsplit('/').next().unwrap(), o.kind.as_str()))
        .collect();
    assert!(
        back.contains(&("access_log-20261009.gz", "backwards")),
        "{back:?}"
    );
    assert_eq!(s.backwards_timestamps.len(), 1);
    assert_eq!(s.backwards_timestamps[0].count, 1);
    assert_eq!(s.future_timestamps.len(), 1);
    assert!(
        s.silences
            .iter()
            .any(|x| x.from == "2026-10-10T08:00" && x.to == "2026-10-10T16:00"),
        "{:?}",
        s.silences
    );
    assert_eq!(s.verdict, Verdict::Fail);
    for needle in ["no line at all", "damaged", "dated in the future"] {
        assert!(
            s.reasons.iter().any(|x| x.contains(needle)),
            "{needle}: {:?}",
            s.reasons
        );
    }
    // Card number, masked, with location.
    assert_eq!(r.card_numbers.len(), 1);
    assert_eq!(r.card_numbers[0].masked, "411111******1111");
    assert!(r.card_numbers[0].file.ends_with("access_log-20261011.gz"));
    assert_eq!(r.card_numbers[0].line as usize, 12 * 6 + 1 + 12 * 6 + 1);
    let json = serde_json::to_string(&r).unwrap();
    assert!(!json.contains("4111-1111-1111-1111") && !json.contains("4111111111111111"));
    assert!(json.contains("\"schema\":\"ecir.audit/1\""));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn coverage_gap_between_streams() {
    let dir = tmp("gaps");
    let ds = days("2026-10-01", 6);
    write_family(&dir, &ds);
    let waf = dir.join("waf");
    std::fs::create_dir_all(&waf).unwrap();
    let mut text = String::new();
    for d in &ds {
        if d.to_string() == "2026-10-03" {
            continue;
        }
        for h in 0..24 {
            text.push_str(&format!(
                "{d}T{h:02}:00:00+09:00 blocked sqli from 203.0.113.9\n"
            ));
        }
    }
    std::fs::write(waf.join("waf.log"), text).unwrap();
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-06", 6)).unwrap();
    let g: Vec<_> = r
        .coverage_gaps
        .iter()
        .filter(|g| g.stream.ends_with("waf/waf.log"))
        .collect();
    assert_eq!(g.len(), 1, "{:?}", r.coverage_gaps);
    assert_eq!(
        (g[0].from.as_str(), g[0].to.as_str()),
        ("2026-10-03", "2026-10-03")
    );
    assert!(g[0].while_.ends_with("/access_log"));
    assert_eq!(g[0].while_lines, 24 * 6);
    assert!(!r
        .coverage_gaps
        .iter()
        .any(|g| g.stream.ends_with("/access_log")));
    // Outside the retention window a gap does not matter to the policy.
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-06", 2)).unwrap();
    assert!(r.coverage_gaps.is_empty(), "{:?}", r.coverage_gaps);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn result_does_not_depend_on_threads() {
    let dir = tmp("det");
    write_family(&dir, &days("2026-10-01", 8));
    let mut a = audit(std::slice::from_ref(&dir), &{
        let mut o = opts("2026-10-08", 8);
        o.jobs = 1;
        o
    })
    .unwrap();
    let mut b = audit(std::slice::from_ref(&dir), &opts("2026-10-08", 8)).unwrap();
    a.stats = Default::default();
    b.stats = Default::default();
    a.generated_at = b.generated_at;
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn manifest_create_and_verify() {
    let dir = tmp("manifest");
    write_family(&dir, &days("2026-10-01", 3));
    std::fs::write(dir.join("notes.txt"), "not a log\n").unwrap();
    let ctx = ParseContext::default();
    let m = manifest::create(
        std::slice::from_ref(&dir),
        &[],
        Hidden::Include,
        &ctx,
        2,
        "test",
        "tester@host",
    );
    assert_eq!(m.files.len(), 4);
    let live = m
        .files
        .iter()
        .find(|f| f.path.ends_with("/access_log"))
        .unwrap();
    assert_eq!(
        live.sha256,
        ecir_input::sha256_hex(&std::fs::read(dir.join("access_log")).unwrap())
    );
    assert_eq!(live.format.as_deref(), Some("combined"));
    assert!(live.first_ts.is_some() && live.modified.is_some());
    let notes = m
        .files
        .iter()
        .find(|f| f.path.ends_with("notes.txt"))
        .unwrap();
    assert_eq!(notes.format, None);
    // Round trip through JSON, then verify an untouched tree.
    let m: manifest::Manifest = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    let v = manifest::verify(&m, &[], 2);
    assert!(v.all_match(), "{v:?}");
    assert_eq!(v.matched, 4);
    // Modify one, remove one, add one.
    std::fs::write(dir.join("notes.txt"), "not a log, edited\n").unwrap();
    std::fs::remove_file(dir.join("access_log-20261001.gz")).unwrap();
    std::fs::write(dir.join("new.log"), "x\n").unwrap();
    let v = manifest::verify(&m, &[], 2);
    assert!(!v.all_match());
    assert_eq!(v.modified.len(), 1);
    assert!(v.modified[0].path.ends_with("notes.txt"));
    assert_eq!(v.missing.len(), 1);
    assert!(v.missing[0].ends_with("access_log-20261001.gz"));
    assert_eq!(v.added.len(), 1);
    assert!(v.added[0].ends_with("new.log"));
    assert_eq!(v.matched, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Hidden files are recorded (chain of custody) and what is left out is listed with its
/// reason; a manifest made before `include_hidden` and `omitted` existed still reads, and
/// verifies as it was made (hidden files skipped).
#[cfg(unix)]
#[test]
fn manifest_records_hidden_files_and_lists_what_it_omits() {
    let dir = tmp("manifest-omitted");
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    std::fs::write(dir.join("a.log"), "one\n").unwrap();
    std::fs::write(dir.join(".htaccess"), "deny\n").unwrap();
    std::fs::write(dir.join(".git/HEAD"), "ref\n").unwrap();
    std::os::unix::fs::symlink("a.log", dir.join("link.log")).unwrap();
    let fifo = dir.join("pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let make = |hidden| {
        manifest::create(
            std::slice::from_ref(&dir),
            &[],
            hidden,
            &ParseContext::default(),
            1,
            "test",
            "tester@host",
        )
    };
    let prefix = format!("{}/", dir.display());
    let rel = |p: &str| p.strip_prefix(&prefix).unwrap().to_string();

    let m = make(Hidden::Include);
    assert!(m.include_hidden);
    let files: Vec<String> = m.files.iter().map(|f| rel(&f.path)).collect();
    assert_eq!(files, [".git/HEAD", ".htaccess", "a.log"]);
    let omitted: Vec<(String, &str)> = m
        .omitted
        .iter()
        .map(|o| (rel(&o.path), o.reason.as_str()))
        .collect();
    assert_eq!(
        omitted,
        [
            ("link.log".to_string(), "symlink"),
            ("pipe".to_string(), "not-a-regular-file")
        ]
    );
    assert!(m.omitted.iter().all(|o| !o.note.is_empty()));
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["include_hidden"], true);
    assert_eq!(json["omitted"][0]["reason"], "symlink");
    let back: manifest::Manifest = serde_json::from_value(json.clone()).unwrap();
    assert!(manifest::verify(&back, &[], 1).all_match());

    let m = make(Hidden::Skip);
    assert!(!m.include_hidden);
    assert_eq!(m.files.len(), 1);
    let hidden: Vec<String> = m
        .omitted
        .iter()
        .filter(|o| o.reason == "hidden")
        .map(|o| rel(&o.path))
        .collect();
    assert_eq!(hidden, [".git", ".htaccess"]);

    // An older manifest: no `include_hidden`, no `omitted`; made with hidden files skipped.
    let mut old = serde_json::to_value(&m).unwrap();
    old.as_object_mut().unwrap().remove("include_hidden");
    old.as_object_mut().unwrap().remove("omitted");
    let old: manifest::Manifest = serde_json::from_value(old).unwrap();
    let v = manifest::verify(&old, &[], 1);
    assert!(v.all_match(), "{v:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file name from raw bytes (Unix).
#[cfg(unix)]
fn raw(dir: &Path, name: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    dir.join(std::ffi::OsStr::from_bytes(name))
}

/// Two files whose names differ only in bytes that are not UTF-8 (both read as `bad\u{fffd}`
/// when decoded lossily) are told apart: untouched they verify, and changing one is reported
/// for that file alone.
#[cfg(unix)]
#[test]
fn manifest_tells_apart_names_that_differ_only_in_non_utf8_bytes() {
    let dir = tmp("manifest-bytes");
    std::fs::write(raw(&dir, b"bad\xff"), "one\n").unwrap();
    std::fs::write(raw(&dir, b"bad\xfe"), "two\n").unwrap();
    std::fs::write(dir.join("ok.log"), "three\n").unwrap();
    let m = manifest::create(
        std::slice::from_ref(&dir),
        &[],
        Hidden::Include,
        &ParseContext::default(),
        2,
        "test",
        "tester@host",
    );
    assert_eq!(m.files.len(), 3);
    let m: manifest::Manifest = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    let v = manifest::verify(&m, &[], 2);
    assert!(v.all_match(), "{v:?}");
    assert_eq!(v.matched, 3);
    assert!(v.errors.is_empty(), "{v:?}");

    std::fs::write(raw(&dir, b"bad\xfe"), "tampered\n").unwrap();
    let v = manifest::verify(&m, &[], 2);
    assert_eq!(v.modified.len(), 1, "{v:?}");
    assert!(v.modified[0].path.ends_with("bad\\xfe"), "{v:?}");
    assert_eq!(
        v.modified[0].actual_sha256,
        ecir_input::sha256_hex(b"tampered\n")
    );
    assert!(v.missing.is_empty() && v.added.is_empty(), "{v:?}");
    assert_eq!(v.matched, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The manifest records a name that is not UTF-8 losslessly (its bytes as hex beside the
/// readable text), leaves UTF-8 names as they always were, and does the same for a root
/// whose name is not UTF-8 (a Shift_JIS directory name), which `verify` then walks exactly.
#[cfg(unix)]
#[test]
fn manifest_records_non_utf8_names_and_roots_exactly() {
    let base = tmp("manifest-sjis");
    // "証拠" (evidence) in Shift_JIS.
    let root = raw(&base, b"\x8f\xd8\x8b\x92");
    std::fs::create_dir_all(raw(&root, b"sub\x82\xa0")).unwrap();
    std::fs::write(raw(&root, b"sub\x82\xa0/a\xff.log"), "one\n").unwrap();
    std::fs::write(root.join("plain.log"), "two\n").unwrap();
    let m = manifest::create(
        std::slice::from_ref(&root),
        &[],
        Hidden::Include,
        &ParseContext::default(),
        1,
        "test",
        "tester@host",
    );
    let v: serde_json::Value = serde_json::to_value(&m).unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    use std::os::unix::ffi::OsStrExt;
    assert_eq!(
        v["roots_bytes"][0].as_str().unwrap(),
        hex(root.as_os_str().as_bytes())
    );
    let abs = std::fs::canonicalize(&root).unwrap();
    assert_eq!(
        v["absolute_roots_bytes"][0].as_str().unwrap(),
        hex(abs.as_os_str().as_bytes())
    );
    // The readable text keeps runs that happen to be valid UTF-8 (0xd8 0x8b is U+060B).
    assert!(
        v["absolute_roots"][0]
            .as_str()
            .unwrap()
            .ends_with("\\x8f\u{60b}\\x92"),
        "{}",
        v["absolute_roots"][0]
    );
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    let plain = files
        .iter()
        .find(|f| f["relative_path"] == "plain.log")
        .unwrap();
    // A UTF-8 name under that root: the relative path is as before, with no bytes field.
    assert!(plain.get("relative_path_bytes").is_none(), "{plain}");
    let odd = files
        .iter()
        .find(|f| f["relative_path"] == "sub\\x82\\xa0/a\\xff.log")
        .unwrap();
    assert_eq!(odd["relative_path_bytes"], hex(b"sub\x82\xa0/a\xff.log"));
    assert_eq!(
        odd["path_bytes"],
        hex(raw(&root, b"sub\x82\xa0/a\xff.log").as_os_str().as_bytes())
    );
    // Verified untouched from another working directory, then with the odd file changed.
    let m: manifest::Manifest = serde_json::from_value(v).unwrap();
    let r = manifest::verify(&m, &[], 1);
    assert!(r.all_match() && r.errors.is_empty(), "{r:?}");
    assert_eq!(r.matched, 2);
    std::fs::write(raw(&root, b"sub\x82\xa0/a\xff.log"), "changed\n").unwrap();
    let r = manifest::verify(&m, &[], 1);
    assert_eq!(r.modified.len(), 1, "{r:?}");
    assert!(r.modified[0].path.ends_with("sub\\x82\\xa0/a\\xff.log"));
    assert!(r.missing.is_empty() && r.added.is_empty(), "{r:?}");
    // A file added under the odd directory is listed by its readable name.
    std::fs::write(raw(&root, b"sub\x82\xa0/b\xfe.log"), "new\n").unwrap();
    let r = manifest::verify(&m, &[], 1);
    assert_eq!(r.added.len(), 1, "{r:?}");
    assert!(r.added[0].ends_with("sub\\x82\\xa0/b\\xfe.log"), "{r:?}");
    std::fs::remove_dir_all(&base).unwrap();
}

/// A UTF-8 manifest written before the bytes fields existed still verifies (no field is
/// required), and a bytes field that is not hex is reported, not trusted silently.
#[test]
fn manifest_without_bytes_fields_verifies_and_bad_hex_is_reported() {
    let dir = tmp("manifest-compat");
    std::fs::write(dir.join("a.log"), "one\n").unwrap();
    let m = manifest::create(
        std::slice::from_ref(&dir),
        &[],
        Hidden::Include,
        &ParseContext::default(),
        1,
        "test",
        "tester@host",
    );
    let mut v: serde_json::Value = serde_json::to_value(&m).unwrap();
    for key in ["roots_bytes", "absolute_roots_bytes"] {
        assert!(v.get(key).is_none(), "{key} written for UTF-8 roots");
    }
    assert!(v["files"][0].get("path_bytes").is_none());
    let old: manifest::Manifest = serde_json::from_value(v.clone()).unwrap();
    assert!(manifest::verify(&old, &[], 1).all_match());
    v["files"][0]["relative_path_bytes"] = "zz".into();
    let bad: manifest::Manifest = serde_json::from_value(v).unwrap();
    let r = manifest::verify(&bad, &[], 1);
    assert_eq!(r.errors.len(), 1, "{r:?}");
    assert!(r.errors[0].message.contains("relative_path_bytes"), "{r:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `load` reads a manifest through the bounded reader: a device or a directory is refused
/// with a one-line error naming the file, and another JSON document is not a manifest.
#[test]
fn manifest_load_refuses_what_is_not_a_manifest_file() {
    let dir = tmp("manifest-load");
    let e = manifest::load(&dir).unwrap_err();
    assert!(
        matches!(e, manifest::LoadError::Read(_)) && e.to_string().contains("not a regular file"),
        "{e}"
    );
    assert!(e.hint().is_some());
    #[cfg(unix)]
    {
        let e = manifest::load(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("/dev/zero"), "{e}");
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
    let other = dir.join("report.json");
    std::fs::write(&other, "{\"schema\": \"ecir.report/1\"}").unwrap();
    assert!(manifest::load(&other).is_err());
    let m = manifest::create(
        &[],
        &[],
        Hidden::Include,
        &ParseContext::default(),
        1,
        "test",
        "t@h",
    );
    let good = dir.join("m.json");
    std::fs::write(&good, serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(manifest::load(&good).unwrap(), m);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn non_log_files_are_ignored_not_failed() {
    let dir = tmp("nonlog");
    write_family(&dir, &days("2026-10-01", 5));
    std::fs::write(
        dir.join("README.md"),
        "How these logs were collected.\nBy the host.\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("incident-report.html"),
        "<html><body>Report</body></html>\n",
    )
    .unwrap();
    // A login record: fixed-size binary records, NUL padded.
    let mut wtmp = vec![0u8; 384 * 4];
    wtmp[0] = 7;
    wtmp[44..49].copy_from_slice(b"pts/0");
    std::fs::write(dir.join("wtmp.1"), &wtmp).unwrap();
    // Binary under a name that says nothing.
    std::fs::write(
        dir.join("dump.bin"),
        [0u8, 1, 2, 3, 0, 0, 0, 9, 10, 0, 0, 0].repeat(50),
    )
    .unwrap();
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-05", 5)).unwrap();
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
    let ignored: Vec<&str> = r
        .ignored
        .iter()
        .map(|i| i.path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        ignored,
        ["README.md", "dump.bin", "incident-report.html", "wtmp.1"]
    );
    assert!(
        r.ignored[3].reason.contains("login record"),
        "{}",
        r.ignored[3].reason
    );
    assert!(
        r.ignored[1].reason.contains("binary"),
        "{}",
        r.ignored[1].reason
    );
    assert_eq!(r.streams.len(), 1);
    let page = ecir_audit::html::render(&r);
    assert!(
        page.contains("Not logs, ignored (4)"),
        "html lists ignored files"
    );
    assert!(page.contains("README.md</code>: a document"));
    // Negative: a text file without timestamps under a log-like name is still a stream that
    // fails (it may be a log ecir cannot time), and a dated README-named file is a log.
    std::fs::write(dir.join("custom.log"), "started\nstopped\n").unwrap();
    std::fs::write(dir.join("notes.txt"), clf_day(date("2026-10-05"), 0..1, 30)).unwrap();
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-05", 5)).unwrap();
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(r.streams.iter().any(|s| s.name.ends_with("custom.log")));
    assert!(r.streams.iter().any(|s| s.name.ends_with("notes.txt")));
    assert_eq!(r.ignored.len(), 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn syslog_year_comes_from_the_file_time() {
    let dir = tmp("syslog-year");
    let mut s = String::new();
    for d in 10..=14 {
        for h in 0..24 {
            s.push_str(&format!(
                "Nov {d} {h:02}:00:01 shop sshd[42]: Accepted publickey for deploy from 203.0.113.5 port 50000 ssh2\n"
            ));
        }
    }
    let p = dir.join("auth.log.1");
    std::fs::write(&p, s).unwrap();
    // Rotated in late November 2024: its lines are from 2024, not from the audit's year.
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_732_600_000);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-05", 5)).unwrap();
    let st = stream(&r, "auth.log");
    assert_eq!(st.files[0].format, "auth-log", "{:?}", st.files[0]);
    let first = st.first_ts.unwrap().to_string();
    assert!(first.starts_with("2024-11-10T00:00:01"), "{first}");
    assert_eq!(st.days_covered, 5);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stream_made_only_of_copies_points_to_its_original_and_does_not_fail() {
    let dir = tmp("copies");
    let ds = days("2026-10-01", 5);
    write_family(&dir, &ds);
    // A backup copy of the live log under another name, and one of a rotated archive.
    std::fs::copy(dir.join("access_log"), dir.join("backup_log")).unwrap();
    std::fs::copy(
        dir.join("access_log-20261001.gz"),
        dir.join("old_log-20261001.gz"),
    )
    .unwrap();
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-05", 5)).unwrap();
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
    for name in ["backup_log", "old_log"] {
        let s = stream(&r, name);
        assert_eq!(
            s.copy_of.as_deref(),
            Some(stream(&r, "access_log").name.as_str()),
            "{name}"
        );
        assert_eq!(s.verdict, Verdict::Pass);
        assert!(s.reasons.is_empty(), "{:?}", s.reasons);
        assert!(
            s.warnings.iter().any(|w| w.contains("byte-for-byte copy")),
            "{:?}",
            s.warnings
        );
    }
    assert_eq!(stream(&r, "access_log").copy_of, None);
    let page = ecir_audit::html::render(&r);
    assert!(page.contains("A copy of stream"));
    // Negative: a stream with one line of its own beside a copy is judged as usual (it
    // covers one day of five and fails).
    let own = clf_day(date("2026-10-05"), 0..1, 30);
    std::fs::write(dir.join("old_log"), own).unwrap();
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-05", 5)).unwrap();
    let s = stream(&r, "old_log");
    assert_eq!(s.copy_of, None);
    assert_eq!(s.verdict, Verdict::Fail);
    assert_eq!(s.duplicate_files.len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lines_after_a_past_audit_date_are_out_of_scope_not_a_clock_fault() {
    let dir = tmp("lookback");
    write_family(&dir, &days("2026-10-01", 20));
    // A look-back audit as of 2026-10-10, run on 2026-10-20: ten days of lines after it.
    let mut o = opts("2026-10-10", 10);
    o.now = Timestamp::parse_rfc3339("2026-10-20T23:59:59+09:00").unwrap();
    let r = audit(std::slice::from_ref(&dir), &o).unwrap();
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
    let s = &r.streams[0];
    assert!(s.future_timestamps.is_empty(), "{:?}", s.future_timestamps);
    assert_eq!(s.lines_after_as_of, 10 * 24 * 6);
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("after the end of the audit")),
        "{:?}",
        s.warnings
    );
    // Lines after the real time of the run (beyond the slack) still fail.
    o.now = Timestamp::parse_rfc3339("2026-10-15T12:00:00+09:00").unwrap();
    let r = audit(std::slice::from_ref(&dir), &o).unwrap();
    let s = &r.streams[0];
    assert_eq!(s.verdict, Verdict::Fail);
    let future: u64 = s.future_timestamps.iter().map(|t| t.count).sum();
    // After 15 Oct 13:00 (one hour of slack; the line at 13:00 itself is not after it) to
    // the end of the 20th.
    assert_eq!(future, (11 + 5 * 24) * 6 - 1);
    assert!(s.reasons.iter().any(|w| w.contains("in the future")));
    assert_eq!(s.lines_after_as_of, (4 * 24 + 13) * 6 + 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn damage_older_than_the_retention_window_is_a_note() {
    let dir = tmp("olddamage");
    let ds = days("2026-10-01", 20);
    write_family(&dir, &ds);
    let truncate = |name: &str| {
        let p = dir.join(name);
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() / 2]).unwrap();
    };
    // The window is 2026-10-11..=2026-10-20; the archive of 3 October is cut in half.
    truncate("access_log-20261003.gz");
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-20", 10)).unwrap();
    let s = &r.streams[0];
    assert_eq!(s.damaged_files.len(), 1);
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("older than the retention window")),
        "{:?}",
        s.warnings
    );
    // The last archive before the window: what it lost may be dated as late as the first
    // line of the next file, on the window's first day, so it fails.
    truncate("access_log-20261010.gz");
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-20", 10)).unwrap();
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(
        r.streams[0].reasons[0].contains("20261010"),
        "{:?}",
        r.reasons
    );
    // Damage inside the window fails.
    truncate("access_log-20261015.gz");
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-20", 10)).unwrap();
    let s = &r.streams[0];
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(
        s.reasons
            .iter()
            .any(|w| w.contains("2 file(s) are damaged")),
        "{:?}",
        s.reasons
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn web_server_error_logs_are_timed() {
    let dir = tmp("errorlog");
    let ds = days("2026-10-01", 3);
    let mut apache = String::new();
    let mut nginx = String::new();
    let mut modsec = String::new();
    for d in &ds {
        apache.push_str(&format!(
            "[{}.123456 {}] [core:error] [pid 10:tid 20] [client 192.0.2.1:5000] AH00128: File does not exist: /x\n",
            d.format("%a %b %d 10:00:00"),
            d.format("%Y")
        ));
        apache.push_str(&format!(
            "[{} {}] [error] [client 192.0.2.1] File does not exist: /y\n",
            d.format("%a %b %d 11:00:00"),
            d.format("%Y")
        ));
        nginx.push_str(&format!(
            "{} 12:00:00 [error] 7#7: *1 open() \"/x\" failed, client: 192.0.2.1\n",
            d.format("%Y/%m/%d")
        ));
        // An error log with a ModSecurity alert on the first day only: the other lines are
        // no WAF events but still show the log was written.
        modsec.push_str(&format!(
            "[{} {}] [core:notice] [pid 1] AH00094: Command line: 'httpd'\n",
            d.format("%a %b %d 09:00:00"),
            d.format("%Y")
        ));
        if d == &ds[0] {
            modsec.push_str(&format!(
                "[{} {}] [security2:error] [pid 1] [client 192.0.2.1:5] [client 192.0.2.1] ModSecurity: Warning. Matched phrase \"x\" [file \"r.conf\"] [line \"1\"] [id \"930120\"] [msg \"OS File Access Attempt\"] [hostname \"shop\"] [uri \"/\"] [unique_id \"AAA\"]\n",
                d.format("%a %b %d 09:30:00"),
                d.format("%Y")
            ));
        }
    }
    for (sub, name, text) in [
        ("a", "error_log", &apache),
        ("n", "error.log", &nginx),
        ("m", "error_log", &modsec),
    ] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::write(dir.join(sub).join(name), text).unwrap();
    }
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-03", 3)).unwrap();
    for (name, format, lines) in [
        ("a/error_log", "apache-error-log", 6),
        ("n/error.log", "nginx-error-log", 3),
        ("m/error_log", "modsec-apache-error", 4),
    ] {
        let s = stream(&r, name);
        assert_eq!(s.files[0].format, format, "{name}");
        assert_eq!(s.dated_lines, lines, "{name}");
        assert_eq!(s.days_covered, 3, "{name}");
        assert_eq!(s.verdict, Verdict::Pass, "{name}: {:?}", s.reasons);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn hand_made_copies_join_their_stream_and_decompressed_copies_are_copies() {
    let dir = tmp("strays");
    write_family(&dir, &days("2026-10-01", 10));
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    // `gunzip -k` of one archive, `zcat > x.txt` and a file manager's `-copy7` of others.
    std::fs::write(
        dir.join("access_log-20261002"),
        gunzip(&read("access_log-20261002.gz")),
    )
    .unwrap();
    std::fs::write(
        dir.join("access_log-20261003.txt"),
        gunzip(&read("access_log-20261003.gz")),
    )
    .unwrap();
    std::fs::write(
        dir.join("access_log-copy7"),
        gunzip(&read("access_log-20261007.gz")),
    )
    .unwrap();
    // A backup of one day whose original is gone: the day is still there.
    std::fs::rename(
        dir.join("access_log-20261005.gz"),
        dir.join("access_log-20261005.gz.bak"),
    )
    .unwrap();
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-10", 10)).unwrap();
    assert_eq!(
        r.streams
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        vec![stream(&r, "access_log").name.as_str()]
    );
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
    let s = &r.streams[0];
    assert_eq!(s.days_covered, 10);
    // Each day counted once.
    assert_eq!(s.lines_per_day["2026-10-02"], 24 * 6);
    let mut dups: Vec<(String, String, String)> = s
        .duplicate_files
        .iter()
        .map(|d| {
            let short = |p: &str| p.rsplit('/').next().unwrap().to_string();
            (short(&d.file), short(&d.same_as), d.same.clone())
        })
        .collect();
    dups.sort();
    let want = |a: &str, b: &str| (a.to_string(), b.to_string(), "lines".to_string());
    assert_eq!(
        dups,
        vec![
            want("access_log-20261002.gz", "access_log-20261002"),
            want("access_log-20261003.txt", "access_log-20261003.gz"),
            want("access_log-copy7", "access_log-20261007.gz"),
        ]
    );
    assert!(s.file_order.is_empty(), "{:?}", s.file_order);
    assert!(
        s.warnings.iter().any(|w| w.contains("hand-made copies")),
        "{:?}",
        s.warnings
    );
    // A hand-made copy whose stem names no stream stays a stream of its own.
    std::fs::write(
        dir.join("other.log.bak"),
        clf_day(date("2026-10-10"), 0..1, 30),
    )
    .unwrap();
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-10", 10)).unwrap();
    assert!(stream(&r, "other.log.bak").files.len() == 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Apache error-log lines for `day`: `n` lines from 10:00, a minute apart.
fn error_day(day: NaiveDate, n: u32) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[{} {:02}:{:02}:00 {}] [core:error] [pid 1] [client 192.0.2.1:5] AH00128: File does not exist: /x\n",
                day.format("%a %b %d"),
                10 + i / 60,
                i % 60,
                day.format("%Y")
            )
        })
        .collect()
}

#[test]
fn event_driven_logs_may_have_quiet_days_access_logs_may_not() {
    let dir = tmp("quiet");
    let ds = days("2026-10-01", 10);
    let quiet = |d: &NaiveDate| [3, 4, 8].contains(&d.day0());
    // A busy error log (60 lines a day) rotated daily, with empty rotations on quiet days.
    let busy = dir.join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    for d in &ds {
        let text = if quiet(d) {
            String::new()
        } else {
            error_day(*d, 60)
        };
        std::fs::write(busy.join(format!("error_log-{}", d.format("%Y%m%d"))), text).unwrap();
    }
    // A sparse one (two lines on some days): no file at all on quiet days.
    let sparse = dir.join("sparse");
    std::fs::create_dir_all(&sparse).unwrap();
    for d in ds.iter().filter(|d| !quiet(d)) {
        std::fs::write(
            sparse.join(format!("error_log-{}", d.format("%Y%m%d"))),
            error_day(*d, 2),
        )
        .unwrap();
    }
    // An access log with the same empty rotations stays strict.
    let web = dir.join("web");
    std::fs::create_dir_all(&web).unwrap();
    for d in &ds {
        let text = if quiet(d) {
            String::new()
        } else {
            clf_day(*d, 0..24, 10)
        };
        std::fs::write(web.join(format!("access_log-{}", d.format("%Y%m%d"))), text).unwrap();
    }
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-10", 10)).unwrap();
    for name in ["busy/error_log", "sparse/error_log"] {
        let s = stream(&r, name);
        assert!(s.event_driven, "{name}");
        assert_eq!(s.missing_days.len(), 3, "{name}");
        assert_eq!(s.quiet_days, 3, "{name}");
        assert_eq!(s.verdict, Verdict::Pass, "{name}: {:?}", s.reasons);
        assert!(
            s.warnings.iter().any(|w| w.contains("not counted as lost")),
            "{name}: {:?}",
            s.warnings
        );
    }
    assert!(stream(&r, "busy/error_log")
        .warnings
        .iter()
        .any(|w| w.contains("empty")));
    assert!(stream(&r, "sparse/error_log")
        .warnings
        .iter()
        .any(|w| w.contains("sparse")));
    let s = stream(&r, "web/access_log");
    assert!(!s.event_driven);
    assert_eq!(s.verdict, Verdict::Fail);
    assert!(s
        .reasons
        .iter()
        .any(|w| w.contains("3 day(s) inside the retention window")));
    // Without the empty rotations the busy error log has lost days.
    for d in ds.iter().filter(|d| quiet(d)) {
        std::fs::remove_file(busy.join(format!("error_log-{}", d.format("%Y%m%d")))).unwrap();
    }
    let r = audit(std::slice::from_ref(&dir), &opts("2026-10-10", 10)).unwrap();
    let s = stream(&r, "busy/error_log");
    assert_eq!(s.verdict, Verdict::Fail);
    assert_eq!(s.quiet_days, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
