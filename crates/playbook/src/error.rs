//! The typed errors every library function returns; the CLI turns them into messages and exit
//! codes.

use std::fmt;
use std::path::PathBuf;

use crate::format::Problem;

#[derive(Debug)]
pub enum Error {
    /// A file could not be read or written.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file read whole (a playbook, the journal) is missing, not a regular file, over its
    /// size cap, or unreadable.
    Read(ecir_input::BoundedReadError),
    /// A playbook did not parse or lint clean: every problem, each naming its file and line.
    Playbook(Vec<Problem>),
    /// No bundled playbook (or file) by that name.
    UnknownPlaybook(String),
    /// A step id the case's playbook does not have.
    UnknownStep(String),
    /// A bad argument value (time, variable assignment, zone, format...).
    Invalid(String),
    /// `case set` of a variable neither the playbook nor the incident record knows: the
    /// message names the close or declared names.
    UnknownVariable(String),
    /// The case directory exists already, or is not a case.
    Case(String),
    /// The journal or an evidence file does not hold: names the first broken record or file.
    Tampered(String),
    /// CACAO JSON that cannot be imported.
    Cacao(String),
    /// Another command held the case's lock for too long.
    Busy(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {}", path.display(), source),
            Error::Read(e) => write!(f, "{e}"),
            // One line (`; ` between problems), each naming its file and line: a message is
            // printed as one line. The CLI prints each problem on a line of its own.
            Error::Playbook(problems) => {
                for (i, p) in problems.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
            Error::UnknownPlaybook(id) => write!(f, "unknown playbook: {id}"),
            Error::UnknownStep(id) => write!(f, "unknown step: {id}"),
            Error::Invalid(m) | Error::Case(m) | Error::Busy(m) | Error::UnknownVariable(m) => {
                f.write_str(m)
            }
            Error::Tampered(m) => write!(f, "verification failed: {m}"),
            Error::Cacao(m) => write!(f, "CACAO import: {m}"),
        }
    }
}

impl Error {
    /// A short suggestion for the user, when there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Read(e) => e.hint(),
            Error::Tampered(_) => Some("`ecir case verify DIR` explains what does not hold"),
            Error::Busy(_) => Some("retry when the other command on this case has finished"),
            Error::UnknownVariable(_) => Some(
                "`ecir playbook show ID` lists a playbook's variables; the ppc_* items of the incident record can be set in every case",
            ),
            _ => None,
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Read(e) => Some(e),
            _ => None,
        }
    }
}

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
