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

/// Runs the binary, killing it and failing the test if it has not ended within 20 seconds
/// (for inputs that would make a careless read block forever, such as a FIFO).
pub fn run_within(args: &[&str]) -> Output {
    use std::time::{Duration, Instant};
    let mut child = ecir()
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ecir");
    let started = Instant::now();
    while child.try_wait().expect("wait for ecir").is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ecir {args:?} did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect ecir's output")
}

/// Makes a FIFO at `p` (Unix).
#[cfg(unix)]
pub fn mkfifo(p: &Path) {
    let ok = Command::new("mkfifo").arg(p).status().unwrap().success();
    assert!(ok, "mkfifo {}", p.display());
}

/// Asserts that `o` failed with status 2 and one error line naming `file` with `problem`,
/// followed by a hint.
pub fn assert_refused(o: &Output, file: &str, problem: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("ecir: error: ")
            && lines[0].contains(file)
            && lines[0].contains(problem),
        "{err}"
    );
    assert!(lines[1].trim_start().starts_with("hint: "), "{err}");
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
