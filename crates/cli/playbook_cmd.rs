//! Clap wiring for `ecir playbook ...` and `ecir case ...`: parses arguments, calls
//! `ecir-playbook` and maps its results to output and exit codes (0 ok, 1 not met: lint
//! problems, a failed verification or an overdue hard deadline, 2 error). Include with `mod playbook_cmd;` in main.rs and
//! add `ecir-playbook` to the root package's dependencies.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use ecir_playbook as pb;

#[derive(clap::Subcommand, Debug)]
pub enum PlaybookCommand {
    /// List the bundled playbooks.
    List {
        #[arg(long)]
        lang: Option<String>,
    },
    /// Show a playbook (bundled id or TOML file), with its variables.
    Show {
        id: String,
        #[arg(long)]
        lang: Option<String>,
    },
    /// Lint playbook files (default: every bundled playbook).
    Lint { files: Vec<PathBuf> },
    /// Export a playbook as Markdown or CACAO 2.0 JSON.
    Export {
        id: String,
        #[arg(long, default_value = "markdown", value_parser = ["markdown", "md", "cacao"])]
        format: String,
        #[arg(long)]
        lang: Option<String>,
    },
    /// Import a CACAO 2.0 JSON playbook exported by ecir; prints the TOML form.
    Import { file: PathBuf },
}

#[derive(clap::Subcommand, Debug)]
pub enum CaseCommand {
    /// Open a case directory.
    New {
        dir: PathBuf,
        #[arg(long)]
        playbook: String,
        /// Discovery time (T0): RFC 3339 or "YYYY-MM-DD HH:MM" in --tz.
        #[arg(long)]
        discovered: String,
        #[arg(long)]
        lang: Option<String>,
        #[arg(long, default_value = "Asia/Tokyo")]
        tz: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// Walk through the next applicable steps interactively (reads answers from stdin).
    Next {
        dir: PathBuf,
        #[arg(long)]
        by: Option<String>,
    },
    /// Record a step's status.
    Step {
        dir: PathBuf,
        step: String,
        #[arg(long, value_parser = ["done", "skipped", "not-applicable"])]
        status: String,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        evidence: Vec<PathBuf>,
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        at: Option<String>,
    },
    /// Set case variables (NAME=VALUE ...).
    Set {
        dir: PathBuf,
        #[arg(required = true)]
        assignments: Vec<String>,
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        at: Option<String>,
    },
    /// Correct the discovery time (T0).
    Discovered {
        dir: PathBuf,
        time: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        by: Option<String>,
    },
    /// Add a note (card numbers are masked).
    Note {
        dir: PathBuf,
        text: String,
        #[arg(long)]
        step: Option<String>,
        #[arg(long)]
        by: Option<String>,
    },
    /// Progress, next steps and deadlines.
    ///
    /// Exit status: 0 when no hard deadline is overdue, 1 when one is (pending, applicable
    /// and past due; a step done, skipped or not applicable is not overdue), 2 on error: for
    /// cron or CI checks.
    Status {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        at: Option<String>,
    },
    /// Check the journal hash chain and every evidence hash.
    ///
    /// Exit status: 0 when they hold (files in evidence/ that no record names are listed as
    /// warnings, and counted in the result line), 1 when they do not, 2 on error.
    Verify { dir: PathBuf },
    /// Write the incident record.
    Report {
        dir: PathBuf,
        #[arg(long, default_value = "md", value_parser = ["md", "html"])]
        format: String,
        /// Write to FILE instead of stdout (never into the case's journal, playbook copy or
        /// evidence, nor over a file recorded as evidence).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// Replace FILE when it exists already.
        #[arg(long, requires = "output")]
        force: bool,
    },
    /// Attach an ecir scan report (ecir.report/1 JSON).
    AttachReport {
        dir: PathBuf,
        report: PathBuf,
        #[arg(long)]
        by: Option<String>,
    },
}

fn lang_of(opt: &Option<String>) -> Result<pb::Lang, String> {
    match opt {
        Some(l) => pb::Lang::parse(l).ok_or_else(|| format!("unknown language {l} (ja or en)")),
        None => Ok(pb::default_lang(std::env::var("LANG").ok().as_deref())),
    }
}

fn by_of(opt: Option<String>) -> String {
    opt.unwrap_or_else(pb::os_user)
}

/// Why a command failed: the message (one line naming the file, for a file that could not
/// be read), further problems of the same kind (each printed as an error line of its own,
/// e.g. every problem of a playbook that does not load) and, when there is one, a hint.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub more: Vec<String>,
    pub hint: Option<&'static str>,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure {
            message,
            more: Vec::new(),
            hint: None,
        }
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

fn e(err: pb::Error) -> Failure {
    let hint = err.hint();
    match err {
        // One line per problem, each naming the file and line, not one message whose line
        // breaks the error printer would show as `\x0a`.
        pb::Error::Playbook(problems) if !problems.is_empty() => {
            let mut lines = problems.iter().map(|p| p.to_string());
            Failure {
                message: lines.next().unwrap_or_default(),
                more: lines.collect(),
                hint,
            }
        }
        err => Failure {
            message: err.to_string(),
            more: Vec::new(),
            hint,
        },
    }
}

fn read_failure(err: ecir_input::BoundedReadError) -> Failure {
    Failure {
        message: err.to_string(),
        more: Vec::new(),
        hint: err.hint(),
    }
}

fn w(err: std::io::Error) -> String {
    err.to_string()
}

pub fn run_playbook(cmd: PlaybookCommand, out: &mut dyn Write) -> Result<i32, Failure> {
    match cmd {
        PlaybookCommand::List { lang } => {
            for s in pb::list(lang_of(&lang)?).map_err(e)? {
                writeln!(
                    out,
                    "{:<16} v{:<3} {:>3} steps  {}",
                    s.id, s.version, s.steps, s.title
                )
                .map_err(w)?;
            }
            Ok(0)
        }
        PlaybookCommand::Show { id, lang } => {
            let p = pb::load(&id).map_err(e)?;
            write!(out, "{}", pb::show(&p, lang_of(&lang)?)).map_err(w)?;
            Ok(0)
        }
        PlaybookCommand::Lint { files } => {
            let mut problems = Vec::new();
            if files.is_empty() {
                for (f, src) in pb::bundled() {
                    problems.extend(pb::lint(f, src));
                }
            } else {
                for f in &files {
                    let src = ecir_input::read_config(f).map_err(read_failure)?;
                    problems.extend(pb::lint(&f.display().to_string(), &src));
                }
            }
            for p in &problems {
                writeln!(out, "{p}").map_err(w)?;
            }
            Ok(if problems.is_empty() { 0 } else { 1 })
        }
        PlaybookCommand::Export { id, format, lang } => {
            let p = pb::load(&id).map_err(e)?;
            if format == "cacao" {
                let doc = pb::export_cacao(&p);
                writeln!(
                    out,
                    "{}",
                    ecir_model::json::to_string_pretty(&doc).map_err(|x| x.to_string())?
                )
                .map_err(w)?;
            } else {
                write!(out, "{}", pb::export_markdown(&p, lang_of(&lang)?)).map_err(w)?;
            }
            Ok(0)
        }
        PlaybookCommand::Import { file } => {
            let text = ecir_input::read_config(&file).map_err(read_failure)?;
            let (_, toml) = pb::import_cacao(&text).map_err(e)?;
            write!(out, "{toml}").map_err(w)?;
            Ok(0)
        }
    }
}

/// `input` is stdin (a TTY or a pipe) for `case next`.
pub fn run_case(
    cmd: CaseCommand,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<i32, Failure> {
    match cmd {
        CaseCommand::New {
            dir,
            playbook,
            discovered,
            lang,
            tz,
            by,
        } => {
            let by = by_of(by);
            let st = pb::new_case(
                &dir,
                &pb::NewCase {
                    playbook: &playbook,
                    discovered: &discovered,
                    lang: lang_of(&lang)?,
                    tz: &tz,
                    by: &by,
                    at: None,
                },
            )
            .map_err(e)?;
            if let Some(rec) = st.records.first() {
                warn_odd_times(&st, rec, "--discovered");
            }
            writeln!(
                out,
                "{}: {} ({})",
                dir.display(),
                st.playbook.title.get(st.lang),
                st.playbook.id
            )
            .map_err(w)?;
            Ok(0)
        }
        CaseCommand::Next { dir, by } => {
            pb::run_next(&dir, input, out, &by_of(by)).map_err(e)?;
            Ok(0)
        }
        CaseCommand::Step {
            dir,
            step,
            status,
            note,
            evidence,
            by,
            at,
        } => {
            let status = pb::StepStatus::parse(&status).ok_or("bad status")?;
            let by = by_of(by);
            let rec = pb::apply_step(
                &dir,
                &pb::StepUpdate {
                    step: &step,
                    status,
                    note: note.as_deref(),
                    evidence,
                    by: &by,
                    at: at.as_deref(),
                },
            )
            .map_err(e)?;
            warn_odd_times(&pb::state(&dir).map_err(e)?, &rec, "--at");
            Ok(0)
        }
        CaseCommand::Set {
            dir,
            assignments,
            by,
            at,
        } => {
            let rec = pb::set_vars(&dir, &assignments, &by_of(by), at.as_deref()).map_err(e)?;
            warn_odd_times(&pb::state(&dir).map_err(e)?, &rec, "--at");
            Ok(0)
        }
        CaseCommand::Discovered {
            dir,
            time,
            reason,
            by,
        } => {
            let rec = pb::correct_discovery(&dir, &time, reason.as_deref(), &by_of(by), None)
                .map_err(e)?;
            warn_odd_times(&pb::state(&dir).map_err(e)?, &rec, "the discovery time");
            Ok(0)
        }
        CaseCommand::Note {
            dir,
            text,
            step,
            by,
        } => {
            pb::add_note(&dir, step.as_deref(), &text, &by_of(by), None).map_err(e)?;
            Ok(0)
        }
        CaseCommand::Status { dir, json, at } => {
            let st = pb::status(&dir, at.as_deref()).map_err(e)?;
            if json {
                writeln!(
                    out,
                    "{}",
                    ecir_model::json::to_string_pretty(&st).map_err(|x| x.to_string())?
                )
                .map_err(w)?;
            } else {
                write!(out, "{}", pb::render_status(&st)).map_err(w)?;
            }
            Ok(if st.overdue_hard.is_empty() { 0 } else { 1 })
        }
        CaseCommand::Verify { dir } => match pb::verify(&dir) {
            Ok(v) => {
                // Unreferenced files are not tampering with recorded evidence: warned
                // about, the result stays ok (exit 0).
                for f in &v.unreferenced {
                    eprintln!(
                        "ecir: warning: {}: not referenced by any journal record",
                        ecir_model::text::escape_controls(f, 2000)
                    );
                }
                if !v.unreferenced.is_empty() {
                    eprintln!("  hint: a copy left by a command that failed before journaling it, or a file put there by hand; record evidence with `ecir case step DIR STEP --evidence FILE`");
                }
                let extra = match v.unreferenced.len() {
                    0 => String::new(),
                    n => format!(", {n} unreferenced file(s)"),
                };
                writeln!(
                    out,
                    "ok: {} records, {} evidence files, head {}{extra}",
                    v.records, v.evidence_files, v.head
                )
                .map_err(w)?;
                Ok(0)
            }
            Err(pb::Error::Tampered(m)) => {
                writeln!(out, "FAILED: {m}").map_err(w)?;
                Ok(1)
            }
            Err(x) => Err(e(x)),
        },
        CaseCommand::Report {
            dir,
            format,
            output,
            force,
        } => {
            let f = pb::ReportFormat::parse(&format).ok_or("bad format")?;
            let text = pb::case_report(&dir, f).map_err(e)?;
            match output {
                Some(path) => write_report(&dir, &path, &text, force)?,
                None => write!(out, "{text}").map_err(w)?,
            }
            Ok(0)
        }
        CaseCommand::AttachReport { dir, report, by } => {
            // A scan report: its findings and evidence are bounded, so the document cap.
            let bytes = ecir_input::read_bounded(&report, ecir_input::DOCUMENT_LIMIT)
                .map_err(read_failure)?;
            let rec = pb::attach_report(&dir, &bytes, &by_of(by), None).map_err(e)?;
            report_var_notes(&rec);
            Ok(0)
        }
    }
}

/// Writes a case report to `path`, unless that would overwrite the case's own files, its
/// evidence (stored copies and originals, see [`crate::guard::overwrites_case`]) or, without
/// `force`, any existing file.
fn write_report(dir: &Path, path: &Path, text: &str, force: bool) -> Result<(), Failure> {
    let st = pb::state(dir).map_err(e)?;
    let recorded: Vec<PathBuf> = pb::journal::evidence_files(&st.records)
        .into_iter()
        .flat_map(|(_, f)| [PathBuf::from(&f.original), dir.join(&f.stored)])
        .collect();
    if let Some(what) = crate::guard::overwrites_case(path, dir, &recorded) {
        return Err(Failure {
            message: format!(
                "{}: refusing to write the report over {what}",
                path.display()
            ),
            more: Vec::new(),
            hint: Some("write the report outside the evidence, e.g. -o incident.html"),
        });
    }
    let exists = std::fs::symlink_metadata(path).is_ok();
    if exists && !force {
        return Err(Failure {
            message: format!("{}: exists already; refusing to replace it", path.display()),
            more: Vec::new(),
            hint: Some("give --force to replace it, or choose another file"),
        });
    }
    let mut file = if force {
        std::fs::File::create(path)
    } else {
        // Not `create`: a file made meanwhile is not replaced either.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
    }
    .map_err(|x| format!("{}: cannot write: {x}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|x| format!("{}: cannot write: {x}", path.display()))?;
    Ok(())
}

/// Warns on stderr, one line each, of the odd times of a record just appended
/// ([`pb::odd_times`]: in the future, or a step dated before T0); the record stands.
/// `discovered` names the discovery time as the user gave it.
fn warn_odd_times(st: &pb::CaseState, rec: &pb::journal::Record, discovered: &str) {
    for odd in pb::odd_times(st, rec, chrono::Utc::now()) {
        let field = match &odd.field {
            pb::TimeField::At => "--at",
            pb::TimeField::Discovered => discovered,
            pb::TimeField::Var(name) => name,
        };
        let line = format!(
            "{field} {} is {}; recorded as given (hint: {})",
            odd.value, odd.problem, odd.hint
        );
        eprintln!(
            "ecir: warning: {}",
            ecir_model::text::escape_controls(&line, 2000)
        );
    }
}

/// Prints on stderr what attaching a scan report did to the case variables: what it set and
/// which values it did not apply because a person (or an earlier report) had set another.
pub fn report_var_notes(rec: &pb::journal::Record) {
    for line in pb::report_var_notes(rec, pb::Lang::En) {
        eprintln!(
            "ecir: note: {}",
            ecir_model::text::escape_controls(&line, 2000)
        );
    }
}
