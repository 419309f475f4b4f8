//! Reading a whole file the user names that is not evidence (a platform profile, a playbook,
//! a CACAO document, a manifest to verify, a case's journal, a report to attach) with a size
//! cap and a type check, so that naming `/dev/zero`, a FIFO or a directory, or a file far
//! larger than any such document, gives one clear error instead of exhausting memory or
//! blocking forever.
//!
//! [`read_bounded`] refuses anything that is not a regular file once symbolic links are
//! followed (checked on the metadata before opening, and again on the opened handle, which
//! on Unix is opened with `O_NONBLOCK` so that a FIFO swapped in meanwhile cannot block the
//! open), refuses a file whose size is over the cap, and reads at most cap + 1 bytes
//! (`Read::take`), so a file that grows while it is read cannot exceed the cap either.
//! Evidence is never read this way: it is streamed (see `read.rs`).

use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::discover::describe_io;

/// Cap for configuration written by hand or by ecir (TOML playbooks, JSON platform profiles,
/// CACAO JSON, a case's head and playbook copy): the bundled ones are a few KiB, so 16 MiB is
/// far beyond any real one while small enough to hold and parse without concern.
pub const CONFIG_LIMIT: u64 = 16 << 20;

/// Cap for documents whose size grows with the evidence or the case: a manifest holds about
/// 400 bytes of JSON per evidence file, so 256 MiB is over half a million files; a case
/// journal and a scan report (bounded findings and evidence) stay far below it. Parsed, such
/// a document takes a few times its size in memory, which a workstation still affords.
pub const DOCUMENT_LIMIT: u64 = 256 << 20;

/// Why a file was not read.
#[derive(Debug)]
pub enum BoundedProblem {
    /// Not a regular file: what it is instead (`a directory`, `a FIFO`, …).
    NotRegular(&'static str),
    /// Larger than the cap (bytes).
    TooLarge { limit: u64 },
    /// Read whole, but not UTF-8 text (from [`read_bounded_string`]).
    NotUtf8,
    /// The file could not be opened or read.
    Io(io::Error),
}

/// A file [`read_bounded`] refused or could not read: the path and the problem. `Display`
/// gives one line naming the file.
#[derive(Debug)]
pub struct BoundedReadError {
    pub path: PathBuf,
    pub problem: BoundedProblem,
}

impl BoundedReadError {
    /// A short suggestion for the user, when there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match &self.problem {
            BoundedProblem::NotRegular(_) => {
                Some("name a regular file; directories, FIFOs and devices are not read")
            }
            BoundedProblem::TooLarge { .. } => {
                Some("no file of this kind is that large; check that this is the right file")
            }
            BoundedProblem::NotUtf8 => Some("save the file as UTF-8 text"),
            BoundedProblem::Io(e) if e.kind() == io::ErrorKind::NotFound => Some("check the path"),
            BoundedProblem::Io(_) => None,
        }
    }

    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(&self.problem, BoundedProblem::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

impl fmt::Display for BoundedProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoundedProblem::NotRegular(what) => write!(f, "not a regular file ({what})"),
            BoundedProblem::TooLarge { limit } => {
                write!(f, "larger than the limit of {}", human_size(*limit))
            }
            BoundedProblem::NotUtf8 => f.write_str("not UTF-8 text"),
            BoundedProblem::Io(e) => f.write_str(&describe_io(e)),
        }
    }
}

impl fmt::Display for BoundedReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for BoundedReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.problem {
            BoundedProblem::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// `bytes` as a short size (`16 MiB`, `512 KiB`, or bytes).
fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// What a file that is not a regular file is, for the error message.
fn kind_of(md: &Metadata) -> Option<&'static str> {
    let ft = md.file_type();
    if ft.is_file() {
        return None;
    }
    if ft.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return Some("a FIFO");
        }
        if ft.is_char_device() {
            return Some("a character device");
        }
        if ft.is_block_device() {
            return Some("a block device");
        }
        if ft.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a file")
}

/// Opens `path` for reading without blocking on a FIFO (Unix: `O_NONBLOCK`, which changes
/// nothing for a regular file's reads).
fn open_nonblocking(path: &Path) -> io::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    opts.open(path)
}

/// Opens `path` for reading if it is a regular file (symbolic links followed): checked on
/// the metadata before opening, so a FIFO or a device is never opened, and again on the
/// opened handle, in case the path was replaced between the two. Returns the file and its
/// metadata. For files read whole use [`read_bounded`]; this alone (no size cap) is for
/// files that are streamed, such as a case's evidence copies being re-hashed.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), BoundedReadError> {
    let fail = |problem| BoundedReadError {
        path: path.to_path_buf(),
        problem,
    };
    let check = |md: Metadata| match kind_of(&md) {
        Some(what) => Err(fail(BoundedProblem::NotRegular(what))),
        None => Ok(md),
    };
    check(std::fs::metadata(path).map_err(|e| fail(BoundedProblem::Io(e)))?)?;
    let file = open_nonblocking(path).map_err(|e| fail(BoundedProblem::Io(e)))?;
    let md = check(file.metadata().map_err(|e| fail(BoundedProblem::Io(e)))?)?;
    Ok((file, md))
}

/// Reads the whole of `path`, a regular file (symbolic links followed) of at most `limit`
/// bytes. See the module documentation.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, BoundedReadError> {
    let too_large = || BoundedReadError {
        path: path.to_path_buf(),
        problem: BoundedProblem::TooLarge { limit },
    };
    let (file, md) = open_regular(path)?;
    if md.len() > limit {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(md.len() as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| BoundedReadError {
            path: path.to_path_buf(),
            problem: BoundedProblem::Io(e),
        })?;
    if buf.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(buf)
}

/// [`read_bounded`], as UTF-8 text.
pub fn read_bounded_string(path: &Path, limit: u64) -> Result<String, BoundedReadError> {
    let bytes = read_bounded(path, limit)?;
    String::from_utf8(bytes).map_err(|_| BoundedReadError {
        path: path.to_path_buf(),
        problem: BoundedProblem::NotUtf8,
    })
}

/// A configuration file ([`CONFIG_LIMIT`]) as UTF-8 text.
pub fn read_config(path: &Path) -> Result<String, BoundedReadError> {
    read_bounded_string(path, CONFIG_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ecir-bounded-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn regular_file_within_the_limit_is_read_whole() {
        let d = tmp("ok");
        let p = d.join("profile.json");
        std::fs::write(&p, "{\"name\": \"x\"}\n").unwrap();
        assert_eq!(read_config(&p).unwrap(), "{\"name\": \"x\"}\n");
        // Exactly at the limit is still read.
        assert_eq!(read_bounded(&p, 14).unwrap().len(), 14);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn larger_than_the_limit_is_refused_naming_file_and_limit() {
        let d = tmp("large");
        let p = d.join("big.toml");
        std::fs::write(&p, vec![b'a'; 4097]).unwrap();
        let e = read_bounded(&p, 4096).unwrap_err();
        assert!(matches!(
            e.problem,
            BoundedProblem::TooLarge { limit: 4096 }
        ));
        let msg = e.to_string();
        assert!(msg.contains("big.toml") && msg.contains("4 KiB"), "{msg}");
        assert!(!msg.contains('\n'));
        assert!(e.hint().is_some());
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// A file whose metadata understates its length (as one growing while it is read
    /// would): the read itself stops one byte past the cap.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_read_stops_past_the_limit_whatever_the_metadata_says() {
        let p = Path::new("/proc/self/status");
        assert_eq!(std::fs::metadata(p).unwrap().len(), 0);
        let e = read_bounded(p, 16).unwrap_err();
        assert!(
            matches!(e.problem, BoundedProblem::TooLarge { limit: 16 }),
            "{e}"
        );
        assert!(read_bounded(p, CONFIG_LIMIT).unwrap().len() > 16);
    }

    #[test]
    fn directory_is_refused() {
        let d = tmp("dir");
        let e = read_config(&d).unwrap_err();
        assert!(matches!(
            e.problem,
            BoundedProblem::NotRegular("a directory")
        ));
        assert!(e.to_string().contains("not a regular file"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_and_not_utf8() {
        let d = tmp("missing");
        let e = read_config(&d.join("nope.toml")).unwrap_err();
        assert!(e.is_not_found());
        assert_eq!(e.hint(), Some("check the path"));
        std::fs::write(d.join("bin.toml"), b"\xff\xfe").unwrap();
        let e = read_config(&d.join("bin.toml")).unwrap_err();
        assert!(matches!(e.problem, BoundedProblem::NotUtf8));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn fifo_and_device_are_refused_without_blocking() {
        let d = tmp("fifo");
        let fifo = d.join("profile.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No writer ever opens the FIFO: reading it would block forever. Run the read on a
        // thread and fail the test rather than hang if it does not return promptly.
        let (tx, rx) = std::sync::mpsc::channel();
        let p = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(read_config(&p).map(|_| ()).map_err(|e| e.to_string()));
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading a FIFO blocked");
        let msg = got.unwrap_err();
        assert!(msg.contains("not a regular file (a FIFO)"), "{msg}");
        // Through a symbolic link too.
        let link = d.join("link.json");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        let e = read_config(&link).unwrap_err();
        assert!(matches!(e.problem, BoundedProblem::NotRegular("a FIFO")));
        // A device that never ends.
        let e = read_bounded(Path::new("/dev/zero"), DOCUMENT_LIMIT).unwrap_err();
        assert!(
            matches!(e.problem, BoundedProblem::NotRegular("a character device")),
            "{e}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
