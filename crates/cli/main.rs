//! The `ecir` command: argument parsing, terminal output, exit codes and file locations.
//!
//! This is the only place that knows about terminals (colour, width, progress bars), the
//! process exit status (0 nothing at or above `--fail-on`, 1 findings at or above it, 2 an
//! error) and where outputs are written. Everything else is a library call.

mod args;
mod audit_cmd;
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
    let cli = args::Cli::parse();
    let code = match cli.command {
        args::Command::Scan(a) => scan_cmd::run(*a),
        args::Command::Timeline(a) => timeline_cmd::run(a),
        args::Command::Formats => {
            print_formats();
            0
        }
        args::Command::Playbook(cmd) => {
            finish(playbook_cmd::run_playbook(cmd, &mut std::io::stdout()))
        }
        args::Command::Case(cmd) => finish(playbook_cmd::run_case(
            cmd,
            &mut std::io::stdin().lock(),
            &mut std::io::stdout(),
        )),
        args::Command::Rules => {
            for (group, rules) in ecir_detect::DETECTORS {
                for rule in *rules {
                    println!("{rule:<32} {group}");
                }
            }
            // Stream defects scan reports from its own inputs (ecir-audit).
            for rule in ecir_audit::RULES {
                println!("{rule:<32} log-integrity");
            }
            0
        }
        args::Command::Audit(a) => audit_cmd::run(a),
        args::Command::Manifest(m) => audit_cmd::manifest(m),
    };
    #[cfg(feature = "heap-stats")]
    heap_stats::report();
    ExitCode::from(code)
}

fn print_formats() {
    let list = ecir_formats::list();
    let w = list.iter().map(|(n, _, _)| n.len()).max().unwrap_or(8);
    println!("{:<w$}  {:<12} DESCRIPTION", "NAME", "SOURCE");
    for (name, source, desc) in list {
        println!("{name:<w$}  {:<12} {desc}", source.as_str());
    }
}

/// Maps a command result to an exit status, printing the error (and its hint) on stderr.
fn finish(r: Result<i32, playbook_cmd::Failure>) -> u8 {
    match r {
        Ok(code) => code.clamp(0, 2) as u8,
        Err(f) => {
            scan_cmd::error(&f.message, f.hint);
            2
        }
    }
}
