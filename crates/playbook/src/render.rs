//! Plain-text and Markdown renderings: `playbook show`, `playbook export --format markdown`
//! and the text form of `case status`. No colours or terminal control: the CLI prints these,
//! and every rendering passes through [`terminal_safe`], so a control character in a case's
//! values (or in a playbook that was not linted) is shown as an escape, never obeyed.

use std::borrow::Cow;
use std::fmt::Write;

use ecir_model::text::escape_controls_keep_lines;

use crate::case::{CaseStatus, StepStatus};
use crate::deadline;
use crate::format::{Anchor, Deadline, DeadlineKind, Lang, Playbook, Unit};

/// `s` with control and bidi characters escaped (`\x1b`, `\u{202e}`) and its line breaks and
/// tabs kept; `s` itself when there is nothing to escape.
pub fn terminal_safe(s: String) -> String {
    match escape_controls_keep_lines(&s) {
        Cow::Borrowed(_) => None,
        Cow::Owned(e) => Some(e),
    }
    .unwrap_or(s)
}

fn t(lang: Lang, ja: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Ja => ja,
        Lang::En => en,
    }
}

/// One-line description of a deadline rule (`≤ 30 days after discovery (hard; rule)`).
pub fn describe_deadline(d: &Deadline, lang: Lang) -> String {
    let unit = match (d.unit, lang) {
        (Unit::Hours, Lang::Ja) => "時間",
        (Unit::Days, Lang::Ja) => "日",
        (Unit::BusinessDays, Lang::Ja) => "営業日",
        (Unit::Hours, Lang::En) => "hours",
        (Unit::Days, Lang::En) => "days",
        (Unit::BusinessDays, Lang::En) => "business days",
    };
    let anchor = match (&d.anchor, lang) {
        (Anchor::Discovery, Lang::Ja) => "発見（T0）".to_string(),
        (Anchor::Discovery, Lang::En) => "discovery (T0)".to_string(),
        (Anchor::Step(s), Lang::Ja) => format!("{s} の完了"),
        (Anchor::Step(s), Lang::En) => format!("completion of {s}"),
        (Anchor::Var(v), _) => format!("`{v}`"),
    };
    let kind = match (d.kind, lang) {
        (DeadlineKind::Hard, Lang::Ja) => "厳守",
        (DeadlineKind::Soft, Lang::Ja) => "目安",
        (DeadlineKind::Hard, Lang::En) => "hard",
        (DeadlineKind::Soft, Lang::En) => "soft",
    };
    let roll = if d.roll_forward {
        t(lang, "、閉庁日なら翌開庁日", ", next workday if closed")
    } else {
        ""
    };
    let when = d
        .when
        .as_ref()
        .map(|w| format!("{} `{w}`: ", t(lang, "条件", "when")))
        .unwrap_or_default();
    match lang {
        Lang::Ja => format!(
            "{when}{anchor}から{}{unit}以内（{kind}{roll}）— {}",
            d.offset, d.rule
        ),
        Lang::En => format!(
            "{when}within {} {unit} of {anchor} ({kind}{roll}) — {}",
            d.offset, d.rule
        ),
    }
}

/// `playbook show`: the playbook as readable text in one language, including its variables.
pub fn show(pb: &Playbook, lang: Lang) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} ({} v{})", pb.title.get(lang), pb.id, pb.version);
    if !pb.summary.get(lang).is_empty() {
        let _ = writeln!(s, "{}", pb.summary.get(lang));
    }
    if !pb.variables.is_empty() {
        let _ = writeln!(s, "\n{}", t(lang, "変数:", "Variables:"));
        for v in &pb.variables {
            let _ = writeln!(
                s,
                "  {} ({}): {}",
                v.name,
                v.kind.as_str(),
                v.description.get(lang)
            );
        }
    }
    // As the Markdown export: in dependency order, a heading wherever the phase changes.
    let mut phase = None;
    for st in pb.steps_in_dependency_order() {
        if phase != Some(st.phase) {
            phase = Some(st.phase);
            let _ = writeln!(s, "\n== {} ==", st.phase.label(lang));
        }
        let _ = writeln!(s, "[{}] {}", st.id, st.title.get(lang));
        for line in st.text.get(lang).lines() {
            let _ = writeln!(s, "    {line}");
        }
        if let Some(w) = &st.when {
            let _ = writeln!(s, "    {} {w}", t(lang, "条件:", "when:"));
        }
        if !st.after.is_empty() {
            let _ = writeln!(
                s,
                "    {} {}",
                t(lang, "前提:", "after:"),
                st.after.join(", ")
            );
        }
        for d in &st.deadlines {
            let _ = writeln!(
                s,
                "    {} {}",
                t(lang, "期限:", "deadline:"),
                describe_deadline(d, lang)
            );
        }
        for e in &st.evidence {
            let _ = writeln!(s, "    {} {}", t(lang, "証跡:", "evidence:"), e.get(lang));
        }
        if !st.rules.is_empty() {
            let _ = writeln!(
                s,
                "    {} {}",
                t(lang, "根拠:", "rules:"),
                st.rules.join("; ")
            );
        }
    }
    terminal_safe(s)
}

/// Markdown-escapes text for inline use (table cells and headings).
/// Control characters become visible escapes first.
fn md(s: &str) -> String {
    let s = escape_controls_keep_lines(s);
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' | '\\' => {
                o.push('\\');
                o.push(c);
            }
            '\n' => o.push(' '),
            _ => o.push(c),
        }
    }
    o
}

/// `s` as a Markdown code span: fenced by one more backtick than the longest run in it, so
/// no text can close the span early and be read as Markdown (a link) after it.
fn code(s: &str) -> String {
    let s = escape_controls_keep_lines(s).replace('\n', " ");
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// `playbook export --format markdown`: a checklist document in one language.
pub fn export_markdown(pb: &Playbook, lang: Lang) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n", md(pb.title.get(lang)));
    let _ = writeln!(s, "`{}` v{} ({})\n", pb.id, pb.version, pb.updated);
    if !pb.summary.get(lang).is_empty() {
        let _ = writeln!(s, "{}\n", md(pb.summary.get(lang)));
    }
    if !pb.variables.is_empty() {
        let _ = writeln!(s, "## {}\n", t(lang, "変数", "Variables"));
        let _ = writeln!(
            s,
            "| {} | {} | {} |\n|---|---|---|",
            t(lang, "名前", "name"),
            t(lang, "型", "type"),
            t(lang, "説明", "description")
        );
        for v in &pb.variables {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} |",
                v.name,
                v.kind.as_str(),
                md(v.description.get(lang))
            );
        }
        s.push('\n');
    }
    // In dependency order (a step never before one it comes after); a heading wherever the
    // phase changes, so a phase may be visited again.
    let mut phase = None;
    for st in pb.steps_in_dependency_order() {
        if phase != Some(st.phase) {
            phase = Some(st.phase);
            let _ = writeln!(s, "## {}\n", st.phase.label(lang));
        }
        // Step ids are free text (and imported CACAO text): escaped like the prose.
        let _ = writeln!(s, "### [ ] {} {}\n", md(&st.id), md(st.title.get(lang)));
        let _ = writeln!(s, "{}\n", md(st.text.get(lang)));
        if let Some(w) = &st.when {
            let _ = writeln!(s, "- {} {}", t(lang, "条件:", "When:"), code(w));
        }
        if !st.after.is_empty() {
            let _ = writeln!(
                s,
                "- {} {}",
                t(lang, "前提:", "After:"),
                md(&st.after.join(", "))
            );
        }
        for d in &st.deadlines {
            let _ = writeln!(
                s,
                "- {} {}",
                t(lang, "期限:", "Deadline:"),
                md(&describe_deadline(d, lang))
            );
        }
        for e in &st.evidence {
            let _ = writeln!(s, "- {} {}", t(lang, "証跡:", "Evidence:"), md(e.get(lang)));
        }
        if !st.rules.is_empty() {
            let _ = writeln!(
                s,
                "- {} {}",
                t(lang, "根拠:", "Rules:"),
                md(&st.rules.join("; "))
            );
        }
        s.push('\n');
    }
    terminal_safe(s)
}

/// Text form of `case status`, in the status's language and zone.
pub fn render_status(st: &CaseStatus) -> String {
    let lang = st.lang;
    let mut s = String::new();
    let _ = writeln!(s, "{} ({})", st.title, st.playbook);
    let _ = writeln!(
        s,
        "{} {}   {} {}   ({})",
        t(lang, "発見:", "discovered:"),
        st.discovered,
        t(lang, "現在:", "now:"),
        st.at,
        st.tz
    );
    let _ = writeln!(s, "\n{}", t(lang, "進捗:", "Progress:"));
    for p in &st.phases {
        let _ = writeln!(
            s,
            "  {:<10} {}/{}",
            p.phase.label(lang),
            p.resolved,
            p.applicable
        );
    }
    if !st.overdue_hard.is_empty() {
        let _ = writeln!(
            s,
            "\n!! {} {}",
            t(lang, "期限超過（厳守）:", "OVERDUE hard deadlines:"),
            st.overdue_hard.join(", ")
        );
    }
    let _ = writeln!(s, "\n{}", t(lang, "期限:", "Deadlines:"));
    for r in st.deadlines_by_due().into_iter().filter(|r| r.applies) {
        let kind = match r.deadline_kind {
            Some(DeadlineKind::Hard) => t(lang, "厳守", "hard"),
            _ => t(lang, "目安", "soft"),
        };
        let when = match (&r.deadline_shown, r.seconds_left, &r.deadline_waiting_for) {
            (Some(d), Some(left), _) => {
                // As the incident record says: only a step done in time met its deadline.
                let rel = if r.status == StepStatus::Done {
                    if r.late {
                        t(lang, "期限後に完了", "done late").to_string()
                    } else {
                        t(lang, "期限内に完了", "met").to_string()
                    }
                } else if r.status == StepStatus::Skipped {
                    t(lang, "見送り", "skipped").to_string()
                } else if r.status == StepStatus::NotApplicable {
                    t(lang, "該当なし", "not applicable").to_string()
                } else if left >= 0 {
                    format!(
                        "{} {}",
                        t(lang, "残り", "left"),
                        deadline::span(left, lang == Lang::Ja)
                    )
                } else {
                    format!(
                        "{} {}",
                        t(lang, "超過", "LATE by"),
                        deadline::span(left, lang == Lang::Ja)
                    )
                };
                format!("{d} ({rel})")
            }
            (_, _, Some(w)) => format!("{} {w}", t(lang, "起点待ち:", "waiting for")),
            _ => String::new(),
        };
        let flag = if r.overdue && r.deadline_kind == Some(DeadlineKind::Hard) {
            "!! "
        } else {
            "   "
        };
        let undecided = if r.deadline_undecided.is_empty() {
            String::new()
        } else {
            match lang {
                Lang::Ja => format!(
                    " ［未決定: {}。安全側の期限を表示］",
                    r.deadline_undecided.join(", ")
                ),
                Lang::En => format!(
                    " [undecided: {}; the conservative deadline is shown]",
                    r.deadline_undecided.join(", ")
                ),
            }
        };
        let _ = writeln!(
            s,
            "{flag}{:<6} [{kind}] {} — {}{undecided}",
            r.id, when, r.title
        );
    }
    let _ = writeln!(
        s,
        "\n{} {}",
        t(lang, "次の手順:", "Next steps:"),
        if st.next.is_empty() {
            "-".to_string()
        } else {
            st.next.join(", ")
        }
    );
    let undecided: std::collections::BTreeSet<&String> =
        st.steps.iter().flat_map(|r| r.undecided.iter()).collect();
    if !undecided.is_empty() {
        let _ = writeln!(
            s,
            "{} {}",
            t(lang, "未設定の変数:", "Variables not yet set:"),
            undecided
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !st.recommended_playbooks.is_empty() {
        let _ = writeln!(
            s,
            "{} {}",
            t(
                lang,
                "スキャン結果が推奨するプレイブック:",
                "Playbooks recommended by scan findings:"
            ),
            st.recommended_playbooks.join(", ")
        );
    }
    terminal_safe(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundled::find_bundled;

    #[test]
    fn show_lists_variables_and_steps() {
        let pb = find_bundled("card-skimming").unwrap();
        let en = show(&pb, Lang::En);
        assert!(en.contains("unauthorized_access (bool)"));
        assert!(en.contains("[CS-19] APPI final report"));
        assert!(en.contains("within 60 days of discovery (T0)"));
        let ja = show(&pb, Lang::Ja);
        assert!(ja.contains("[CS-19] 個人情報保護委員会への確報"));
        let md = export_markdown(&pb, Lang::En);
        assert!(md.starts_with("# Card-information leak"));
        assert_eq!(md.matches("### [ ] ").count(), pb.steps.len());
    }

    #[test]
    fn show_and_markdown_escape_controls_of_an_unlinted_playbook() {
        // Built in memory, past the linter: the views must still not pass controls through.
        let mut pb = find_bundled("card-skimming").unwrap();
        let link = "\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\";
        pb.title.en = format!("{link} \u{9b}2J");
        pb.steps[0].id = "CS\u{202e}01".into();
        pb.steps[0].text.en = "line 1\n\tline 2 \u{7}\rover".into();
        for out in [show(&pb, Lang::En), export_markdown(&pb, Lang::En)] {
            assert!(
                !out.chars()
                    .any(|c| c != '\n' && c != '\t' && ecir_model::text::is_unsafe_char(c)),
                "{out}"
            );
            assert!(out.contains("x1b") && out.contains("x9b2J"), "{out}");
            // Markdown doubles the escape's backslash, so that it renders as written.
            assert!(
                out.contains("CS\\u{202e}01") || out.contains("CS\\\\u{202e}01"),
                "{out}"
            );
        }
        assert!(export_markdown(&pb, Lang::En).contains("### [ ] CS\\\\u{202e}01"));
        let text = show(&pb, Lang::En);
        assert!(
            text.contains("    line 1\n    \tline 2 \\x07\\x0dover\n"),
            "{text}"
        );
    }

    #[test]
    fn markdown_export_escapes_link_syntax_in_ids_and_conditions() {
        let mut pb = find_bundled("card-skimming").unwrap();
        pb.steps[0].id = "[a](javascript:alert(1))".into();
        pb.steps[1].after = vec!["[b](data:text/html,x)".into()];
        pb.steps[1].when = Some("x = `y` [c](vbscript:z)".into());
        let md = export_markdown(&pb, Lang::En);
        assert!(md.contains("### [ ] \\[a\\](javascript:alert(1))"), "{md}");
        assert!(md.contains("- After: \\[b\\](data:text/html,x)"), "{md}");
        assert!(md.contains("- When: ``x = `y` [c](vbscript:z)``"), "{md}");
        assert_eq!(code("`a`"), "`` `a` ``");
    }

    #[test]
    fn markdown_export_and_show_order_steps_by_dependency() {
        let pb = find_bundled("card-skimming").unwrap();
        for (out, mark) in [
            (export_markdown(&pb, Lang::En), "### [ ] "),
            (show(&pb, Lang::En), "\n["),
        ] {
            let at = |id: &str| {
                out.find(&format!("{mark}{id}"))
                    .unwrap_or_else(|| panic!("{id} not in {out}"))
            };
            // CS-08 (detect) comes after CS-05 (notify), CS-21 (recover) after CS-08, and
            // reopening (CS-22) after the acquirer's approval (CS-21).
            assert!(
                at("CS-05") < at("CS-08") && at("CS-08") < at("CS-21") && at("CS-21") < at("CS-22"),
                "{out}"
            );
            for st in &pb.steps {
                for dep in &st.after {
                    assert!(at(dep) < at(&st.id), "{dep} before {}", st.id);
                }
            }
            assert_eq!(out.matches(mark).count(), pb.steps.len());
        }
    }
}
