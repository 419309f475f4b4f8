//! Turning the user's PATH arguments into a sorted list of input files.
//!
//! Directories are walked recursively. Hidden entries (names starting with `.`; kept with
//! [`Hidden::Include`], as a chain-of-custody manifest does), symbolic links met inside a
//! directory (they could loop or leave the evidence tree), pipes, sockets and devices, ecir's
//! own outputs and ecir report files are skipped; every skip is listed in
//! [`Discovered::skipped`] with its [`SkipReason`]. A path named directly is never skipped
//! for being hidden. A pipe or device named directly is an error (reading it could block
//! forever, and it has no size to hash against). The list is sorted so that a run's order
//! never depends on the file system.

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
    /// The path for people and reports: [`path_text`].
    pub fn display(&self) -> String {
        path_text(&self.path)
    }
}

/// A path as ecir shows it: valid UTF-8 as it is, every byte that is not part of valid UTF-8
/// as `\xHH` (lowercase hex), so two names that differ only in such bytes never look alike
/// (a lossy `U+FFFD` would make them identical). Control characters are left to the view's
/// own escaping.
pub fn path_text(p: &Path) -> String {
    bytes_text(&os_bytes(p.as_os_str()))
}

/// [`path_text`] of raw name bytes.
pub fn bytes_text(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// The exact bytes of an OS string (on Unix; elsewhere its UTF-8 form).
pub fn os_bytes(s: &std::ffi::OsStr) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::borrow::Cow::Borrowed(s.as_bytes())
    }
    #[cfg(not(unix))]
    {
        match s.to_string_lossy() {
            std::borrow::Cow::Borrowed(t) => std::borrow::Cow::Borrowed(t.as_bytes()),
            std::borrow::Cow::Owned(t) => std::borrow::Cow::Owned(t.into_bytes()),
        }
    }
}

/// A path that could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryError {
    pub path: PathBuf,
    pub message: String,
    pub hint: Option<String>,
}

/// Why discovery left a path out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// A name starting with `.` inside a directory (a hidden directory is not walked).
    Hidden,
    /// A symbolic link inside a directory: not followed.
    Symlink,
    /// A pipe, socket or device inside a directory.
    NotRegular,
    /// A path this run writes.
    OwnOutput,
    /// A document ecir wrote (report, audit, manifest, HTML page).
    EcirOutput,
    /// The same file as this one, named earlier in sorted order (read once, under that name).
    SameFile(PathBuf),
}

impl SkipReason {
    /// A short, stable name for the reason (`hidden`, `symlink`, `not-a-regular-file`,
    /// `own-output`, `ecir-output`, `same-file`), for machine-readable outputs.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::Hidden => "hidden",
            SkipReason::Symlink => "symlink",
            SkipReason::NotRegular => "not-a-regular-file",
            SkipReason::OwnOutput => "own-output",
            SkipReason::EcirOutput => "ecir-output",
            SkipReason::SameFile(_) => "same-file",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Hidden => write!(f, "hidden (name it directly to read it)"),
            SkipReason::Symlink => write!(
                f,
                "symbolic link inside a directory (name it directly to read it)"
            ),
            SkipReason::NotRegular => write!(f, "not a regular file (a pipe, socket or device)"),
            SkipReason::OwnOutput => write!(f, "an output of this run"),
            SkipReason::EcirOutput => write!(f, "an ecir report"),
            SkipReason::SameFile(first) => {
                write!(f, "the same file as {}", path_text(first))
            }
        }
    }
}

/// Whether discovery walks into hidden entries (names starting with `.`) of directories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Hidden {
    /// Skip them (listed in [`Discovered::skipped`] as [`SkipReason::Hidden`]): `scan`,
    /// `timeline`, `audit`.
    #[default]
    Skip,
    /// Read them like any other entry: a chain-of-custody manifest.
    Include,
}

/// What discovery found.
#[derive(Debug, Default)]
pub struct Discovered {
    pub files: Vec<InputFile>,
    pub errors: Vec<DiscoveryError>,
    /// Paths deliberately left out, with the reason (hidden entries, links, pipes and
    /// devices, own outputs, ecir reports, files named twice), in walk order.
    pub skipped: Vec<(PathBuf, SkipReason)>,
}

/// Walks `roots`, hidden entries skipped; `exclude` lists paths ecir writes in this run
/// (never read back).
pub fn discover(roots: &[PathBuf], exclude: &[PathBuf]) -> Discovered {
    discover_with(roots, exclude, Hidden::Skip)
}

/// [`discover`], with hidden entries of directories skipped or read as `hidden` says.
pub fn discover_with(roots: &[PathBuf], exclude: &[PathBuf], hidden: Hidden) -> Discovered {
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
            Ok(md) if md.is_dir() => walk(root, &exclude, hidden, &mut out),
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
                    twice.push((f.path.clone(), SkipReason::SameFile(first.clone())));
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

fn walk(dir: &Path, exclude: &[PathBuf], hidden_entries: Hidden, out: &mut Discovered) {
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
            .is_some_and(|n| os_bytes(n).starts_with(b"."));
        if hidden && hidden_entries == Hidden::Skip {
            out.skipped.push((child, SkipReason::Hidden));
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
            out.skipped.push((child, SkipReason::Symlink));
        } else if md.is_dir() {
            walk(&child, exclude, hidden_entries, out);
        } else if md.is_file() {
            consider_file(&child, md.len(), exclude, out);
        } else {
            out.skipped.push((child, SkipReason::NotRegular));
        }
    }
}

fn consider_file(path: &Path, size: u64, exclude: &[PathBuf], out: &mut Discovered) {
    if let Ok(canon) = fs::canonicalize(path) {
        if exclude.contains(&canon) {
            out.skipped
                .push((path.to_path_buf(), SkipReason::OwnOutput));
            return;
        }
    }
    if is_ecir_output(path) {
        out.skipped
            .push((path.to_path_buf(), SkipReason::EcirOutput));
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
        let reasons: Vec<_> = d.skipped.iter().map(|(_, r)| r.code()).collect();
        assert_eq!(reasons, ["hidden", "own-output", "ecir-output"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    fn names(d: &Discovered, dir: &Path) -> Vec<String> {
        d.files
            .iter()
            .map(|f| path_text(f.path.strip_prefix(dir).unwrap()))
            .collect()
    }

    #[cfg(unix)]
    #[test]
    fn hidden_entries_are_listed_when_skipped_read_when_included_or_named() {
        use std::os::unix::ffi::OsStrExt;
        let dir = std::env::temp_dir().join(format!("ecir-hidden-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join(".git")).unwrap();
        fs::write(dir.join("a.log"), "x\n").unwrap();
        fs::write(dir.join(".env"), "x\n").unwrap();
        fs::write(dir.join(".git/HEAD"), "x\n").unwrap();
        // A hidden name that is not UTF-8 is hidden too.
        fs::write(dir.join(std::ffi::OsStr::from_bytes(b".\xff")), "x\n").unwrap();
        std::os::unix::fs::symlink("a.log", dir.join("link")).unwrap();

        let d = discover(std::slice::from_ref(&dir), &[]);
        assert_eq!(names(&d, &dir), ["a.log"]);
        let skipped: Vec<_> = d
            .skipped
            .iter()
            .map(|(p, r)| (path_text(p.strip_prefix(&dir).unwrap()), r.code()))
            .collect();
        assert_eq!(
            skipped,
            [
                (".env".to_string(), "hidden"),
                (".git".to_string(), "hidden"),
                (".\\xff".to_string(), "hidden"),
                ("link".to_string(), "symlink"),
            ]
        );

        let d = discover_with(std::slice::from_ref(&dir), &[], Hidden::Include);
        assert_eq!(names(&d, &dir), [".env", ".git/HEAD", ".\\xff", "a.log"]);
        assert_eq!(d.skipped.len(), 1, "{:?}", d.skipped);

        // A hidden file named directly is read.
        let d = discover(&[dir.join(".env")], &[]);
        assert_eq!(d.files.len(), 1);
        assert!(d.skipped.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn paths_that_are_not_utf8_are_shown_byte_for_byte() {
        assert_eq!(bytes_text(b"a\x82\xa0.log"), "a\\x82\\xa0.log");
        assert_eq!(bytes_text("証拠.log".as_bytes()), "証拠.log");
        assert_ne!(bytes_text(b"a\xfe"), bytes_text(b"a\xff"));
    }
}
