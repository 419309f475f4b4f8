//! Terminal concerns: colour decisions (TTY, `NO_COLOR`, `--color`), ANSI styling, terminal
//! width, and the progress bar on stderr.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ecir_model::Severity;
use ecir_report::Painter;
use ecir_scan::Progress;

use crate::args::ColorChoice;

/// Whether to colour a stream: `always`, `never`, or on a TTY when `NO_COLOR` is unset/empty.
pub fn use_color(choice: ColorChoice, is_tty: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

pub struct Ansi;

impl Painter for Ansi {
    fn severity(&self, s: Severity, text: &str) -> String {
        let code = match s {
            Severity::Critical => "1;37;41",
            Severity::High => "1;31",
            Severity::Medium => "33",
            Severity::Low => "36",
            Severity::Info => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
    fn heading(&self, text: &str) -> String {
        format!("\x1b[1m{text}\x1b[0m")
    }
    fn dim(&self, text: &str) -> String {
        format!("\x1b[2m{text}\x1b[0m")
    }
}

/// Terminal width from `COLUMNS`, else 100.
pub fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

/// A progress bar drawn on stderr while the scan runs.
pub struct Bar {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Bar {
    /// Starts drawing when stderr is a terminal and `enabled`.
    pub fn start(progress: Arc<Progress>, enabled: bool) -> Bar {
        let stop = Arc::new(AtomicBool::new(false));
        if !enabled || !std::io::stderr().is_terminal() {
            return Bar { stop, handle: None };
        }
        let s = stop.clone();
        let handle = thread::spawn(move || {
            let mut drawn = false;
            while !s.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(150));
                let total = progress.total_bytes.load(Ordering::Relaxed).max(1);
                let done = progress.done_bytes.load(Ordering::Relaxed).min(total);
                let files = progress.files_done.load(Ordering::Relaxed);
                let nfiles = progress.files_total.load(Ordering::Relaxed);
                let pct = done * 100 / total;
                let filled = (pct / 4) as usize;
                let _ = write!(
                    std::io::stderr(),
                    "\r[{}{}] {:>3}% {} / {} MiB, {files}/{nfiles} files ",
                    "=".repeat(filled),
                    " ".repeat(25 - filled),
                    pct,
                    done >> 20,
                    total >> 20
                );
                drawn = true;
            }
            if drawn {
                let _ = write!(std::io::stderr(), "\r{}\r", " ".repeat(79));
            }
        });
        Bar {
            stop,
            handle: Some(handle),
        }
    }

    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Writes `text` to stdout and flushes it. A closed pipe never gets here (SIGPIPE ends the
/// process, as it ends `head`'s other writers, see `main`); a full disk or a broken terminal
/// is an error for the caller to report.
pub fn write_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}
