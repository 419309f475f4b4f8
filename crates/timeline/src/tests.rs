//! Tests of the timeline pipeline: ordering across overlapping and out-of-order files, filters,
//! bounded chunks (many runs, merge passes), gzip inputs, and cleanup of the spill directory.

use std::io::Write as _;
use std::path::PathBuf;

use serde_json::Value;

use super::*;

fn clf(ip: &str, secs: i64, path: &str) -> String {
    let t = Timestamp::from_secs(1_714_525_200 + secs, 9 * 3600).to_datetime();
    format!(
        "{ip} - - [{}] \"GET {path} HTTP/1.1\" 200 10 \"-\" \"ua\"",
        t.format("%d/%b/%Y:%H:%M:%S %z")
    )
}

struct Fixture {
    dir: PathBuf,
    total: usize,
}

/// Four inputs: two sorted files with overlapping ranges, one shuffled file, one gzip.
fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("ecir-tl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ev = dir.join("evidence");
    std::fs::create_dir_all(&ev).unwrap();
    let a: Vec<String> = (0..300)
        .map(|i| clf("192.0.2.1", i * 10, &format!("/a/{i}")))
        .collect();
    let b: Vec<String> = (0..300)
        .map(|i| clf("192.0.2.2", 1500 + i * 7, &format!("/b/{i}")))
        .collect();
    // A deterministic shuffle (multiplicative step modulo a prime).
    let c: Vec<String> = (0..401)
        .map(|i| (i * 173) % 401)
        .map(|k| clf("192.0.2.3", k * 5, &format!("/c/{k}")))
        .collect();
    let d: Vec<String> = (0..100)
        .map(|i| clf("192.0.2.4", 2000 + i * 3, &format!("/d/{i}")))
        .collect();
    std::fs::write(ev.join("a.log"), a.join("\n") + "\n").unwrap();
    std::fs::write(ev.join("b.log"), b.join("\n") + "\n").unwrap();
    std::fs::write(ev.join("c.log"), c.join("\n") + "\ngarbage line\n").unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all((d.join("\n") + "\n").as_bytes()).unwrap();
    std::fs::write(ev.join("d.log.gz"), gz.finish().unwrap()).unwrap();
    Fixture {
        dir,
        total: a.len() + b.len() + c.len() + d.len(),
    }
}

fn run(fx: &Fixture, opts: TimelineOptions) -> (Vec<Value>, TimelineOutcome) {
    let mut w = TimelineWriter::new(Vec::new(), OutputFormat::Jsonl, Vec::new(), false).unwrap();
    let opts = TimelineOptions {
        spill_dir: fx.dir.join("spill"),
        ..opts
    };
    std::fs::create_dir_all(&opts.spill_dir).unwrap();
    let outcome = timeline(&[fx.dir.join("evidence")], &opts, &mut w).unwrap();
    let out = String::from_utf8(w.finish().unwrap()).unwrap();
    let rows = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The private spill directory is gone.
    assert_eq!(std::fs::read_dir(fx.dir.join("spill")).unwrap().count(), 0);
    (rows, outcome)
}

fn key(v: &Value) -> (i64, String, u64) {
    let t = Timestamp::parse_rfc3339(v["datetime"].as_str().unwrap()).unwrap();
    (
        t.utc_ms,
        v["file"].as_str().unwrap().to_string(),
        v["line"].as_u64().unwrap(),
    )
}

#[test]
fn merges_overlapping_and_out_of_order_files_in_time_order() {
    let fx = fixture("order");
    // Tiny chunks: every file spills many runs, and the shuffled file forces merge passes.
    let (rows, outcome) = run(
        &fx,
        TimelineOptions {
            chunk_bytes: 500,
            ..Default::default()
        },
    );
    assert_eq!(rows.len(), fx.total);
    assert_eq!(outcome.stats.events as usize, fx.total);
    assert_eq!(outcome.stats.skipped, 1);
    assert_eq!(outcome.stats.out_of_order_files, 1);
    assert!(
        outcome.stats.runs as usize > MAX_FAN_IN,
        "runs: {}",
        outcome.stats.runs
    );
    for w in rows.windows(2) {
        assert!(
            key(&w[0]) <= key(&w[1]),
            "{:?} after {:?}",
            key(&w[1]),
            key(&w[0])
        );
    }
    // Files interleave: the overlapping sorted file and the shuffled one alternate.
    let files: Vec<&str> = rows.iter().map(|r| r["file"].as_str().unwrap()).collect();
    let switches = files.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches > 100, "{switches}");
    // Each file's lines appear once.
    let mut seen = std::collections::BTreeSet::new();
    for r in &rows {
        assert!(seen.insert((r["file"].to_string(), r["line"].as_u64().unwrap())));
    }
    assert!(files.iter().any(|f| f.ends_with("d.log.gz")));
}

#[test]
fn output_does_not_depend_on_threads_or_chunk_size() {
    let fx = fixture("det");
    let (one, _) = run(
        &fx,
        TimelineOptions {
            jobs: 1,
            chunk_bytes: 1 << 30,
            ..Default::default()
        },
    );
    let (two, o2) = run(
        &fx,
        TimelineOptions {
            jobs: 2,
            chunk_bytes: 5000,
            // Parse each plain file in ~2 KB chunks in parallel.
            parse_chunk_bytes: 2048,
            ..Default::default()
        },
    );
    assert_eq!(one, two);
    assert!(o2.stats.runs > 4);
}

#[test]
fn filters_by_time_ip_source_and_cited_lines() {
    let fx = fixture("filter");
    let ip: IpAddr = "192.0.2.2".parse().unwrap();
    let (rows, o) = run(
        &fx,
        TimelineOptions {
            ips: vec![ip],
            since: Some(Timestamp::from_secs(1_714_525_200 + 1500 + 70, 0)),
            until: Some(Timestamp::from_secs(1_714_525_200 + 1500 + 140, 0)),
            ..Default::default()
        },
    );
    assert_eq!(rows.len(), 11, "lines 11..=21 of b.log");
    assert!(rows.iter().all(|r| r["client_ip"] == "192.0.2.2"));
    assert_eq!(o.stats.filtered as usize, fx.total - 11);

    let (none, _) = run(
        &fx,
        TimelineOptions {
            sources: vec![SourceKind::Waf],
            ..Default::default()
        },
    );
    assert!(none.is_empty());

    let a = fx.dir.join("evidence").join("a.log").display().to_string();
    let only: HashSet<(String, u64)> = [(a.clone(), 5), (a.clone(), 250)].into_iter().collect();
    let (cited, _) = run(
        &fx,
        TimelineOptions {
            only: Some(only),
            ..Default::default()
        },
    );
    let lines: Vec<u64> = cited.iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![5, 250]);
    assert_eq!(cited[0]["path"], "/a/4");
}

#[test]
fn syslog_year_comes_from_each_files_mtime() {
    let dir = std::env::temp_dir().join(format!("ecir-tl-syslog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ev = dir.join("evidence");
    std::fs::create_dir_all(&ev).unwrap();
    let line = "Nov 20 10:00:01 shop sshd[42]: Accepted publickey for deploy from 203.0.113.5 port 50000 ssh2\n";
    // Two rotations of the same log, one written in 2024 and one in 2025: the same
    // month and day belong to different years.
    for (name, secs) in [
        ("auth.log.2", 1_732_600_000u64),
        ("auth.log.1", 1_764_136_000),
    ] {
        let p = ev.join(name);
        std::fs::write(&p, line.repeat(3)).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
            .unwrap();
    }
    let fx = Fixture { dir, total: 6 };
    let (rows, _) = run(&fx, TimelineOptions::default());
    assert_eq!(rows.len(), fx.total);
    let years: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().rsplit('/').next().unwrap(),
                &r["datetime"].as_str().unwrap()[..4],
            )
        })
        .collect();
    assert!(
        years.iter().take(3).all(|y| *y == ("auth.log.2", "2024")),
        "{years:?}"
    );
    assert!(
        years.iter().skip(3).all(|y| *y == ("auth.log.1", "2025")),
        "{years:?}"
    );
    std::fs::remove_dir_all(&fx.dir).unwrap();
}
