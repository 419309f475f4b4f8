//! Behaviour of `ecir scan` as a user meets it: exit codes, damaged and hostile input,
//! determinism across thread counts, format detection, filters and output placement.

use crate::support::*;

const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)";

#[test]
fn exit_codes() {
    let sample = root().join("fixtures/sample-shop").display().to_string();
    assert_eq!(
        run(&["scan", "--quiet", &sample]).status.code(),
        Some(1),
        "high findings"
    );
    assert_eq!(
        run(&["scan", "--quiet", "--fail-on", "never", &sample])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&["scan", "--quiet", "--fail-on", "critical", &sample])
            .status
            .code(),
        Some(0),
        "the sample has no critical finding"
    );
    let out = run(&["scan", "--quiet", "/nonexistent/ecir-logs"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/ecir-logs") && err.contains("no such file"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(
        run(&["scan", "--format", "nope", &sample]).status.code(),
        Some(2)
    );
    assert_eq!(
        run(&["scan", "--tz", "Mars/Olympus", &sample])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&["scan"]).status.code(),
        Some(2),
        "missing PATH is a usage error"
    );
}

#[test]
fn damaged_gzip_is_reported_and_the_run_goes_on() {
    let dir = temp_dir("damaged");
    let mut text = String::new();
    for i in 0..5000 {
        text.push_str(&line(
            "198.51.100.1",
            &format!("03/Nov/2026:10:{:02}:{:02} +0900", (i / 60) % 60, i % 60),
            &format!("GET /products/detail/{i} HTTP/1.1"),
            200,
            1000,
            UA,
        ));
    }
    let gz = gzip(text.as_bytes());
    write(&dir, "access.log.2.gz", &gz[..gz.len() / 2]);
    write(
        &dir,
        "access.log",
        line(
            "203.0.113.5",
            "03/Nov/2026:11:00:00 +0900",
            "GET /.env HTTP/1.1",
            200,
            900,
            UA,
        ),
    );
    let (code, report) = scan_json(&[dir.to_str().unwrap()]);
    assert_eq!(code, 2, "a damaged archive is an error even with findings");
    let inputs = report["inputs"].as_array().unwrap();
    let damaged = inputs
        .iter()
        .find(|i| i["path"].as_str().unwrap().ends_with(".gz"))
        .unwrap();
    let err = damaged["errors"][0].as_str().unwrap();
    assert!(err.contains("truncated"), "{err}");
    let recovered = damaged["lines"].as_u64().unwrap();
    assert!(recovered > 100 && recovered < 5000, "recovered {recovered}");
    assert!(err.contains(&format!("{recovered} lines")), "{err}");
    assert_eq!(damaged["compression"], "gzip");
    // The intact file was still analysed.
    assert!(report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "web.sensitive_file"));
    // The report itself says the run is incomplete, for a consumer that reads only it.
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["path"], damaged["path"]);
    assert_eq!(errors[0]["message"].as_str(), Some(err));
    // A path that does not exist is in `errors` too, with its hint; the rest is read.
    let missing = dir.join("no-such.log");
    let (code, report) = scan_json(&[dir.to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    let errors = report["errors"].as_array().unwrap();
    let gone = errors
        .iter()
        .find(|e| e["path"] == missing.to_str().unwrap())
        .unwrap_or_else(|| panic!("{errors:?}"));
    assert!(gone["message"].as_str().unwrap().contains("no such file"));
    assert!(gone["hint"].is_string());
    // A complete run says so with an empty list.
    let (code, report) = scan_json(&[dir.join("access.log").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(report["errors"], serde_json::json!([]));
    // And stderr names the file.
    let out = run(&["scan", "--quiet", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("access.log.2.gz") && stderr.contains("truncated"),
        "{stderr}"
    );
}

#[test]
fn a_damaged_archive_with_no_line_read_is_dated_by_its_modification_time() {
    // Only the gzip header survived: no line, so no time from the log.
    let dir = temp_dir("damaged-empty");
    let gz = gzip(
        b"203.0.113.5 - - [03/Nov/2026:11:00:00 +0900] \"GET / HTTP/1.1\" 200 9 \"-\" \"x\"\n",
    );
    write(&dir, "access.log.3.gz", &gz[..12]);
    let path = dir.join("access.log.3.gz");
    let (code, report) = scan_json(&[path.to_str().unwrap()]);
    assert_eq!(code, 2);
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "log.damaged_archive")
        .expect("damaged archive finding");
    let mtime = std::fs::metadata(&path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for key in ["first_seen", "last_seen"] {
        let t = chrono::DateTime::parse_from_rfc3339(f[key].as_str().unwrap()).unwrap();
        assert_eq!(t.timestamp(), mtime, "{key}: {f}");
    }
    assert!(
        f["summary"].as_str().unwrap().contains("modification time"),
        "{f}"
    );
}

#[test]
fn multi_member_gzip_and_rotated_family_are_read() {
    let dir = temp_dir("rotated");
    let a = line(
        "198.51.100.1",
        "01/Nov/2026:10:00:00 +0900",
        "GET / HTTP/1.1",
        200,
        10,
        UA,
    );
    let b = line(
        "198.51.100.2",
        "02/Nov/2026:10:00:00 +0900",
        "GET / HTTP/1.1",
        200,
        10,
        UA,
    );
    let mut multi = gzip(a.as_bytes());
    multi.extend(gzip(b.as_bytes()));
    write(&dir, "access_log-20261101.gz", &multi);
    write(&dir, "access.log.1", &b);
    write(&dir, "access_log", &a);
    write(&dir, ".hidden.log", &a);
    let (_, report) = scan_json(&[dir.to_str().unwrap()]);
    let inputs = report["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 3, "hidden files are skipped");
    let gz = inputs.iter().find(|i| i["compression"] == "gzip").unwrap();
    assert_eq!(gz["lines"], 2, "both gzip members read");
    for i in inputs {
        assert_eq!(i["format"], "combined");
        assert_eq!(i["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(i["bytes"], i["bytes_read"]);
    }
}

#[test]
fn hostile_lines_never_break_the_run() {
    let dir = temp_dir("hostile");
    let mut data = Vec::new();
    data.extend(
        line(
            "198.51.100.1",
            "03/Nov/2026:10:00:00 +0900",
            "GET / HTTP/1.1",
            200,
            10,
            UA,
        )
        .into_bytes(),
    );
    data.extend(b"binary \x00\x01\x02 garbage \xff\xfe\n");
    data.extend(b"198.51.100.1 - - [03/Nov/2026:10:00:01 +0900] \"GET /\xe3\x81\x82\xff HTTP/1.1\" 200 10 \"-\" \"x\"\r\n");
    data.extend(vec![b'A'; 300_000]);
    data.push(b'\n');
    data.extend(b"\n");
    data.extend(
        line(
            "198.51.100.1",
            "03/Nov/2026:10:00:02 +0900",
            "GET /\x1b[2J\x1b]0;pwned\x07 HTTP/1.1",
            404,
            10,
            "sqlmap/1.0 \u{202e}txt.exe",
        )
        .into_bytes(),
    );
    write(&dir, "access.log", &data);
    let (_, report) = scan_json(&["--fail-on", "never", dir.to_str().unwrap()]);
    let i = &report["inputs"][0];
    assert_eq!(i["lines"], 6);
    assert_eq!(
        i["parsed"].as_u64().unwrap() + i["skipped"].as_u64().unwrap(),
        6,
        "every line accounted for"
    );
    assert_eq!(i["skipped_by_reason"]["line-too-long"], 1);
    assert_eq!(i["skipped_by_reason"]["nul-bytes"], 1);
    assert_eq!(i["skipped_by_reason"]["empty"], 1);
    // Terminal output carries no raw control characters from the log.
    let out = run(&[
        "scan",
        "--fail-on",
        "never",
        "--color",
        "never",
        dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains('\x1b') && !stdout.contains('\x07') && !stdout.contains('\u{202e}'),
        "{stdout}"
    );
    // Evidence text escapes them too.
    let text = serde_json::to_string(&report["findings"]).unwrap();
    assert!(!text.contains("\\u001b"), "raw ESC in evidence: {text}");
}

#[test]
fn records_joined_by_bare_carriage_returns_are_each_read_and_accounted() {
    let dir = temp_dir("bare-cr");
    let rec = |ip: &str, s: u32, req: &str| {
        line(
            ip,
            &format!("03/Nov/2026:10:00:{s:02} +0900"),
            req,
            200,
            10,
            UA,
        )
        .trim_end()
        .to_string()
    };
    // Line 1 holds three records and a fragment; line 2 is an ordinary line.
    let data = format!(
        "{}\r{}\r{}\rtruncated frag\r\n{}",
        rec("198.51.100.1", 0, "GET / HTTP/1.1"),
        rec(
            "203.0.113.9",
            1,
            "GET /item?id=1%27%20UNION%20SELECT%201,2-- HTTP/1.1"
        ),
        rec("198.51.100.2", 2, "GET /b HTTP/1.1"),
        line(
            "198.51.100.3",
            "03/Nov/2026:10:00:03 +0900",
            "GET /c HTTP/1.1",
            200,
            10,
            UA
        ),
    );
    write(&dir, "access.log", &data);
    let (_, report) = scan_json(&["--fail-on", "never", dir.to_str().unwrap()]);
    let i = &report["inputs"][0];
    assert_eq!(
        (i["lines"].as_u64(), i["parsed"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(i["skipped"], 0);
    assert_eq!(i["extra_skipped_by_reason"]["unparseable"], 1);
    assert_eq!(report["stats"]["events_analyzed"], 4, "{report:#}");
    let w = i["warnings"][0].as_str().unwrap();
    assert!(
        w.contains("first: line 1") && w.contains("4 records"),
        "{w}"
    );
    // The injection in the second record is found and cited by line 1.
    let sqli = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "web.sqli")
        .expect("the record after the first CR is analysed");
    assert_eq!(sqli["evidence"][0]["line"], 1);
    let text = sqli["evidence"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("203.0.113.9 ") && !text.contains('\r'),
        "{text}"
    );
}

/// The first character of `bytes` no output may carry raw: a C0 control other than a line
/// end or tab, DEL, a C1 control, or a bidi / zero-width format character.
fn raw_control(bytes: &[u8]) -> Option<char> {
    String::from_utf8_lossy(bytes)
        .chars()
        .find(|&c| !matches!(c, '\n' | '\r' | '\t') && ecir_model::text::is_unsafe_char(c))
}

#[test]
fn hostile_fields_reach_no_timeline_or_json_output_raw() {
    let dir = temp_dir("hostile-fields");
    let payloads = [
        "\x1b[31mRED\x1b[0m",
        "\x1b]8;;http://evil/\x07click\x1b]8;;\x07",
        "\x07",
        "\x08",
        "\u{202e}",
        "\u{9b}",
        "<script>",
    ];
    let mut log = String::new();
    for (i, p) in payloads.iter().enumerate() {
        // User, path (an XSS probe, so that a finding names it), referer and user agent.
        log.push_str(&format!(
            "203.0.113.{i} - u{p} [03/Nov/2026:01:00:0{i} +0900] \"GET /x<script>{p} HTTP/1.1\" 200 5 \"http://r/{p}\" \"UA {p}\"\n"
        ));
    }
    write(&dir, "access.log", &log);
    write(&dir, "acc\x1b[31mess\u{202e}.log", &log);
    let d = dir.to_str().unwrap();
    for format in ["csv", "jsonl", "ecs", "timesketch"] {
        let out = run(&["timeline", d, "--format", format, "-o", "-"]);
        assert!(out.status.success(), "{format}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 14 + usize::from(format == "csv"));
        assert_eq!(raw_control(text.as_bytes()), None, "{format}: {text}");
        for shown in [
            "u\\x1b[31mRED",
            "UA \\x1b]8;;http://evil/\\x07click",
            "acc\\x1b[31mess\\u{202e}.log",
        ] {
            let shown = if format == "csv" {
                shown.to_string()
            } else {
                shown.replace('\\', "\\\\")
            };
            assert!(text.contains(&shown), "{format}: {shown} not in {text}");
        }
    }
    for flag in ["--json", "--ndjson"] {
        let out = run(&["scan", "--fail-on", "never", "--quiet", flag, "-", d]);
        assert_eq!(raw_control(&out.stdout), None, "{flag}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("\\u009b") && text.contains("\\u202e"),
            "{flag}: {text}"
        );
        // The JSON still says the same: a finding names the probe path as it was sent.
        let findings: Vec<serde_json::Value> = if flag == "--json" {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v["findings"].as_array().unwrap().clone()
        } else {
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        assert!(
            findings.iter().any(|f| f["paths"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p.as_str().unwrap().contains("<script>\u{9b}"))),
            "{flag}: {findings:?}"
        );
    }
}

/// A log big enough to be split into many chunks, with attacks spread through it, and one
/// scanner whose 404s for hundreds of distinct paths cross every chunk boundary (the paths a
/// finding names must not depend on where the boundaries fall).
fn busy_log(lines: usize) -> String {
    let mut s = String::new();
    for i in 0..lines {
        let ts = format!(
            "03/Nov/2026:{:02}:{:02}:{:02} +0900",
            (i / 3600) % 24,
            (i / 60) % 60,
            i % 60
        );
        if i % 7 == 3 {
            let req = format!("GET /probe{}.php HTTP/1.1", (i * 7919) % 499);
            s.push_str(&line("203.0.113.9", &ts, &req, 404, 196, "Mozilla/5.0"));
            continue;
        }
        let ip = format!("198.51.{}.{}", i % 7, i % 251);
        let req = match i % 97 {
            0 => format!("GET /?id={i}%27%20or%201=1-- HTTP/1.1"),
            1 => "GET /.env HTTP/1.1".to_string(),
            2 => format!("GET /nope{i} HTTP/1.1"),
            3 => "POST /html/user_data/x.php HTTP/1.1".to_string(),
            _ => format!("GET /products/detail/{} HTTP/1.1", i % 500),
        };
        let status = if i % 97 == 2 { 404 } else { 200 };
        let ua = if i % 1000 == 5 { "sqlmap/1.7" } else { UA };
        s.push_str(&line(&ip, &ts, &req, status, (i % 5000) as u64 + 150, ua));
    }
    s
}

#[test]
fn same_report_whatever_the_thread_count_and_chunking() {
    let dir = temp_dir("determinism");
    write(&dir, "access.log", busy_log(40_000));
    write(&dir, "other.log.gz", gzip(busy_log(3_000).as_bytes()));
    let d = dir.to_str().unwrap();
    let (_, one) = scan_json(&["-j", "1", d]);
    let (_, two) = scan_json(&["-j", "2", "--chunk-size", "65536", d]);
    let (_, two_b) = scan_json(&["-j", "2", "--chunk-size", "100000", d]);
    let (_, one_chunked) = scan_json(&["-j", "1", "--chunk-size", "65536", d]);
    let one = serde_json::to_string_pretty(&normalise(one)).unwrap();
    assert!(one.contains("web.sqli"));
    assert!(
        one.contains("/probe"),
        "the scanner's 404 burst is reported with its paths"
    );
    for other in [two, two_b, one_chunked] {
        assert_eq!(
            one,
            serde_json::to_string_pretty(&normalise(other)).unwrap()
        );
    }
}

/// A directory of rotated logs: workers hand detector state from one file to the next, so
/// the report must not depend on which worker read which run of files.
/// An IIS log whose `#Fields:` changes every few thousand rows, chunked small: every chunk
/// starts at a directive, so each row is read with its own columns whatever the chunking.
#[test]
fn w3c_columns_survive_chunking() {
    let dir = temp_dir("iis-chunks");
    let mut log = String::new();
    for block in 0..6 {
        let wide = block % 2 == 1;
        log += "#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n";
        log += if wide {
            "#Fields: date time s-sitename s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) cs-host sc-status sc-substatus sc-win32-status sc-bytes time-taken\n"
        } else {
            "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\n"
        };
        for i in 0..2_000 {
            let (path, query, status) = if i % 500 == 7 {
                ("/products/list", "name=%27%20UNION%20SELECT%201--", 200)
            } else {
                ("/products/detail/1", "-", 200)
            };
            let ip = format!("198.51.{block}.{}", i % 200 + 1);
            let t = format!("2024-03-1{block} 10:{:02}:{:02}", i / 60 % 60, i % 60);
            log += &if wide {
                format!("{t} W3SVC1 10.0.0.5 GET {path} {query} 443 - {ip} Mozilla/5.0+(Windows) - shop.example {status} 0 0 5120 15\n")
            } else {
                format!("{t} 10.0.0.5 GET {path} {query} 443 - {ip} Mozilla/5.0+(Windows) - {status} 0 0 15\n")
            };
        }
    }
    write(&dir, "u_ex240310.log", &log);
    let d = dir.to_str().unwrap();
    let (_, one) = scan_json(&["-j", "1", "--fail-on", "never", d]);
    assert_eq!(one["inputs"][0]["format"], "iis-w3c");
    assert_eq!(one["inputs"][0]["parsed"], 12_000);
    assert_eq!(one["inputs"][0]["skipped_by_reason"]["header"], 18);
    let sqli = one["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "web.sqli")
        .count();
    assert!(sqli > 0, "the injections are found in every block");
    let one = serde_json::to_string_pretty(&normalise(one)).unwrap();
    for chunk in ["65536", "100000"] {
        let (_, other) = scan_json(&["-j", "2", "--chunk-size", chunk, "--fail-on", "never", d]);
        assert_eq!(
            one,
            serde_json::to_string_pretty(&normalise(other)).unwrap(),
            "chunk {chunk}"
        );
    }
}

#[test]
fn same_report_over_rotated_files_whatever_the_thread_count() {
    let dir = temp_dir("rotated");
    let log = busy_log(24_000);
    let lines: Vec<&str> = log.lines().collect();
    for (i, part) in lines.chunks(2_000).enumerate() {
        let text = part.join("\n") + "\n";
        if i % 3 == 0 {
            write(
                &dir,
                &format!("access.log.{}.gz", i + 1),
                gzip(text.as_bytes()),
            );
        } else {
            write(&dir, &format!("access.log.{}", i + 1), text);
        }
    }
    let d = dir.to_str().unwrap();
    let (_, one) = scan_json(&["-j", "1", d]);
    let one = serde_json::to_string_pretty(&normalise(one)).unwrap();
    assert!(one.contains("web.sqli") && one.contains("/probe"));
    for args in [["-j", "2"], ["-j", "3"], ["-j", "5"]] {
        let (_, other) = scan_json(&[args[0], args[1], "--chunk-size", "16384", d]);
        assert_eq!(
            one,
            serde_json::to_string_pretty(&normalise(other)).unwrap(),
            "{args:?}"
        );
    }
}

#[test]
fn unknown_format_is_listed_not_an_error() {
    let dir = temp_dir("unknown");
    write(&dir, "notes.txt", "hello\nthis is not a log\n");
    let (code, report) = scan_json(&[dir.to_str().unwrap()]);
    assert_eq!(code, 0);
    let i = &report["inputs"][0];
    assert_eq!(i["format"], "unknown");
    assert_eq!(i["source"], "unknown");
    assert_eq!(i["skipped_by_reason"]["unknown-format"], 2);
    assert!(report["warnings"][0]
        .as_str()
        .unwrap()
        .contains("does not recognise"));
}

#[test]
fn timeline_reads_a_record_after_crash_padding_as_scan_does() {
    let dir = temp_dir("nul-padding");
    let mut log = Vec::new();
    for (i, ip) in ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
        .iter()
        .enumerate()
    {
        if i == 1 {
            log.extend_from_slice(&[0u8; 4096]);
        }
        let ts = format!("28/Nov/2026:10:00:0{i} +0900");
        log.extend_from_slice(line(ip, &ts, "GET /.env HTTP/1.1", 200, 900, "x").as_bytes());
    }
    write(&dir, "access_log", &log);
    let d = dir.to_str().unwrap();
    let out = run(&["timeline", d, "--format", "jsonl", "-o", "-"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("203.0.113.2"), "{text}");
    let (_, report) = scan_json(&[d]);
    assert_eq!(report["inputs"][0]["parsed"], 3);
    // The padding passed over is said, not lost: which line, how many bytes.
    let warnings = report["inputs"][0]["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| {
            let w = w.as_str().unwrap();
            w.contains("1 line (first: line 2) began with NUL bytes (4096 in all)")
        }),
        "{warnings:?}"
    );
}

#[test]
fn a_latin1_user_agent_in_the_first_lines_does_not_hide_a_files_format() {
    // Latin-1 bytes (not UTF-8) in the user agent of every sampled line but one: the CLF
    // parser reads them lossily, and detection must read them the same way.
    let dir = temp_dir("latin1-ua");
    let mut log = Vec::new();
    for i in 0..6 {
        let ua: &[u8] = if i < 5 {
            b"Mozilla/5.0 (caf\xe9 \xfcber)"
        } else {
            b"curl/8.0"
        };
        log.extend_from_slice(
            format!(
                "192.0.2.{i} - - [28/Nov/2026:10:00:0{i} +0900] \"GET / HTTP/1.1\" 200 5 \"-\" \""
            )
            .as_bytes(),
        );
        log.extend_from_slice(ua);
        log.extend_from_slice(b"\"\n");
    }
    write(&dir, "access_log", &log);
    let (code, report) = scan_json(&[dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{report}");
    let i = &report["inputs"][0];
    assert_eq!(i["format"], "combined", "{i}");
    assert_eq!(i["parsed"], 6, "{i}");
}

#[test]
fn long_and_blank_lines_at_the_top_do_not_hide_a_files_format() {
    // Records padded past the line limit (a request body in a WAF log, a long query) and
    // blank lines before the ordinary lines: before, they used up the format sample and the
    // whole file was `unknown`, its `/.env` read lost.
    let dir = temp_dir("padded-top");
    let mut text = String::new();
    for _ in 0..5 {
        let padded = format!("GET /?q={} HTTP/1.1", "A".repeat(70_000));
        text.push_str(&line(
            "203.0.113.9",
            "28/Nov/2026:09:00:00 +0900",
            &padded,
            414,
            5,
            "x",
        ));
    }
    text.push_str(&"\n".repeat(300_000));
    for i in 0..200 {
        let req = format!("GET /products/detail/{i} HTTP/1.1");
        let ua = "Mozilla/5.0";
        text.push_str(&line(
            "198.51.100.7",
            "28/Nov/2026:10:00:00 +0900",
            &req,
            200,
            900,
            ua,
        ));
    }
    let env = "GET /.env HTTP/1.1";
    text.push_str(&line(
        "203.0.113.5",
        "28/Nov/2026:10:00:01 +0900",
        env,
        200,
        900,
        "x",
    ));
    write(&dir, "access_log", &text);
    write(&dir, "access_log.1.gz", gzip(text.as_bytes()));
    let (_, report) = scan_json(&[dir.to_str().unwrap()]);
    let inputs = report["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 2);
    for i in inputs {
        assert_eq!(i["format"], "combined", "{}", i["path"]);
        assert_eq!(i["parsed"], 201, "{}", i["path"]);
        assert_eq!(i["skipped_by_reason"]["line-too-long"], 5, "{}", i["path"]);
    }
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert!(rules.contains(&"web.sensitive_file"), "{rules:?}");
}

#[test]
fn formats_are_detected_and_can_be_forced() {
    let dir = temp_dir("formats");
    write(
        &dir,
        "common.log",
        "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326\n",
    );
    write(&dir, "vhost.log", "shop.example.jp:443 203.0.113.7 - - [12/Mar/2024:03:14:15 +0900] \"POST /admin/login HTTP/1.1\" 302 1043 \"https://shop.example.jp/admin/login\" \"Mozilla/5.0\"\n");
    write(&dir, "extra.log", "198.51.100.23 - - [12/Mar/2024:10:02:11 +0900] \"POST /shopping/checkout HTTP/2.0\" 302 0 \"https://shop.example.jp/shopping/confirm\" \"Mozilla/5.0\" 1.532 1.530 \"shop.example.jp\" \"-\"\n");
    write(&dir, "json.log", "{\"time_iso8601\":\"2024-03-12T10:02:11+09:00\",\"remote_addr\":\"198.51.100.23\",\"request\":\"GET / HTTP/1.1\",\"status\":\"200\",\"body_bytes_sent\":\"5\"}\n");
    let (_, report) = scan_json(&[dir.to_str().unwrap()]);
    let formats: Vec<(String, String)> = report["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let p = i["path"].as_str().unwrap();
            (
                p[p.rfind('/').unwrap() + 1..].to_string(),
                i["format"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        formats,
        vec![
            ("common.log".into(), "common".into()),
            ("extra.log".into(), "combined-extra".into()),
            ("json.log".into(), "nginx-json".into()),
            ("vhost.log".into(), "vhost-combined".into()),
        ]
    );
    let (_, forced) = scan_json(&[
        "--format",
        "nginx-json",
        dir.join("common.log").to_str().unwrap(),
    ]);
    assert_eq!(forced["inputs"][0]["format_basis"], "forced");
    assert_eq!(forced["inputs"][0]["skipped_by_reason"]["unparseable"], 1);
    let listing = String::from_utf8_lossy(&run(&["formats"]).stdout).to_string();
    for f in [
        "common",
        "combined",
        "vhost-combined",
        "combined-extra",
        "nginx-json",
    ] {
        assert!(listing.contains(f), "{listing}");
    }
}

#[test]
fn since_until_and_timezone() {
    let dir = temp_dir("since");
    let mut s = String::new();
    for h in 0..24 {
        s.push_str(&line(
            "203.0.113.5",
            &format!("03/Nov/2026:{h:02}:00:00 +0900"),
            "GET /.env HTTP/1.1",
            200,
            900,
            UA,
        ));
    }
    write(&dir, "access.log", &s);
    let d = dir.to_str().unwrap();
    let (_, r) = scan_json(&[
        "--tz",
        "Asia/Tokyo",
        "--since",
        "2026-11-03 10:00",
        "--until",
        "2026-11-03T11:30:00+09:00",
        d,
    ]);
    assert_eq!(r["findings"][0]["count"], 2);
    assert_eq!(r["inputs"][0]["filtered_out"], 22);
    assert_eq!(
        r["inputs"][0]["lines"], 24,
        "inputs are still read and hashed whole"
    );
    assert_eq!(r["options"]["timezone"], "Asia/Tokyo");
    // The same instant written in another offset is inside the bound.
    let (_, r) = scan_json(&[
        "--since",
        "2026-11-03T01:00:00Z",
        "--until",
        "2026-11-03T02:00:00Z",
        d,
    ]);
    assert_eq!(r["findings"][0]["count"], 2, "10:00 and 11:00 +09:00");
    let (_, r) = scan_json(&["--until", "2026-11-02", d]);
    assert!(r["findings"].as_array().unwrap().is_empty());
}

#[test]
fn trust_proxy_and_proxy_warning() {
    let dir = temp_dir("proxy");
    let mut s = String::new();
    for i in 0..200 {
        s.push_str(&format!(
            "10.0.0.2 - - [03/Nov/2026:10:{:02}:{:02} +0900] \"GET /p/{i} HTTP/1.1\" 200 10 \"-\" \"UA\" \"198.51.100.{}\"\n",
            i / 60, i % 60, i % 50
        ));
    }
    s.push_str("10.0.0.2 - - [03/Nov/2026:11:00:00 +0900] \"GET /.env HTTP/1.1\" 200 900 \"-\" \"UA\" \"203.0.113.99\"\n");
    write(&dir, "access.log", &s);
    let d = dir.to_str().unwrap();
    let (_, r) = scan_json(&[d]);
    let warnings = serde_json::to_string(&r["warnings"]).unwrap();
    assert!(warnings.contains("--trust-proxy"), "{warnings}");
    assert_eq!(r["findings"][0]["ips"][0], "10.0.0.2");
    let (_, r) = scan_json(&["--trust-proxy", "10.0.0.0/8", d]);
    assert_eq!(r["findings"][0]["ips"][0], "203.0.113.99");
    assert!(!serde_json::to_string(&r["warnings"])
        .unwrap()
        .contains("--trust-proxy"));
    assert_eq!(
        run(&["scan", "--trust-proxy", "10.0.0.0/99", d])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn outputs_are_not_read_back_and_never_overwrite_evidence() {
    let dir = temp_dir("outputs");
    let log = write(
        &dir,
        "access.log",
        line(
            "203.0.113.5",
            "03/Nov/2026:10:00:00 +0900",
            "GET /.env HTTP/1.1",
            200,
            900,
            UA,
        ),
    );
    let d = dir.to_str().unwrap();
    let out_json = dir.join("report.json");
    let o = run(&["scan", "--quiet", "--json", out_json.to_str().unwrap(), d]);
    assert_eq!(o.status.code(), Some(1));
    // A second scan of the same directory ignores the report written into it.
    let (_, r) = scan_json(&[d]);
    assert_eq!(r["inputs"].as_array().unwrap().len(), 1);
    let before = std::fs::read(&log).unwrap();
    let o = run(&[
        "scan",
        "--quiet",
        "--json",
        log.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("refusing"));
    assert_eq!(std::fs::read(&log).unwrap(), before, "evidence untouched");
    // NDJSON: one finding per line.
    let o = run(&["scan", "--quiet", "--ndjson", "-", d]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["rule"], "web.sensitive_file");
}

#[test]
fn summary_names_findings_and_data_reduction() {
    let sample = root().join("fixtures/sample-shop").display().to_string();
    let out = run(&["scan", "--color", "never", &sample]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("webshell.upload_dir_script"), "{s}");
    assert!(s.contains("Top IPs") && s.contains("203.0.113.45"), "{s}");
    assert!(s.contains("Data reduction:"), "{s}");
    assert!(!s.contains('\x1b'), "no colour when asked");
    let out = run(&["scan", "--color", "always", &sample]);
    assert!(String::from_utf8_lossy(&out.stdout).contains('\x1b'));
    // NO_COLOR with auto: not a TTY here anyway, so no colour.
    let o = ecir()
        .args(["scan", &sample])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&o.stdout).contains('\x1b'));
}

#[test]
fn top_ips_carry_requests_and_first_last_seen_from_events() {
    let sample = root().join("fixtures/sample-shop").display().to_string();
    let (_, r) = scan_json(&["--fail-on", "never", &sample]);
    let top = r["top_ips"].as_array().unwrap();
    let attacker = top
        .iter()
        .find(|t| t["ip"] == "203.0.113.45")
        .expect("attacker listed");
    assert_eq!(attacker["max_severity"], "high");
    // 70 scanner requests on 11-02 plus 7 requests on 11-03.
    assert_eq!(attacker["requests"], 77);
    assert_eq!(attacker["first_seen"], "2026-11-02T02:00:05+09:00");
    assert_eq!(attacker["last_seen"], "2026-11-03T03:05:02+09:00");
}

/// A log inside a fresh directory, and that directory.
fn one_log(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = temp_dir(name);
    let log = write(
        &dir,
        "access_log",
        line(
            "203.0.113.5",
            "03/Nov/2026:10:00:00 +0900",
            "GET /.env HTTP/1.1",
            200,
            900,
            UA,
        ),
    );
    (dir, log)
}

#[test]
fn an_output_never_replaces_a_file_inside_the_evidence() {
    let (dir, log) = one_log("out-inside");
    let before = std::fs::read(&log).unwrap();
    let d = dir.to_str().unwrap();
    // Named as an output while its directory is the input: refused, nothing written.
    for flag in ["--json", "--ndjson", "--html"] {
        let o = run(&["scan", "--quiet", flag, log.to_str().unwrap(), d]);
        assert_eq!(o.status.code(), Some(2), "{flag}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("refusing") && err.contains("inside the input"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&log).unwrap(),
            before,
            "{flag}: evidence untouched"
        );
    }
    // Through a hard link from outside the evidence.
    let other = temp_dir("out-inside-link");
    let link = other.join("report.html");
    std::fs::hard_link(&log, &link).unwrap();
    let o = run(&["scan", "--quiet", "--html", link.to_str().unwrap(), d]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&log).unwrap(), before, "evidence untouched");
    // A report written into the directory may be written again.
    let report = dir.join("report.json");
    for _ in 0..2 {
        let o = run(&["scan", "--quiet", "--json", report.to_str().unwrap(), d]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // The timeline too.
    let o = run(&["timeline", "-o", log.to_str().unwrap(), d]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&log).unwrap(), before, "evidence untouched");
}

#[test]
fn hidden_files_skipped_in_a_directory_are_counted_and_named_read_when_named() {
    let dir = temp_dir("hidden");
    let l = line(
        "192.0.2.9",
        "28/Nov/2026:10:00:00 +0900",
        "GET / HTTP/1.1",
        200,
        5,
        UA,
    );
    write(&dir, "access_log", &l);
    write(&dir, ".access_log.swp", &l);
    std::fs::create_dir_all(dir.join(".old")).unwrap();
    write(&dir.join(".old"), "access_log", &l);
    let d = dir.to_str().unwrap();
    let o = run(&["scan", "--quiet", "--json", "-", d]);
    assert_eq!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    let want = format!(
        "skipped 2 hidden file(s) under {d}: .access_log.swp, .old/; hint: name them explicitly to scan them"
    );
    assert_eq!(err.trim_end(), format!("ecir: warning: {want}"), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["inputs"].as_array().unwrap().len(), 1);
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| *w == *want),
        "{}",
        r["warnings"]
    );
    // Named on the command line, a hidden file is read, and nothing is said about it.
    let hidden = dir.join(".access_log.swp");
    let o = run(&["scan", "--quiet", "--json", "-", hidden.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["inputs"][0]["parsed"], 1);
}

/// Two files whose names differ only in bytes that are not UTF-8 would both read
/// `a\u{fffd}.log` if decoded lossily: every view names them apart, each such byte as `\xHH`.
#[cfg(unix)]
#[test]
fn names_that_are_not_utf8_are_shown_apart_in_scan_and_timeline() {
    use std::os::unix::ffi::OsStrExt;
    let dir = temp_dir("non-utf8-names");
    let l = line(
        "192.0.2.9",
        "28/Nov/2026:10:00:00 +0900",
        "GET / HTTP/1.1",
        200,
        5,
        UA,
    );
    for name in [&b"a\xfe.log"[..], b"a\xff.log"] {
        std::fs::write(dir.join(std::ffi::OsStr::from_bytes(name)), &l).unwrap();
    }
    let d = dir.to_str().unwrap();
    let (want_fe, want_ff) = (format!("{d}/a\\xfe.log"), format!("{d}/a\\xff.log"));
    let (_, r) = scan_json(&[d]);
    let paths: Vec<&str> = r["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, [want_fe.as_str(), want_ff.as_str()]);
    // The exact bytes beside them, so a name that literally holds `\xfe` is told apart.
    let hex = |name: &[u8]| -> String {
        let mut b = dir.as_os_str().as_bytes().to_vec();
        b.push(b'/');
        b.extend_from_slice(name);
        b.iter().map(|x| format!("{x:02x}")).collect()
    };
    assert_eq!(r["inputs"][0]["path_bytes"], hex(b"a\xfe.log").as_str());
    assert_eq!(r["inputs"][1]["path_bytes"], hex(b"a\xff.log").as_str());
    std::fs::write(dir.join("ax.log"), &l).unwrap();
    let (_, plain) = scan_json(&[&want_fe.replace("\\xfe", "x")]);
    assert_eq!(plain["inputs"][0]["parsed"], 1, "{plain}");
    assert!(plain["inputs"][0].get("path_bytes").is_none(), "{plain}");
    // CSV as it is; JSON lines with the backslash escaped.
    for (format, fe, ff) in [
        ("csv", r"a\xfe.log", r"a\xff.log"),
        ("jsonl", r"a\\xfe.log", r"a\\xff.log"),
    ] {
        let o = run(&["timeline", d, "--format", format, "-o", "-"]);
        assert!(o.status.success(), "{o:?}");
        let text = String::from_utf8(o.stdout).unwrap();
        assert!(!text.contains('\u{fffd}'), "{text}");
        assert!(text.contains(fe) && text.contains(ff), "{text}");
    }
}

#[test]
fn the_same_file_named_twice_is_read_once_and_two_outputs_cannot_share_a_path() {
    let (dir, log) = one_log("twice");
    let d = dir.to_str().unwrap();
    let name = dir.file_name().unwrap().to_str().unwrap();
    let dotted = format!("{d}/../{name}/access_log");
    let (_, r) = scan_json(&[d, log.to_str().unwrap(), &dotted]);
    assert_eq!(r["inputs"].as_array().unwrap().len(), 1);
    assert_eq!(r["stats"]["lines"], 1);
    let warned = r["warnings"].as_array().unwrap().iter().any(|w| {
        w.as_str()
            .is_some_and(|w| w.contains("not read") && w.contains("the same file as"))
    });
    assert!(warned, "{}", r["warnings"]);
    let out = temp_dir("twice-out").join("a.out");
    let o = run(&[
        "scan",
        "--quiet",
        "--json",
        out.to_str().unwrap(),
        "--html",
        out.to_str().unwrap(),
        d,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists());
}

#[cfg(unix)]
#[test]
fn pipes_and_links_are_reported_never_read_silently_or_waited_on() {
    let (dir, _) = one_log("pipes");
    let d = dir.to_str().unwrap();
    // A directory whose only entry is a link to the logs (CentOS's /etc/httpd/logs).
    let httpd = temp_dir("pipes-httpd");
    std::os::unix::fs::symlink(&dir, httpd.join("logs")).unwrap();
    let o = run(&["scan", "--quiet", httpd.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no file to read") && err.contains("hint:"),
        "{err}"
    );
    // A FIFO named directly is an error at once; one inside a directory is listed as skipped.
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let o = run_within(&["scan", "--quiet", fifo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "a FIFO must not block");
    let (_, r) = scan_json(&[d]);
    let warned = r["warnings"].as_array().unwrap().iter().any(|w| {
        w.as_str()
            .is_some_and(|w| w.contains("fifo") && w.contains("not a regular file"))
    });
    assert!(warned, "{}", r["warnings"]);
}

#[test]
fn stdout_that_cannot_be_written_is_an_error_and_jobs_are_bounded() {
    let sample = root().join("fixtures/sample-shop").display().to_string();
    if std::path::Path::new("/dev/full").exists() {
        for args in [vec!["rules"], vec!["formats"], vec!["scan", &sample]] {
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            let o = ecir().args(&args).stdout(full).output().unwrap();
            assert_eq!(o.status.code(), Some(2), "{args:?}");
            assert!(String::from_utf8_lossy(&o.stderr).contains("cannot write"));
        }
    }
    for j in ["0", "100000"] {
        let o = run(&["scan", "-j", j, &sample]);
        assert_eq!(o.status.code(), Some(2), "-j {j}");
    }
}

/// `--profile` names a configuration file: a device, a FIFO, a directory or a file over the
/// 16 MiB cap is refused at once (one error line naming it, a hint, status 2), never read
/// until memory runs out or waited on forever.
#[cfg(unix)]
#[test]
fn profile_that_is_not_a_small_regular_file_is_refused() {
    let dir = temp_dir("profile-bounded");
    let logs = write(
        &dir,
        "access.log",
        line(
            "192.0.2.1",
            "20/Nov/2026:10:00:00 +0900",
            "GET / HTTP/1.1",
            200,
            10,
            UA,
        ),
    );
    let logs = logs.to_str().unwrap();
    let fifo = dir.join("profile.json");
    mkfifo(&fifo);
    let big = dir.join("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(16 << 20 | 1)
        .unwrap();
    for (profile, problem) in [
        ("/dev/zero", "not a regular file (a character device)"),
        (fifo.to_str().unwrap(), "not a regular file (a FIFO)"),
        (dir.to_str().unwrap(), "not a regular file (a directory)"),
        (big.to_str().unwrap(), "larger than the limit of 16 MiB"),
    ] {
        let o = run_within(&["scan", "--quiet", logs, "--profile", profile]);
        assert_refused(&o, &format!("--profile {profile}: "), problem);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_temporary_directory_inside_the_evidence_is_refused() {
    let (dir, _) = one_log("tmpdir-inside");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    for args in [vec!["scan", "--quiet"], vec!["timeline", "-o", "-"]] {
        let mut all = args.clone();
        all.push(dir.to_str().unwrap());
        let o = ecir().args(&all).env("TMPDIR", &tmp).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("TMPDIR"));
    }
}

#[test]
fn thresholds_and_ranges_that_make_no_sense_are_usage_errors() {
    let sample = root().join("fixtures/sample-shop").display().to_string();
    for bad in [
        vec!["scan", "--year", "99999"],
        vec!["scan", "--burst-404", "0"],
        vec!["scan", "--velocity-window", "0"],
        vec!["scan", "--failure-ratio", "2"],
        vec!["scan", "--drift-min-hits", "0"],
        vec!["scan", "--first-seen-min-ips", "0"],
        vec!["scan", "--drop-min-ips", "0"],
        vec!["scan", "--distributed-min-ips", "0"],
        vec![
            "timeline",
            "-o",
            "-",
            "--since",
            "2026-11-04",
            "--until",
            "2026-11-02",
        ],
    ] {
        let mut args = bad.clone();
        args.push(&sample);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
    }
    // More online days than retained days: the online days are all of them.
    let o = run(&["audit", "--retention", "30d", "--online", "400d", &sample]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("30 days required, last 30 days online"),
        "{out}"
    );
}

#[test]
fn options_say_what_admin_panel_was_inferred() {
    // `options.platform` stays what was asked ("auto"); what the admin detector inferred is
    // beside it, present only when inferred.
    let log = root()
        .join("tests/fixtures/rules/admin.profile.log")
        .display()
        .to_string();
    let (_, r) = scan_json(&["--fail-on", "never", &log]);
    let o = &r["options"];
    assert_eq!(o["platform"], "auto");
    assert_eq!(o["platform_inferred"], "eccube4", "{o}");
    assert_eq!(o["admin_paths_inferred"], serde_json::json!(["/mgr_x9k2"]));
    // Platform given: only the prefix was inferred.
    let (_, r) = scan_json(&["--fail-on", "never", "--platform", "eccube4", &log]);
    let o = &r["options"];
    assert_eq!(o["platform"], "eccube4");
    assert!(o.get("platform_inferred").is_none(), "{o}");
    assert_eq!(o["admin_paths_inferred"], serde_json::json!(["/mgr_x9k2"]));
    // Both given: nothing inferred.
    let (_, r) = scan_json(&[
        "--fail-on",
        "never",
        "--platform",
        "eccube4",
        "--admin-path",
        "/mgr_x9k2",
        &log,
    ]);
    let o = &r["options"];
    assert!(o.get("platform_inferred").is_none() && o.get("admin_paths_inferred").is_none());
}
