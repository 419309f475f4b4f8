//! Turning the user's PATH arguments into a sorted list of input files.
//!
//! Directories are walked recursively. Hidden entries (names starting with `.`), symbolic
//! links met inside a directory (they could loop or leave the evidence tree), pipes, sockets
//! and devices, ecir's own outputs and ecir report files are skipped; every skip that matters
//! is reported. A pipe or device named directly is an error (reading it could block forever,
//! and it has no size to hash against). The list is sorted so that a run's order never
//! depends on the file system.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One file to read.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InputFile {
    /// Path as the user would recognise it (argument joined with the walked relative path).
    pub path: PathBuf,
    /// Size on disk when discovered.
    pub size: u64,
}

impl InputFile {
    pub fn display(&self) -> String {
        self.path.display().to_string()
    }
}

/// A path that could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryError {
    pub path: PathBuf,
    pub message: String,
    pub hint: Option<String>,
}

/// The reason given for skipping a path this run writes.
pub const OWN_OUTPUT: &str = "an output of this run";

/// What discovery found.
#[derive(Debug, Default)]
pub struct Discovered {
    pub files: Vec<InputFile>,
    pub errors: Vec<DiscoveryError>,
    /// Files deliberately left out, with the reason (own outputs, ecir reports, links).
    pub skipped: Vec<(PathBuf, String)>,
}

/// Walks `roots`; `exclude` lists paths ecir writes in this run (never read back).
pub fn discover(roots: &[PathBuf], exclude: &[PathBuf]) -> Discovered {
    let exclude: Vec<PathBuf> = exclude
        .iter()
        .filter_map(|p| fs::canonicalize(p).ok())
        .collect();
    let mut out = Discovered::default();
    for root in roots {
        match fs::metadata(root) {
            Err(e) => out.errors.push(DiscoveryError {
                path: root.clone(),
                message: describe_io(&e),
                hint: (e.kind() == std::io::ErrorKind::NotFound)
                    .then(|| "check the path; ecir reads files and directories".to_string()),
            }),
            Ok(md) if md.is_dir() => walk(root, &exclude, &mut out),
            Ok(md) if md.is_file() => consider_file(root, md.len(), &exclude, &mut out),
            Ok(_) => out.errors.push(DiscoveryError {
                path: root.clone(),
                message: "not a regular file (a pipe, socket or device): ecir reads files".into(),
                hint: Some(
                    "save the stream to a file first (e.g. `cat … > access_log`) and scan that"
                        .into(),
                ),
            }),
        }
    }
    out.files.sort();
    out.files.dedup_by(|a, b| a.path == b.path);
    // A file named twice (`logs/a` and `./logs/a`, or a directory and a file inside it) is
    // read once: the first name in sorted order stands for it.
    let mut seen: std::collections::HashMap<PathBuf, PathBuf> = Default::default();
    let mut twice = Vec::new();
    out.files.retain(|f| {
        let key = fs::canonicalize(&f.path).unwrap_or_else(|_| f.path.clone());
        match seen.get(&key) {
            Some(first) => {
                if *first != f.path {
                    twice.push((
                        f.path.clone(),
                        format!("the same file as {}", first.display()),
                    ));
                }
                false
            }
            None => {
                seen.insert(key, f.path.clone());
                true
            }
        }
    });
    out.skipped.extend(twice);
    out
}

fn walk(dir: &Path, exclude: &[PathBuf], out: &mut Discovered) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.errors.push(DiscoveryError {
                path: dir.to_path_buf(),
                message: format!("cannot list directory: {}", describe_io(&e)),
                hint: None,
            });
            return;
        }
    };
    let mut children: Vec<PathBuf> = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => children.push(e.path()),
            Err(e) => out.errors.push(DiscoveryError {
                path: dir.to_path_buf(),
                message: format!("cannot list directory: {}", describe_io(&e)),
                hint: None,
            }),
        }
    }
    children.sort();
    for child in children {
        let hidden = child
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        let md = match fs::symlink_metadata(&child) {
            Ok(m) => m,
            Err(e) => {
                out.errors.push(DiscoveryError {
                    path: child.clone(),
                    message: describe_io(&e),
                    hint: None,
                });
                continue;
            }
        };
        if md.file_type().is_symlink() {
            out.skipped.push((
                child,
                "symbolic link inside a directory (name it directly to read it)".into(),
            ));
        } else if md.is_dir() {
            walk(&child, exclude, out);
        } else if md.is_file() {
            consider_file(&child, md.len(), exclude, out);
        } else {
            out.skipped.push((
                child,
                "not a regular file (a pipe, socket or device)".into(),
            ));
        }
    }
}

fn consider_file(path: &Path, size: u64, exclude: &[PathBuf], out: &mut Discovered) {
    if let Ok(canon) = fs::canonicalize(path) {
        if exclude.contains(&canon) {
            out.skipped.push((path.to_path_buf(), OWN_OUTPUT.into()));
            return;
        }
    }
    if is_ecir_output(path) {
        out.skipped
            .push((path.to_path_buf(), "an ecir report".into()));
        return;
    }
    out.files.push(InputFile {
        path: path.to_path_buf(),
        size,
    });
}

/// Whether `path` holds a document ecir wrote: its JSON documents (report, audit, manifest)
/// start with their schema name, its HTML pages are titled after it. Reading them back as
/// logs would only produce noise, and writing over one is not writing over evidence.
pub fn is_ecir_output(path: &Path) -> bool {
    let mut head = [0u8; 1024];
    let n = match crate::read::open_evidence(path).and_then(|mut f| f.read(&mut head)) {
        Ok(n) => n,
        Err(_) => return false,
    };
    let head = &head[..n];
    let squeezed: Vec<u8> = head
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    squeezed.starts_with(b"{\"schema\":\"ecir.")
        || (head.starts_with(b"<!DOCTYPE html>")
            && memchr::memmem::find(head, b"<title>ecir").is_some())
}

/// A short, lower-case description of an I/O error without the OS error number.
pub fn describe_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => "no such file or directory".into(),
        PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_sorted_skips_hidden_and_reports() {
        let dir = std::env::temp_dir().join(format!("ecir-discover-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("b.log"), "x\n").unwrap();
        fs::write(dir.join("sub/a.log"), "x\n").unwrap();
        fs::write(dir.join(".hidden"), "x\n").unwrap();
        fs::write(
            dir.join("report.json"),
            "{\n  \"schema\": \"ecir.report/1\"}",
        )
        .unwrap();
        fs::write(dir.join("out.json"), "x").unwrap();
        let d = discover(&[dir.clone(), dir.join("missing")], &[dir.join("out.json")]);
        let names: Vec<_> = d
            .files
            .iter()
            .map(|f| f.path.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["b.log", "sub/a.log"]);
        assert_eq!(d.errors.len(), 1);
        assert_eq!(d.skipped.len(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }
}
