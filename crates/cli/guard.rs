//! Output paths checked against the evidence before anything is written: an output may be a
//! new file (also inside an input directory: discovery never reads this run's outputs back)
//! or an earlier ecir document, but never an existing file that is, or may be, evidence.

use std::path::{Path, PathBuf};

/// What writing to `out` would overwrite, when that is evidence: an input named directly (by
/// any path or link to it), an existing file inside an input directory that ecir did not
/// write, or a file with other hard links (it may be evidence reached under another name).
/// `None` when `out` does not exist yet or is safe to replace.
pub(crate) fn overwrites_evidence(out: &Path, inputs: &[PathBuf]) -> Option<String> {
    let named: Vec<(&Path, &str)> = inputs.iter().map(|i| (i.as_path(), "input")).collect();
    overwrites(out, &named)
}

/// [`overwrites_evidence`], each path to protect named by what it is (`input`, ...).
fn overwrites(out: &Path, inputs: &[(&Path, &str)]) -> Option<String> {
    // Follows links: what would be truncated is the file a link points to.
    let md = std::fs::metadata(out).ok()?;
    if !md.is_file() {
        // A directory or device: opening it for writing fails with its own error.
        return None;
    }
    let out_c = std::fs::canonicalize(out).ok()?;
    let ours = || ecir_input::is_ecir_output(out);
    for &(input, noun) in inputs {
        let Ok(in_md) = std::fs::metadata(input) else {
            continue;
        };
        let Ok(in_c) = std::fs::canonicalize(input) else {
            continue;
        };
        if in_c == out_c || (in_md.is_file() && same_file(&in_md, &md)) {
            return Some(format!("the {noun} {}", input.display()));
        }
        if in_md.is_dir() && out_c.starts_with(&in_c) && !ours() {
            return Some(format!(
                "a file inside the {noun} directory {} that ecir did not write",
                input.display()
            ));
        }
    }
    if links(&md) > 1 && !ours() {
        return Some(
            "a file with other hard links, which may be evidence under another name".into(),
        );
    }
    None
}

/// What writing `out` would overwrite in a case: the case's own journal, head, lock or
/// playbook copy, anything in its evidence directory (a new file too), or a file recorded as
/// evidence (`recorded`: originals and stored copies), checked as [`overwrites_evidence`]
/// checks inputs. `None` when `out` may be written (other checks, such as an existing file,
/// are the caller's).
pub(crate) fn overwrites_case(out: &Path, case_dir: &Path, recorded: &[PathBuf]) -> Option<String> {
    use ecir_playbook::{case, journal};
    const OWN: [&str; 4] = [
        journal::JOURNAL,
        journal::HEAD,
        journal::LOCK,
        case::PLAYBOOK_COPY,
    ];
    let is_link = std::fs::symlink_metadata(out).is_ok_and(|m| m.file_type().is_symlink());
    if is_link && std::fs::metadata(out).is_err() {
        return Some("a link to a file that does not exist (it may name the evidence)".into());
    }
    if let (Some(target), Ok(case_c)) = (resolved(out), std::fs::canonicalize(case_dir)) {
        if let Some(name) = OWN.iter().find(|n| target == case_c.join(n)) {
            return Some(format!("the case's own {name}"));
        }
        if target.starts_with(case_c.join(case::EVIDENCE_DIR)) {
            return Some(format!("the case's {}/ directory", case::EVIDENCE_DIR));
        }
    }
    let own: Vec<PathBuf> = OWN.iter().map(|n| case_dir.join(n)).collect();
    let mut inputs: Vec<(&Path, &str)> = own.iter().map(|p| (p.as_path(), "case file")).collect();
    inputs.extend(recorded.iter().map(|p| (p.as_path(), "evidence file")));
    overwrites(out, &inputs)
}

/// `path` made absolute with links resolved; for a file that does not exist yet, its
/// directory resolved and its name kept.
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(c) = std::fs::canonicalize(path) {
        return Some(c);
    }
    let name = path.file_name()?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(std::fs::canonicalize(parent).ok()?.join(name))
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}

#[cfg(unix)]
fn links(md: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    md.nlink()
}

#[cfg(not(unix))]
fn links(_: &std::fs::Metadata) -> u64 {
    1
}

/// The input directory the temporary directory (`TMPDIR`) lies in, if any: state spilled
/// to disk during a large run would be written inside the evidence.
pub(crate) fn temp_dir_in_evidence(inputs: &[PathBuf]) -> Option<PathBuf> {
    let tmp = std::fs::canonicalize(std::env::temp_dir()).ok()?;
    inputs.iter().find_map(|i| {
        let c = std::fs::canonicalize(i).ok()?;
        (c.is_dir() && tmp.starts_with(&c)).then(|| i.clone())
    })
}

/// The input that holds the case directory `case` (`ecir scan --case`), if any: the scan
/// would read the case's journal and evidence copies back as logs (counting copied lines
/// twice), and attaching the report would write into the evidence.
pub(crate) fn case_in_evidence(case: &Path, inputs: &[PathBuf]) -> Option<PathBuf> {
    let case = resolved(case)?;
    inputs.iter().find_map(|i| {
        let c = std::fs::canonicalize(i).ok()?;
        (c.is_dir() && case.starts_with(&c)).then(|| i.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ecir-guard-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn evidence_is_never_an_output() {
        let d = dir("evidence");
        let log = d.join("access_log");
        std::fs::write(
            &log,
            "203.0.113.5 - - [03/Nov/2026:10:00:00 +0900] \"GET / HTTP/1.1\" 200 1\n",
        )
        .unwrap();
        let inputs = vec![d.clone()];
        // A file inside an input directory, named directly, and through a hard link.
        assert!(overwrites_evidence(&log, &inputs)
            .unwrap()
            .contains("inside the input"));
        assert!(overwrites_evidence(&log, std::slice::from_ref(&log))
            .unwrap()
            .contains("the input"));
        let outside = dir("evidence-link");
        let hard = outside.join("copy");
        std::fs::hard_link(&log, &hard).unwrap();
        assert!(overwrites_evidence(&hard, std::slice::from_ref(&log)).is_some());
        assert!(overwrites_evidence(&hard, &[])
            .unwrap()
            .contains("hard links"));
        // A new file, or an earlier report, inside the input directory is fine.
        assert_eq!(overwrites_evidence(&d.join("report.json"), &inputs), None);
        let report = d.join("report.json");
        std::fs::write(&report, "{\n  \"schema\": \"ecir.report/1\"\n}\n").unwrap();
        assert_eq!(overwrites_evidence(&report, &inputs), None);
        let html = d.join("report.html");
        std::fs::write(
            &html,
            "<!DOCTYPE html>\n<html><head><title>ecir — report</title>",
        )
        .unwrap();
        assert_eq!(overwrites_evidence(&html, &inputs), None);
        // An unrelated file elsewhere is the user's to replace.
        let other = outside.join("notes.txt");
        std::fs::write(&other, "x").unwrap();
        assert_eq!(overwrites_evidence(&other, &inputs), None);
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&outside);
    }

    #[test]
    fn a_case_inside_an_input_directory_is_found() {
        let d = dir("case-in-evidence");
        let logs = d.join("logs");
        let case = logs.join("incident").join("case");
        std::fs::create_dir_all(&case).unwrap();
        let other = d.join("case");
        std::fs::create_dir_all(&other).unwrap();
        let inputs = vec![logs.join("access_log"), logs.clone()];
        std::fs::write(&inputs[0], "x").unwrap();
        assert_eq!(case_in_evidence(&case, &inputs), Some(logs.clone()));
        // Through a relative spelling, and for a case directory not made yet.
        let dotted = logs.join("..").join("logs").join("new-case");
        assert_eq!(case_in_evidence(&dotted, &inputs), Some(logs.clone()));
        assert_eq!(case_in_evidence(&logs, &inputs), Some(logs.clone()));
        // Beside the logs, or an input file only: fine.
        assert_eq!(case_in_evidence(&other, &inputs), None);
        assert_eq!(case_in_evidence(&case, &inputs[..1]), None);
        let _ = std::fs::remove_dir_all(&d);
    }
}
