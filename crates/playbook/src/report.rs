//! The incident record (`case report`): timeline, who did what when, deadlines met and
//! missed, evidence with hashes, and a draft of the items of a PPC report
//! (個人情報保護法施行規則8条1項) filled from case variables. Markdown or self-contained HTML
//! (every value escaped, no scripts).

use std::path::Path;

use chrono::Utc;

use crate::case::{self, status_of, CaseState, StepStatus};
use crate::error::Error;
use crate::format::{DeadlineKind, Lang, VarType};
use crate::journal::What;

/// Variables the incident record reads besides a playbook's own: the items of the PPC
/// report draft and the values an attached scan report fills. `case set` accepts them in
/// every case, with these types unless the playbook declares them itself.
pub const RECORD_VARS: &[(&str, VarType)] = &[
    ("ppc_overview", VarType::String),
    ("ppc_data_items", VarType::String),
    ("ppc_cause", VarType::String),
    ("ppc_secondary_damage", VarType::String),
    ("ppc_individual_notice", VarType::String),
    ("ppc_publication", VarType::String),
    ("ppc_prevention", VarType::String),
    ("ppc_other", VarType::String),
    ("affected_count", VarType::Int),
    ("completed_orders", VarType::Int),
    ("exposure_start", VarType::Time),
    ("exposure_end", VarType::Time),
    ("card_data_exposed", VarType::Bool),
    ("unauthorized_access", VarType::Bool),
];

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Markdown,
    Html,
}

impl ReportFormat {
    pub fn parse(s: &str) -> Option<ReportFormat> {
        match s {
            "md" | "markdown" => Some(ReportFormat::Markdown),
            "html" => Some(ReportFormat::Html),
            _ => None,
        }
    }
}

enum Block {
    H(u8, String),
    P(String),
    Table(Vec<String>, Vec<Vec<String>>),
}

fn t(lang: Lang, ja: &str, en: &str) -> String {
    match lang {
        Lang::Ja => ja.to_string(),
        Lang::En => en.to_string(),
    }
}

fn describe(w: &What, lang: Lang) -> String {
    match w {
        What::Open {
            playbook,
            discovered,
            ..
        } => format!(
            "{} {playbook}; T0 {discovered}",
            t(lang, "ケース開始:", "case opened:")
        ),
        What::Discovered { discovered, reason } => format!(
            "{} {discovered}{}",
            t(lang, "発見日時を訂正:", "discovery time corrected to"),
            reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        What::Set { vars } => format!(
            "{} {}",
            t(lang, "変数設定:", "set"),
            vars.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        What::Step {
            step,
            status,
            note,
            evidence,
        } => {
            let mut s = format!("{step}: {status}");
            if let Some(n) = note {
                s.push_str(&format!(" — {n}"));
            }
            for e in evidence {
                s.push_str(&format!(" [{} sha256:{}]", e.stored, e.sha256));
            }
            s
        }
        What::Note { step, text } => format!(
            "{}{}: {text}",
            t(lang, "メモ", "note"),
            step.as_ref().map(|s| format!(" ({s})")).unwrap_or_default()
        ),
        What::Evidence { step, file } => format!(
            "{}{}: {} sha256:{}",
            t(lang, "証跡", "evidence"),
            step.as_ref().map(|s| format!(" ({s})")).unwrap_or_default(),
            file.stored,
            file.sha256
        ),
        What::Report {
            file,
            findings,
            playbooks,
            vars,
            not_applied,
        } => {
            let mut s = format!(
                "{} {} ({findings} findings; playbooks: {}) sha256:{}",
                t(lang, "スキャン結果を添付:", "scan report attached:"),
                file.stored,
                playbooks.join(", "),
                file.sha256
            );
            if !vars.is_empty() {
                s.push_str(&format!(
                    "; {} {}",
                    t(lang, "変数設定:", "set"),
                    vars.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            for (k, n) in not_applied {
                s.push_str(&match lang {
                    Lang::Ja => format!(
                        "; {k} は未反映（スキャン結果: {}。{} が設定した {} を維持）",
                        n.report, n.set_by, n.kept
                    ),
                    Lang::En => format!(
                        "; {k} not applied (the report says {}; kept {} set by {})",
                        n.report, n.kept, n.set_by
                    ),
                });
            }
            s
        }
    }
}

fn var_or(st: &CaseState, names: &[&str], lang: Lang) -> Option<String> {
    let _ = lang;
    names.iter().find_map(|n| st.vars.get(*n).cloned())
}

fn ppc_items(st: &CaseState, lang: Lang) -> Vec<Vec<String>> {
    let missing = t(lang, "（未記入）", "(not yet recorded)");
    let yes = |n: &str| st.vars.get(n).map(|v| crate::cond::truthy(v));
    let mut items = Vec::new();
    // 1 概要
    let mut overview = var_or(st, &["ppc_overview"], lang).unwrap_or_default();
    if overview.is_empty() {
        let mut parts = vec![format!(
            "{} {}",
            t(lang, "発見日時:", "discovered:"),
            st.discovered.with_timezone(&st.tz).to_rfc3339()
        )];
        if let (Some(a), Some(b)) = (st.vars.get("exposure_start"), st.vars.get("exposure_end")) {
            parts.push(format!(
                "{} {a} – {b}",
                t(lang, "漏えい期間:", "exposure window:")
            ));
        }
        if yes("unauthorized_access") == Some(true) {
            parts.push(t(
                lang,
                "不正アクセスによる（施行規則7条3号）",
                "by unauthorized access (rule 7 item 3)",
            ));
        }
        overview = parts.join("; ");
    }
    items.push(("1. 概要", overview));
    // 2 項目
    let data = var_or(st, &["ppc_data_items"], lang).unwrap_or_else(|| {
        if yes("card_data_exposed") == Some(true) {
            t(
                lang,
                "クレジットカード情報（番号・有効期限等。詳細は要記入）",
                "credit-card data (number, expiry etc.; details to be filled in)",
            )
        } else {
            missing.clone()
        }
    });
    items.push((
        "2. 漏えい等が発生し又は発生したおそれがある個人データの項目",
        data,
    ));
    // 3 本人の数
    let count = var_or(st, &["affected_count"], lang)
        .or_else(|| {
            st.vars.get("completed_orders").map(|n| {
                format!(
                    "{} {n}",
                    t(
                        lang,
                        "少なくとも（漏えい期間中の決済完了注文数。決済に失敗した入力も窃取されうる）:",
                        "at least (completed orders in the window; cards typed into failed checkouts may be captured too):"
                    )
                )
            })
        })
        .unwrap_or_else(|| missing.clone());
    items.push(("3. 本人の数", count));
    items.push((
        "4. 原因",
        var_or(st, &["ppc_cause"], lang).unwrap_or_else(|| missing.clone()),
    ));
    items.push((
        "5. 二次被害又はそのおそれの有無及びその内容",
        var_or(st, &["ppc_secondary_damage"], lang).unwrap_or_else(|| {
            if yes("card_data_exposed") == Some(true) {
                t(
                    lang,
                    "カードの不正利用のおそれ（要記入）",
                    "possible fraudulent card use (to be filled in)",
                )
            } else {
                missing.clone()
            }
        }),
    ));
    let step_done = |ids: &[&str]| {
        ids.iter().find_map(|id| {
            st.steps
                .get(*id)
                .filter(|s| s.status == StepStatus::Done)
                .and_then(|s| s.at)
                .map(|a| {
                    format!(
                        "{} {id} {}",
                        t(lang, "実施済み", "done"),
                        a.with_timezone(&st.tz).to_rfc3339()
                    )
                })
        })
    };
    items.push((
        "6. 本人への対応の実施状況",
        var_or(st, &["ppc_individual_notice"], lang)
            .or_else(|| step_done(&["CS-17", "AT-09"]))
            .unwrap_or_else(|| missing.clone()),
    ));
    items.push((
        "7. 公表の実施状況",
        var_or(st, &["ppc_publication"], lang)
            .or_else(|| step_done(&["CS-18", "AT-09"]))
            .unwrap_or_else(|| missing.clone()),
    ));
    items.push((
        "8. 再発防止のための措置",
        var_or(st, &["ppc_prevention"], lang)
            .or_else(|| step_done(&["CS-16", "AT-13", "WS-11"]))
            .unwrap_or_else(|| missing.clone()),
    ));
    items.push((
        "9. その他参考となる事項",
        var_or(st, &["ppc_other"], lang).unwrap_or_else(|| missing.clone()),
    ));
    items
        .into_iter()
        .map(|(k, v)| vec![k.to_string(), v])
        .collect()
}

fn build(st: &CaseState, head: &str) -> Vec<Block> {
    let lang = st.lang;
    let now = Utc::now();
    let status = status_of(st, now);
    let mut b = Vec::new();
    b.push(Block::H(
        1,
        format!(
            "{} — {}",
            t(lang, "インシデント記録", "Incident record"),
            status.title
        ),
    ));
    b.push(Block::P(format!(
        "{} {} ({})  ·  {} {}  ·  {} {}  ·  {} {}",
        t(lang, "プレイブック:", "Playbook:"),
        st.playbook.id,
        st.playbook.version,
        t(lang, "発見 (T0):", "Discovered (T0):"),
        status.discovered,
        t(lang, "作成:", "Generated:"),
        status.at,
        t(lang, "ジャーナル先頭ハッシュ:", "Journal head hash:"),
        head
    )));
    b.push(Block::H(
        2,
        t(
            lang,
            "時系列（誰が・いつ・何を）",
            "Timeline (who did what, when)",
        ),
    ));
    b.push(Block::Table(
        vec![
            "#".into(),
            t(lang, "日時", "time"),
            t(lang, "実施者", "by"),
            t(lang, "内容", "what"),
        ],
        st.records
            .iter()
            .map(|r| {
                vec![
                    r.seq.to_string(),
                    r.at.clone(),
                    r.by.clone(),
                    describe(&r.what, lang),
                ]
            })
            .collect(),
    ));
    b.push(Block::H(2, t(lang, "期限", "Deadlines")));
    let mut rows = Vec::new();
    for r in status.deadlines_by_due() {
        let outcome = if !r.applies {
            t(lang, "対象外", "does not apply")
        } else if r.deadline.is_none() {
            format!(
                "{} {}",
                t(lang, "起点待ち", "waiting for"),
                r.deadline_waiting_for.clone().unwrap_or_default()
            )
        } else {
            match r.status {
                StepStatus::Done if r.late => t(lang, "期限後に完了（未達）", "MISSED (done late)"),
                StepStatus::Done => t(lang, "期限内に完了", "met"),
                StepStatus::Pending if r.overdue => {
                    t(lang, "期限超過（未完了）", "MISSED (overdue)")
                }
                StepStatus::Pending => t(lang, "未完了（期限前）", "open"),
                StepStatus::Skipped => t(lang, "見送り", "skipped"),
                StepStatus::NotApplicable => t(lang, "該当なし", "not applicable"),
            }
        };
        rows.push(vec![
            r.id.clone(),
            r.title.clone(),
            r.deadline_shown.clone().unwrap_or_else(|| "-".into()),
            match r.deadline_kind {
                Some(DeadlineKind::Hard) => t(lang, "厳守", "hard"),
                _ => t(lang, "目安", "soft"),
            },
            r.deadline_rule.clone().unwrap_or_default(),
            outcome,
        ]);
    }
    b.push(Block::Table(
        vec![
            t(lang, "手順", "step"),
            t(lang, "内容", "title"),
            t(lang, "期限", "due"),
            t(lang, "種別", "kind"),
            t(lang, "根拠", "rule"),
            t(lang, "結果", "outcome"),
        ],
        rows,
    ));
    b.push(Block::H(2, t(lang, "手順の状況", "Steps")));
    // In dependency order, as the playbook export: no step before one it comes after.
    let steps: Vec<&case::StepStatusRow> = st
        .playbook
        .steps_in_dependency_order()
        .into_iter()
        .filter_map(|s| status.steps.iter().find(|r| r.id == s.id))
        .collect();
    b.push(Block::Table(
        vec![
            t(lang, "手順", "step"),
            t(lang, "段階", "phase"),
            t(lang, "内容", "title"),
            t(lang, "状況", "status"),
            t(lang, "完了日時", "when"),
        ],
        steps
            .into_iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.phase.label(lang).to_string(),
                    r.title.clone(),
                    if r.applies {
                        r.status.as_str().to_string()
                    } else {
                        format!(
                            "{} ({})",
                            r.status.as_str(),
                            t(lang, "対象外", "does not apply")
                        )
                    },
                    r.completed_at.clone().unwrap_or_default(),
                ]
            })
            .collect(),
    ));
    b.push(Block::H(2, t(lang, "証跡", "Evidence")));
    let mut ev = Vec::new();
    for r in &st.records {
        let files: Vec<&crate::journal::EvidenceRef> = match &r.what {
            What::Step { evidence, .. } => evidence.iter().collect(),
            What::Evidence { file, .. } | What::Report { file, .. } => vec![file],
            _ => vec![],
        };
        for f in files {
            ev.push(vec![
                r.seq.to_string(),
                f.stored.clone(),
                f.original.clone(),
                f.bytes.to_string(),
                f.sha256.clone(),
            ]);
        }
    }
    b.push(Block::Table(
        vec![
            "#".into(),
            t(lang, "保存先", "stored"),
            t(lang, "元ファイル", "original"),
            "bytes".into(),
            "SHA-256".into(),
        ],
        ev,
    ));
    b.push(Block::H(
        2,
        t(
            lang,
            "個人情報保護委員会への報告事項（下書き・施行規則8条1項）",
            "Draft of the PPC report items (APPI enforcement rule 8(1))",
        ),
    ));
    b.push(Block::P(t(
        lang,
        "ケース変数から作成した下書き。ppc_overview, ppc_data_items, ppc_cause, ppc_secondary_damage, ppc_individual_notice, ppc_publication, ppc_prevention, ppc_other を case set で記入すると反映される。",
        "A draft filled from case variables. Set ppc_overview, ppc_data_items, ppc_cause, ppc_secondary_damage, ppc_individual_notice, ppc_publication, ppc_prevention and ppc_other with case set to fill it in.",
    )));
    b.push(Block::Table(
        vec![t(lang, "事項", "item"), t(lang, "内容", "content")],
        ppc_items(st, lang),
    ));
    b
}

/// One Markdown cell, heading or paragraph: control and bidi characters escaped (a note or
/// variable value is whatever the responder typed or pasted), Markdown and HTML specials
/// neutralised, line breaks as `<br>`. Every `[` is escaped, so no text can open a link or
/// an image (`[x](javascript:…)`, `![x](data:…)`, a reference definition): a pasted note
/// shows as text, never as a clickable script link; `<` is escaped, so no autolink either.
fn md_cell(s: &str) -> String {
    ecir_model::text::escape_controls_keep_lines(s)
        .replace('\\', "\\\\")
        .replace('[', "\\[")
        .replace('|', "\\|")
        .replace('\n', "<br>")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn html_escape(s: &str) -> String {
    ecir_model::text::html_escape(&ecir_model::text::escape_controls(s, usize::MAX))
}

fn render_md(blocks: &[Block]) -> String {
    let mut o = String::new();
    for b in blocks {
        match b {
            Block::H(l, s) => {
                o.push_str(&format!("{} {}\n\n", "#".repeat(*l as usize), md_cell(s)))
            }
            Block::P(s) => o.push_str(&format!("{}\n\n", md_cell(s))),
            Block::Table(h, rows) => {
                o.push_str(&format!(
                    "| {} |\n|{}\n",
                    h.iter().map(|x| md_cell(x)).collect::<Vec<_>>().join(" | "),
                    "---|".repeat(h.len())
                ));
                for r in rows {
                    o.push_str(&format!(
                        "| {} |\n",
                        r.iter().map(|x| md_cell(x)).collect::<Vec<_>>().join(" | ")
                    ));
                }
                o.push('\n');
            }
        }
    }
    o
}

fn render_html(blocks: &[Block], lang: Lang) -> String {
    let mut o = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"><title>ecir case report</title><style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:4px;vertical-align:top}}</style></head><body>\n",
        lang.as_str()
    );
    for b in blocks {
        match b {
            Block::H(l, s) => o.push_str(&format!("<h{l}>{}</h{l}>\n", html_escape(s))),
            Block::P(s) => o.push_str(&format!("<p>{}</p>\n", html_escape(s))),
            Block::Table(h, rows) => {
                o.push_str("<table><tr>");
                for x in h {
                    o.push_str(&format!("<th>{}</th>", html_escape(x)));
                }
                o.push_str("</tr>\n");
                for r in rows {
                    o.push_str("<tr>");
                    for x in r {
                        o.push_str(&format!("<td>{}</td>", html_escape(x)));
                    }
                    o.push_str("</tr>\n");
                }
                o.push_str("</table>\n");
            }
        }
    }
    o.push_str("</body></html>\n");
    o
}

/// The incident record of a case. Verifies the case first: a tampered case is an error.
pub fn case_report(dir: &Path, format: ReportFormat) -> Result<String, Error> {
    let _lock = crate::journal::lock(dir, false)?;
    let v = crate::journal::verify_locked(dir)?;
    let st = case::state_locked(dir)?;
    let blocks = build(&st, &v.head);
    Ok(match format {
        ReportFormat::Markdown => render_md(&blocks),
        ReportFormat::Html => render_html(&blocks, st.lang),
    })
}
