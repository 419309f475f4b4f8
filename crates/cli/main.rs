//! The `ecir` command: argument parsing, terminal output, exit codes and file locations.
//!
//! This is the only place that knows about terminals (colour, width, progress bars), the
//! process exit status (0 nothing at or above `--fail-on`, 1 findings at or above it, 2 an
//! error) and where outputs are written. Everything else is a library call.

mod args;
mod audit_cmd;
mod guard;
#[cfg(feature = "heap-stats")]
mod heap_stats;
mod playbook_cmd;
mod scan_cmd;
mod term;
mod time_arg;
mod timeline_cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    default_sigpipe();
    let cli = args::Cli::parse();
    let code = match cli.command {
        args::Command::Scan(a) => scan_cmd::run(*a),
        args::Command::Timeline(a) => timeline_cmd::run(a),
        args::Command::Formats => print_or_fail(&formats_text()),
        args::Command::Playbook(cmd) => {
            finish(playbook_cmd::run_playbook(cmd, &mut std::io::stdout()))
        }
        args::Command::Case(cmd) => finish(playbook_cmd::run_case(
            cmd,
            &mut std::io::stdin().lock(),
            &mut std::io::stdout(),
        )),
        args::Command::Rules => {
            let mut text = String::new();
            for (group, rules) in ecir_detect::DETECTORS {
                for rule in *rules {
                    text.push_str(&format!("{rule:<32} {group}\n"));
                }
            }
            // Stream defects scan reports from its own inputs (ecir-audit).
            for rule in ecir_audit::RULES {
                text.push_str(&format!("{rule:<32} log-integrity\n"));
            }
            print_or_fail(&text)
        }
        args::Command::Audit(a) => audit_cmd::run(a),
        args::Command::Manifest(m) => audit_cmd::manifest(m),
    };
    #[cfg(feature = "heap-stats")]
    heap_stats::report();
    ExitCode::from(code)
}

fn formats_text() -> String {
    let list = ecir_formats::list();
    let w = list.iter().map(|(n, _, _)| n.len()).max().unwrap_or(8);
    let mut text = format!("{:<w$}  {:<12} DESCRIPTION\n", "NAME", "SOURCE");
    for (name, source, desc) in list {
        text.push_str(&format!("{name:<w$}  {:<12} {desc}\n", source.as_str()));
    }
    text
}

/// Prints a listing; 2 when stdout cannot take it.
fn print_or_fail(text: &str) -> u8 {
    match term::write_stdout(text) {
        Ok(()) => 0,
        Err(e) => {
            scan_cmd::error(&format!("cannot write to stdout: {e}"), None);
            2
        }
    }
}

/// Restores the default action of SIGPIPE, which Rust's runtime ignores: a reader that
/// closes the pipe early (`ecir rules | head -1`) ends ecir quietly, as it ends other
/// command-line tools, instead of every later write failing or panicking.
fn default_sigpipe() {
    // SAFETY: called first thing in `main`, before any other thread exists; SIG_DFL is a
    // valid disposition for SIGPIPE.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Maps a command result to an exit status, printing the error (and its hint) on stderr.
fn finish(r: Result<i32, playbook_cmd::Failure>) -> u8 {
    match r {
        Ok(code) => code.clamp(0, 2) as u8,
        Err(f) => {
            if f.more.is_empty() {
                scan_cmd::error(&f.message, f.hint);
            } else {
                scan_cmd::error(&f.message, None);
                for (i, m) in f.more.iter().enumerate() {
                    scan_cmd::error(m, if i + 1 == f.more.len() { f.hint } else { None });
                }
            }
            2
        }
    }
}
