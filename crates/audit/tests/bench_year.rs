//! Benchmark harness (ignored by default): audit of a year of daily-rotated access logs
//! (365 gzip files plus the live file). Run with
//! `cargo test -p ecir-audit --release --test bench_year -- --ignored --nocapture`;
//! `ECIR_BENCH_LINES` sets lines per day (default 5000). The result goes in benches/README.md.

use std::io::Write;
use std::time::Instant;

use chrono::{Days, NaiveDate};
use ecir_audit::{audit, AuditOptions, Verdict};
use ecir_formats::ParseContext;
use ecir_model::Timestamp;

#[test]
#[ignore]
fn audit_a_year_of_daily_logs() {
    let per_day: u32 = std::env::var("ECIR_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let dir = std::env::temp_dir().join(format!("ecir-bench-year-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let start = NaiveDate::from_ymd_opt(2025, 12, 1).unwrap();
    let gen = Instant::now();
    let mut bytes = 0u64;
    for i in 0..366u64 {
        let day = start + Days::new(i);
        let mut text = String::with_capacity(per_day as usize * 160);
        for k in 0..per_day {
            let secs = u64::from(k) * 86_400 / u64::from(per_day);
            text.push_str(&format!(
                "203.0.113.{} - - [{}:{:02}:{:02}:{:02} +0900] \"GET /products/detail/{} HTTP/1.1\" 200 {} \"https://shop.example/\" \"Mozilla/5.0 (Windows NT 10.0; Win64; x64)\"\n",
                k % 250,
                day.format("%d/%b/%Y"),
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                k % 977,
                1000 + k % 5000
            ));
        }
        let data = if i == 365 {
            std::fs::write(dir.join("access_log"), &text).unwrap();
            text.len()
        } else {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(text.as_bytes()).unwrap();
            let gz = e.finish().unwrap();
            std::fs::write(
                dir.join(format!("access_log-{}.gz", day.format("%Y%m%d"))),
                &gz,
            )
            .unwrap();
            gz.len()
        };
        bytes += data as u64;
    }
    let generated = gen.elapsed();
    let as_of = start + Days::new(365);
    let opts = AuditOptions {
        retention_days: 365,
        online_days: 90,
        online_uncompressed: false,
        as_of_date: as_of,
        as_of_instant: Timestamp::parse_rfc3339(&format!("{as_of}T23:59:59+09:00")).unwrap(),
        now: Timestamp::parse_rfc3339(&format!("{as_of}T23:59:59+09:00")).unwrap(),
        tz_source: String::new(),
        parse: ParseContext::default(),
        jobs: 0,
        exclude: vec![],
        version: "bench".into(),
        cards: true,
    };
    let t = Instant::now();
    let r = audit(std::slice::from_ref(&dir), &opts).unwrap();
    let elapsed = t.elapsed();
    println!(
        "audit: {} files, {} bytes on disk, {} lines, {} threads: {:.2} s (generation {:.1} s)",
        r.stats.files,
        bytes,
        r.stats.lines,
        r.stats.threads,
        elapsed.as_secs_f64(),
        generated.as_secs_f64()
    );
    assert_eq!(r.stats.files, 366);
    assert_eq!(r.streams.len(), 1);
    assert_eq!(r.streams[0].days_covered, 366);
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
    assert_eq!(r.stats.lines, 366 * u64::from(per_day));
    std::fs::remove_dir_all(&dir).unwrap();
}
