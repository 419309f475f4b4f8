//! Helpers: run the binary, make temp dirs, normalise reports for comparison.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn ecir() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ecir"));
    c.env_remove("NO_COLOR").env("TZ", "Asia/Tokyo");
    c
}

pub fn run(args: &[&str]) -> Output {
    ecir().args(args).output().expect("run ecir")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/corpus/<name>` when present; prints why a test is skipped otherwise.
pub fn corpus(name: &str) -> Option<PathBuf> {
    let p = root().join("../shared/corpus").join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skipping: {} is absent (the shared corpus is not part of a user's clone)",
            p.display()
        );
        None
    }
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ecir-it-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Runs a scan and returns (exit code, report JSON).
pub fn scan_json(args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["scan", "--json", "-", "--quiet"];
    all.extend_from_slice(args);
    let out = run(&all);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

/// Removes the fields that legitimately differ between runs.
pub fn normalise(mut v: serde_json::Value) -> serde_json::Value {
    v["generated_at"] = serde_json::Value::Null;
    v["stats"]["elapsed_ms"] = serde_json::Value::Null;
    v["stats"]["threads"] = serde_json::Value::Null;
    v
}

/// A line of combined log.
pub fn line(ip: &str, ts: &str, req: &str, status: u16, bytes: u64, ua: &str) -> String {
    format!("{ip} - - [{ts}] \"{req}\" {status} {bytes} \"-\" \"{ua}\"\n")
}

pub fn write(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}
