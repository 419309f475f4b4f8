//! Post-detection: rules that read the findings of all detectors, after they finish.
//!
//! - `card.code_planting`: an accepted admin edit of storefront code (pages, blocks, layouts,
//!   CSS/JS, templates, design config, file manager) — code that checkout pages render — taken
//!   from `admin.code_planting` (uploads are judged by `webshell.after_upload`): high; critical when the admin finding is (compromised session,
//!   other compromise signals on the IP) or the IP is outside `--admin-allow`; medium from a
//!   known staff IP.
//! - `card.reinjection`: storefront edits or asset changes after `--cleaned-at`: high, critical
//!   when repeated (with their cadence).
//! - `webshell.after_upload`: a web-shell finding whose script was first requested within an
//!   hour after an admin upload (file manager, plugin or theme install): high, critical when
//!   the script was used from another IP than the uploader's.
//! - `card.asset_drift` findings are linked (`related`) to admin activity in the six hours
//!   before the change, and raised to high when that activity is itself high.
//! - `chain.skimming`: admin compromise and web shells linked with the card-skimming findings
//!   they lead to, as one story; `chain.card_testing`: account bursts with checkout velocity.
//!   `chain.compromise`: without a skimming chain, an admin takeover (success after failures,
//!   stolen session, outside the allow-list) followed by web-shell use from one of its IPs
//!   (30 days) or from anywhere within a day.
//!   A chain lists its members in `related`; its severity is at least its worst member's.
//!
//! [`exposure`] then dates the exposure window and counts the completed orders in it.
//! Findings get temporary ids here (`t1`, …) so `related` and `basis` can name them;
//! `Report::sort_and_number_findings` turns them into the final `F000N` ids.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ecir_model::finding::{MAX_IPS, MAX_RELATED};
use ecir_model::{Category, Exposure, Finding, Severity, Timestamp};

use crate::card::{Orders, PLAYBOOK};
use crate::session::Sessions;
use crate::{DetectConfig, FinishContext};

/// Checkout sessions held while counting orders before those that ended are forgotten.
const SESSIONS_HELD: usize = 1 << 14;
const DAY_MS: i64 = 86_400_000;

pub const RULES: &[&str] = &[
    "card.code_planting",
    "card.reinjection",
    "webshell.after_upload",
    "chain.skimming",
    "chain.card_testing",
    "chain.compromise",
];

/// Admin findings that mean the panel itself was taken over.
const TAKEOVER: &[&str] = &[
    "admin.success_after_failures",
    "admin.session_without_login",
    "admin.outside_allowlist",
];
/// Most paths a finding made here lists (as chains already did).
const MAX_PATHS: usize = 20;
/// How long after an admin takeover a web shell from the same IP is linked to it, and from
/// any IP.
const SAME_IP_LINK_MS: i64 = 30 * 86_400_000;
const ANY_IP_LINK_MS: i64 = 86_400_000;

const STOREFRONT: &[&str] = &[
    "/content/page",
    "/content/block",
    "/content/css",
    "/content/js",
    "/content/layout",
    "/store/template",
    "/design/",
    "design_config",
    "/cms/block",
    "/cms/page",
    "/cms_block",
    "/cms_page",
    "theme-editor",
    "plugin-editor",
    "/system_config/",
    "admincmspage",
    "admincmscontent",
    "adminthemes",
];

/// Whether an admin path writes code that shop pages (checkout included) render. Uploads (file
/// manager, plugin installs) are left to `webshell.after_upload`.
pub fn is_storefront_code(path: &str) -> bool {
    let l = path.to_ascii_lowercase();
    STOREFRONT.iter().any(|s| l.contains(s))
}

fn mentions_checkout(path: &str) -> bool {
    let l = path.to_ascii_lowercase();
    [
        "shopping",
        "checkout",
        "payment",
        "/content/js",
        "/content/css",
    ]
    .iter()
    .any(|k| l.contains(k))
}

/// Runs the post-detection rules over all findings and returns them with the new ones.
pub fn run(mut findings: Vec<Finding>, cfg: &DetectConfig) -> Vec<Finding> {
    let mut next = 0usize;
    let mut tmp_id = || {
        next += 1;
        format!("t{next}")
    };
    for f in &mut findings {
        if f.id.is_empty() {
            f.id = tmp_id();
        }
    }
    // Findings naming an IP that signal a compromised admin session or unknown admin IP.
    let outside: BTreeSet<String> = findings
        .iter()
        .filter(|f| f.rule == "admin.outside_allowlist")
        .flat_map(|f| f.ips.iter().cloned())
        .collect();

    // card.code_planting
    let mut new = Vec::new();
    for a in findings.iter().filter(|f| f.rule == "admin.code_planting") {
        let paths: Vec<String> = a
            .paths
            .iter()
            .filter(|p| is_storefront_code(p))
            .cloned()
            .collect();
        if paths.is_empty() {
            continue;
        }
        let ev: Vec<_> = a
            .evidence
            .iter()
            .filter(|e| paths.iter().any(|p| e.text.contains(p.as_str())))
            .cloned()
            .collect();
        let first = ev.iter().filter_map(|e| e.ts).min().or(a.first_seen);
        let last = ev.iter().filter_map(|e| e.ts).max().or(a.last_seen);
        let out_ip = a.ips.iter().any(|i| outside.contains(i));
        let sev = match a.severity {
            Severity::Critical => Severity::Critical,
            Severity::High if out_ip => Severity::Critical,
            Severity::High => Severity::High,
            s => s.min(Severity::Medium),
        };
        let checkout = paths.iter().any(|p| mentions_checkout(p));
        let who = if a.ips.is_empty() {
            "an unknown IP".to_string()
        } else {
            a.ips.join(", ")
        };
        let mut f = Finding::new("card.code_planting", Category::CardSkimming, sev);
        f.id = tmp_id();
        f.title = format!("Storefront code edited from {who}");
        f.summary = format!(
            "Admin edits of code the shop's pages render ({}) were accepted from {who}{}.{}{} This is how skimmers are planted: compare each edited template, block, CSS/JS and uploaded file with a known-good copy.",
            paths.join(", "),
            if a.users.is_empty() { String::new() } else { format!(" as {}", a.users.join(", ")) },
            if checkout { " CSS/JS and checkout pages are loaded on the payment step." } else { " Blocks and layouts appear on checkout pages too unless the shop says otherwise." },
            match sev {
                Severity::Critical => " The session or IP shows other signs of compromise.",
                Severity::Medium => " The IP is a known staff address: confirm the change with staff.",
                _ => "",
            }
        );
        f.first_seen = first;
        f.last_seen = last;
        f.ips = a.ips.clone();
        f.users = a.users.clone();
        f.paths = paths;
        f.count = ev.len().max(1) as u64;
        f.evidence = ev;
        f.playbook = Some(PLAYBOOK.into());
        f.related = vec![a.id.clone()];
        new.push(f);
    }
    findings.extend(new);

    link_drift(&mut findings);
    let uploads = after_upload(&findings, &mut tmp_id);
    findings.extend(uploads);

    if let Some(c) = cfg.card.cleaned_at {
        if let Some(f) = reinjection(&findings, c, &mut tmp_id) {
            findings.push(f);
        }
    }
    if let Some(f) = skimming_chain(&findings, &mut tmp_id) {
        findings.push(f);
    } else if let Some(f) = compromise_chain(&findings, &mut tmp_id) {
        findings.push(f);
    }
    if let Some(f) = testing_chain(&findings, &mut tmp_id) {
        findings.push(f);
    }
    findings
}

/// How far before an asset change admin activity is linked to it, and after (clock skew).
const DRIFT_LOOKBACK_MS: i64 = 6 * 3_600_000;
const DRIFT_SKEW_MS: i64 = 60_000;
/// Most admin findings named in a drift finding's summary (the worst); `related` holds up to
/// `MAX_RELATED`.
const DRIFT_NOTES: usize = 5;

/// Links each `card.asset_drift` finding to the admin findings (medium or worse) with an
/// evidence line from six hours before the change to a minute after it.
///
/// The evidence times of all admin findings are sorted once and the drift findings visited in
/// time order, so the window slides over them (two pointers) while the admin findings inside
/// it are kept by severity: the cost grows with admin evidence plus drift findings, not their
/// product. A drift finding links the worst [`MAX_RELATED`] of them (then the earliest in
/// finding order), names the worst [`DRIFT_NOTES`] in its summary, both in finding order,
/// and says how many there were in all.
fn link_drift(findings: &mut [Finding]) {
    // Admin findings: index into `findings`, severity; their evidence times, sorted.
    let admin: Vec<(usize, Severity)> = findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.category == Category::AdminCompromise && f.severity >= Severity::Medium)
        .map(|(i, f)| (i, f.severity))
        .collect();
    let mut times: Vec<(i64, usize)> = admin
        .iter()
        .enumerate()
        .flat_map(|(k, (i, _))| {
            findings[*i]
                .evidence
                .iter()
                .filter_map(move |e| e.ts.map(|t| (t.utc_ms, k)))
        })
        .collect();
    times.sort_unstable();
    let mut drifts: Vec<(i64, usize)> = findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.rule == "card.asset_drift")
        .filter_map(|(i, f)| f.first_seen.map(|t| (t.utc_ms, i)))
        .collect();
    drifts.sort_unstable();
    let links = drift_windows(&times, &admin, &drifts);
    for ((_, d), (linked, total, worst)) in drifts.iter().zip(links) {
        if total == 0 {
            continue;
        }
        // `linked` is worst first; `related` and the notes list them in finding order.
        let room = MAX_RELATED.saturating_sub(findings[*d].related.len());
        let mut rel: Vec<usize> = linked.iter().take(room).copied().collect();
        rel.sort_unstable();
        let related: Vec<String> = rel
            .iter()
            .map(|k| findings[admin[*k].0].id.clone())
            .collect();
        let mut notes: Vec<usize> = linked.iter().take(DRIFT_NOTES).copied().collect();
        notes.sort_unstable();
        let mut text: Vec<String> = notes
            .iter()
            .map(|k| {
                let a = &findings[admin[*k].0];
                let more = a.ips.len().saturating_sub(MAX_IPS);
                format!(
                    "{} from {}{}",
                    a.rule,
                    a.ips[..a.ips.len().min(MAX_IPS)].join(", "),
                    if more > 0 {
                        format!(" and {more} more IPs")
                    } else {
                        String::new()
                    }
                )
            })
            .collect();
        if total > notes.len() {
            text.push(format!(
                "and {} more ({total} admin findings in all{})",
                total - notes.len(),
                if related.len() < total {
                    format!(", the worst {} linked", related.len())
                } else {
                    String::new()
                }
            ));
        }
        let d = &mut findings[*d];
        d.related.extend(related);
        d.summary.push_str(&format!(
            " Admin activity in the six hours before: {}.",
            text.join("; ")
        ));
        if worst >= Severity::High {
            d.severity = d.severity.max(Severity::High);
        }
    }
}

/// For each drift time (sorted), the admin findings (indices into `admin`) with a time in
/// `[at - DRIFT_LOOKBACK_MS, at + DRIFT_SKEW_MS]`: the worst `MAX_RELATED` of them (severity,
/// then index; worst first), how many there are and the worst severity. `times` is sorted.
fn drift_windows(
    times: &[(i64, usize)],
    admin: &[(usize, Severity)],
    drifts: &[(i64, usize)],
) -> Vec<(Vec<usize>, usize, Severity)> {
    let mut inside = vec![0u32; admin.len()];
    // Admin findings with a time in the window, worst first.
    let mut active: BTreeSet<(std::cmp::Reverse<Severity>, usize)> = BTreeSet::new();
    let (mut add, mut drop) = (0, 0);
    let mut out = Vec::with_capacity(drifts.len());
    for (at, _) in drifts {
        while add < times.len() && times[add].0 <= at + DRIFT_SKEW_MS {
            let k = times[add].1;
            inside[k] += 1;
            if inside[k] == 1 {
                active.insert((std::cmp::Reverse(admin[k].1), k));
            }
            add += 1;
        }
        while drop < add && times[drop].0 < at - DRIFT_LOOKBACK_MS {
            let k = times[drop].1;
            inside[k] -= 1;
            if inside[k] == 0 {
                active.remove(&(std::cmp::Reverse(admin[k].1), k));
            }
            drop += 1;
        }
        let worst = active.first().map_or(Severity::Info, |x| x.0 .0);
        let linked = active.iter().take(MAX_RELATED).map(|x| x.1).collect();
        out.push((linked, active.len(), worst));
    }
    out
}

fn is_upload(path: &str) -> bool {
    let l = path.to_ascii_lowercase();
    [
        "file_manager",
        "plugin/install",
        "template/install",
        "upload-plugin",
        "upload-theme",
        "up_down",
        "/ownersstore",
    ]
    .iter()
    .any(|k| l.contains(k))
}

fn after_upload(findings: &[Finding], tmp_id: &mut impl FnMut() -> String) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut uploads: Vec<(&Finding, Timestamp)> = findings
        .iter()
        .filter(|f| f.rule == "admin.code_planting")
        .flat_map(|f| {
            f.evidence
                .iter()
                .filter(|e| {
                    f.paths
                        .iter()
                        .any(|p| is_upload(p) && e.text.contains(p.as_str()))
                })
                .filter_map(move |e| e.ts.map(|t| (f, t)))
        })
        .collect();
    // By time; stable, so equal times keep finding order (the last of them is taken).
    uploads.sort_by_key(|(_, t)| *t);
    for shell in findings
        .iter()
        .filter(|f| f.category == Category::Webshell && f.rule != "webshell.after_upload")
    {
        let Some(first) = shell.first_seen else {
            continue;
        };
        let Some((up, at)) = upload_before(&uploads, first) else {
            continue;
        };
        let other_ip = shell.ips.iter().any(|i| !up.ips.contains(i));
        let sev = if other_ip {
            Severity::Critical
        } else {
            Severity::High
        };
        let mut f = Finding::new("webshell.after_upload", Category::Webshell, sev);
        f.id = tmp_id();
        f.title = format!(
            "Script first used {} min after an admin upload: {}",
            (first.utc_ms - at.utc_ms) / 60_000,
            shell.paths.first().map_or("?", |p| p.as_str())
        );
        f.summary = format!(
            "An admin upload from {} at {at} was followed at {first} by the first request to {}{}. A file placed through the admin panel and then run is a planted web shell: compare the upload directory with a clean copy.",
            if up.ips.is_empty() { "an unknown IP".to_string() } else { up.ips.join(", ") },
            shell.paths.join(", "),
            if other_ip { format!(", from {}: another address than the uploader's", shell.ips.join(", ")) } else { String::new() }
        );
        f.first_seen = Some(at);
        f.last_seen = shell.last_seen.or(Some(first));
        let ips: BTreeSet<&String> = up.ips.iter().chain(&shell.ips).collect();
        f.ips = ips.into_iter().take(20).cloned().collect();
        f.paths = up.paths.iter().chain(&shell.paths).cloned().collect();
        f.count = 2;
        f.evidence = up
            .evidence
            .iter()
            .filter(|e| e.ts == Some(at))
            .chain(shell.evidence.iter().take(5))
            .cloned()
            .collect();
        f.playbook = Some("web-shell".into());
        f.related = vec![up.id.clone(), shell.id.clone()];
        out.push(f);
    }
    out
}

/// How long before a script's first request an admin upload is taken as its origin.
const UPLOAD_LINK_MS: i64 = 3_600_000;

/// The latest upload at or before `first` and at most [`UPLOAD_LINK_MS`] before it (of equal
/// times, the last in `uploads`' order), by binary search: `uploads` is sorted by time, stably.
fn upload_before<'a>(
    uploads: &[(&'a Finding, Timestamp)],
    first: Timestamp,
) -> Option<(&'a Finding, Timestamp)> {
    let n = uploads.partition_point(|(_, t)| *t <= first);
    let (up, at) = *uploads.get(n.checked_sub(1)?)?;
    (first.utc_ms - at.utc_ms <= UPLOAD_LINK_MS).then_some((up, at))
}

fn reinjection(
    findings: &[Finding],
    cleaned: Timestamp,
    tmp_id: &mut impl FnMut() -> String,
) -> Option<Finding> {
    let mut times: Vec<Timestamp> = Vec::new();
    let mut members: Vec<String> = Vec::new();
    let mut ev = Vec::new();
    let mut ips = BTreeSet::new();
    let mut paths = BTreeSet::new();
    for f in findings {
        let edit = f.rule == "card.code_planting" && f.severity >= Severity::High;
        let drift = f.rule == "card.asset_drift";
        if !(edit || drift) {
            continue;
        }
        let after: Vec<_> = f
            .evidence
            .iter()
            .filter(|e| e.ts.is_some_and(|t| t > cleaned))
            .collect();
        let hit = if drift {
            f.first_seen.is_some_and(|t| t > cleaned)
        } else {
            !after.is_empty()
        };
        if !hit {
            continue;
        }
        members.push(f.id.clone());
        if drift {
            times.extend(f.first_seen);
        } else {
            times.extend(after.iter().filter_map(|e| e.ts));
            ev.extend(after.into_iter().cloned());
        }
        ips.extend(f.ips.iter().cloned());
        paths.extend(f.paths.iter().cloned());
    }
    if times.is_empty() {
        return None;
    }
    times.sort();
    times.dedup();
    let gaps: Vec<i64> = times
        .windows(2)
        .map(|w| w[1].utc_ms - w[0].utc_ms)
        .collect();
    let sev = if times.len() >= 2 {
        Severity::Critical
    } else {
        Severity::High
    };
    let cadence = if gaps.is_empty() {
        String::new()
    } else {
        let mut g = gaps.clone();
        g.sort();
        format!(
            " They recur about every {:.1} hours (median gap).",
            g[g.len() / 2] as f64 / 3_600_000.0
        )
    };
    let mut f = Finding::new("card.reinjection", Category::CardSkimming, sev);
    f.id = tmp_id();
    f.title = format!(
        "Storefront code changed {} time(s) after the cleanup",
        times.len()
    );
    f.summary = format!(
        "After the cleanup at {cleaned}, storefront code was edited or a static file changed again {} time(s), first at {}.{cadence} The attacker kept a way back in (a surviving web shell, admin account, stolen key or scheduled task): find it before cleaning again.",
        times.len(),
        times[0]
    );
    // Lists beyond their caps: the first ones kept, the summary says how many in all.
    let mut over = Vec::new();
    if members.len() > MAX_RELATED {
        over.push(format!(
            "{} findings (the first {MAX_RELATED} linked)",
            members.len()
        ));
    }
    if ips.len() > MAX_IPS {
        over.push(format!("{} IPs (the first {MAX_IPS} listed)", ips.len()));
    }
    if paths.len() > MAX_PATHS {
        over.push(format!(
            "{} paths (the first {MAX_PATHS} listed)",
            paths.len()
        ));
    }
    if !over.is_empty() {
        f.summary
            .push_str(&format!(" In all: {}.", over.join(", ")));
    }
    f.first_seen = times.first().copied();
    f.last_seen = times.last().copied();
    f.ips = ips.into_iter().take(MAX_IPS).collect();
    f.paths = paths.into_iter().take(MAX_PATHS).collect();
    f.count = times.len() as u64;
    f.evidence = ev;
    f.playbook = Some(PLAYBOOK.into());
    members.truncate(MAX_RELATED);
    f.related = members;
    Some(f)
}

fn narrative(members: &[&Finding]) -> String {
    members
        .iter()
        .map(|m| {
            format!(
                "{} {} ({})",
                m.first_seen.map_or("?".to_string(), |t| t.to_rfc3339()),
                m.title,
                m.rule
            )
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

/// The members a chain names (narrative, `related`, evidence), as indices into `members`
/// (in time order): all of them up to [`MAX_RELATED`]; beyond, the first of each rule, then
/// the earliest others, so every kind of step stays in the story.
fn shown(members: &[&Finding]) -> Vec<usize> {
    if members.len() <= MAX_RELATED {
        return (0..members.len()).collect();
    }
    let mut rules = BTreeSet::new();
    let mut keep: Vec<usize> = (0..members.len())
        .filter(|i| rules.insert(members[*i].rule.as_str()))
        .take(MAX_RELATED)
        .collect();
    let mut i = 0;
    while keep.len() < MAX_RELATED && i < members.len() {
        if !keep.contains(&i) {
            keep.push(i);
        }
        i += 1;
    }
    keep.sort_unstable();
    keep
}

fn chain_finding(
    rule: &str,
    category: Category,
    members: &[&Finding],
    floor: Severity,
    title: String,
    lead: &str,
    tmp_id: &mut impl FnMut() -> String,
) -> Finding {
    let sev = members
        .iter()
        .map(|m| m.severity)
        .max()
        .unwrap_or(floor)
        .max(floor);
    let named: Vec<&Finding> = shown(members).into_iter().map(|i| members[i]).collect();
    let mut f = Finding::new(rule, category, sev);
    f.id = tmp_id();
    f.title = title;
    f.summary = if named.len() < members.len() {
        format!(
            "{lead} {} (and {} more: {} steps in all; the first of each kind and the earliest are named).",
            narrative(&named),
            members.len() - named.len(),
            members.len()
        )
    } else {
        format!("{lead} {}.", narrative(members))
    };
    f.first_seen = members.iter().filter_map(|m| m.first_seen).min();
    f.last_seen = members
        .iter()
        .filter_map(|m| m.last_seen.or(m.first_seen))
        .max();
    let ips: BTreeSet<&String> = members.iter().flat_map(|m| &m.ips).collect();
    f.ips = ips.into_iter().take(20).cloned().collect();
    let paths: BTreeSet<&String> = members.iter().flat_map(|m| &m.paths).collect();
    f.paths = paths.into_iter().take(MAX_PATHS).cloned().collect();
    f.count = members.len() as u64;
    // The first evidence line of each named member, so the chain cites its steps.
    let mut seen = BTreeSet::new();
    f.evidence = named
        .iter()
        .filter_map(|m| m.evidence.iter().min_by_key(|e| (e.ts, e.line)).cloned())
        .filter(|e| seen.insert((e.file.clone(), e.line)))
        .collect();
    f.related = named.iter().map(|m| m.id.clone()).collect();
    f
}

fn by_time(v: &mut [&Finding]) {
    v.sort_by(|a, b| {
        a.first_seen
            .cmp(&b.first_seen)
            .then(a.rule.cmp(&b.rule))
            .then(a.ips.cmp(&b.ips))
    });
}

fn skimming_chain(findings: &[Finding], tmp_id: &mut impl FnMut() -> String) -> Option<Finding> {
    let skim: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.category == Category::CardSkimming && f.severity >= Severity::High)
        .collect();
    let start = skim.iter().filter_map(|f| f.first_seen).min()?;
    let horizon = start.utc_ms - 30 * 86_400_000;
    let mut members: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            let cat = matches!(
                f.category,
                Category::AdminCompromise | Category::Webshell | Category::CardSkimming
            );
            cat && f.severity >= Severity::High && f.first_seen.is_none_or(|t| t.utc_ms >= horizon)
        })
        .collect();
    // A chain needs another step than the storefront edit itself (whose admin finding is the
    // same request seen by the admin detector).
    if !members
        .iter()
        .any(|m| m.category != Category::CardSkimming && m.rule != "admin.code_planting")
    {
        return None;
    }
    by_time(&mut members);
    let floor = if members
        .iter()
        .any(|m| m.category == Category::AdminCompromise)
    {
        Severity::Critical
    } else {
        Severity::High
    };
    let mut f = chain_finding(
        "chain.skimming",
        Category::CardSkimming,
        &members,
        floor,
        format!(
            "Attack chain: compromise to card skimming ({} steps)",
            members.len()
        ),
        "Read together, these findings tell one story, in time order:",
        tmp_id,
    );
    f.playbook = Some(PLAYBOOK.into());
    Some(f)
}

/// Admin takeover followed by web-shell use, when no card skimming follows: a web shell
/// counts when it starts after the takeover, from one of its IPs within 30 days or from any
/// IP within a day.
fn compromise_chain(findings: &[Finding], tmp_id: &mut impl FnMut() -> String) -> Option<Finding> {
    let admin: Vec<&Finding> = findings
        .iter()
        .filter(|f| TAKEOVER.contains(&f.rule.as_str()) && f.first_seen.is_some())
        .collect();
    let shells: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            f.category == Category::Webshell
                && f.severity >= Severity::Medium
                && f.first_seen.is_some()
        })
        .collect();
    let mut members = compromise_members(&admin, &shells);
    if members.is_empty() {
        return None;
    }
    by_time(&mut members);
    let mut f = chain_finding(
        "chain.compromise",
        Category::Webshell,
        &members,
        Severity::High,
        format!(
            "Attack chain: admin takeover to web shell ({} steps)",
            members.len()
        ),
        "The admin panel was taken over, then a web shell was used (nothing in these logs shows card data touched; check the shop's files and database all the same). In time order:",
        tmp_id,
    );
    f.playbook = members
        .iter()
        .rev()
        .find_map(|m| m.playbook.clone())
        .or_else(|| Some("web-shell".into()));
    Some(f)
}

/// The members of the compromise chain: each takeover (in `admin`'s order) that a web shell
/// follows (it starts at most a minute before it and within [`ANY_IP_LINK_MS`], or within
/// [`SAME_IP_LINK_MS`] from one of its IPs), followed by the shells it is the first to link, in
/// `shells`' order. Both lists hold findings with a `first_seen`.
///
/// Shells are indexed by start time and by IP (each sorted by time), so a takeover's links
/// are two binary searches per window; a shell already linked is skipped for good (a
/// next-unlinked pointer per index), so the cost grows with takeovers and shells (and their
/// IPs), not with their pairs.
fn compromise_members<'a>(admin: &[&'a Finding], shells: &[&'a Finding]) -> Vec<&'a Finding> {
    let start = |f: &Finding| f.first_seen.map_or(0, |t| t.utc_ms);
    let mut by_time: Vec<(i64, usize)> = shells
        .iter()
        .enumerate()
        .map(|(i, w)| (start(w), i))
        .collect();
    by_time.sort_unstable();
    let mut by_ip: HashMap<&str, Vec<(i64, usize)>> = HashMap::new();
    for (t, i) in &by_time {
        let ips: BTreeSet<&str> = shells[*i].ips.iter().map(|s| s.as_str()).collect();
        for ip in ips {
            by_ip.entry(ip).or_default().push((*t, *i));
        }
    }
    let mut time_skip = Unlinked::new(by_time.len());
    let mut ip_skip: HashMap<&str, Unlinked> = by_ip
        .iter()
        .map(|(ip, v)| (*ip, Unlinked::new(v.len())))
        .collect();
    let mut done = vec![false; shells.len()];
    let mut members: Vec<&Finding> = Vec::new();
    let mut linked: HashSet<&str> = HashSet::new();
    for a in admin {
        let at = start(a);
        let mut any = false;
        let mut new: Vec<usize> = Vec::new();
        let mut take = |index: &[(i64, usize)], skip: &mut Unlinked, up_to: i64| {
            let lo = index.partition_point(|(t, _)| *t < at - 60_000);
            let hi = index.partition_point(|(t, _)| *t <= at + up_to);
            any |= lo < hi;
            let mut k = skip.next(lo);
            while k < hi {
                let w = index[k].1;
                if !done[w] {
                    done[w] = true;
                    new.push(w);
                }
                skip.remove(k);
                k = skip.next(k);
            }
        };
        take(&by_time, &mut time_skip, ANY_IP_LINK_MS);
        let ips: BTreeSet<&str> = a.ips.iter().map(|s| s.as_str()).collect();
        for ip in ips {
            if let (Some(index), Some(skip)) = (by_ip.get(ip), ip_skip.get_mut(ip)) {
                take(index, skip, SAME_IP_LINK_MS);
            }
        }
        if !any {
            continue;
        }
        new.sort_unstable();
        for m in std::iter::once(*a).chain(new.into_iter().map(|w| shells[w])) {
            if linked.insert(m.id.as_str()) {
                members.push(m);
            }
        }
    }
    members
}

/// Positions `0..n` of a sorted index from which some are removed: the next one not removed
/// from a position, with path halving, so each is skipped over in near-constant time.
struct Unlinked(Vec<u32>);

impl Unlinked {
    fn new(n: usize) -> Self {
        Unlinked((0..=n as u32).collect())
    }

    /// The first position at or after `i` not removed (`n` when none).
    fn next(&mut self, i: usize) -> usize {
        let p = &mut self.0;
        let mut i = i;
        while p[i] as usize != i {
            p[i] = p[p[i] as usize];
            i = p[i] as usize;
        }
        i
    }

    fn remove(&mut self, i: usize) {
        self.0[i] = i as u32 + 1;
    }
}

fn testing_chain(findings: &[Finding], tmp_id: &mut impl FnMut() -> String) -> Option<Finding> {
    let mut members: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.category == Category::CardTesting)
        .collect();
    let rules: BTreeSet<&str> = members.iter().map(|f| f.rule.as_str()).collect();
    if !rules.contains("cardtest.account_burst") || rules.len() < 2 {
        return None;
    }
    by_time(&mut members);
    Some(chain_finding(
        "chain.card_testing",
        Category::CardTesting,
        &members,
        Severity::High,
        format!("Card-testing campaign ({} steps)", members.len()),
        "Throw-away accounts followed by checkout abuse:",
        tmp_id,
    ))
}

/// Dates the exposure window from the findings (after [`run`]) and counts the completed orders
/// and customer IPs in it. `None` when nothing shows the payment flow tampered with or a
/// compromise that could have tampered with it.
///
/// The hits are read in time order from the card detector's table (spilled past a cap), so
/// the count is exact however many there are, and what is held while counting is bounded:
/// sessions that ended are forgotten as the walk passes them, and the distinct customer IPs
/// are counted in a table that spills too. Problems reading either back go to `ctx`.
pub fn exposure(
    findings: &[Finding],
    orders: Orders,
    cfg: &DetectConfig,
    ctx: &FinishContext,
) -> Option<Exposure> {
    let tamper: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            f.category == Category::CardSkimming
                && f.severity >= Severity::High
                && !f.rule.starts_with("chain.")
        })
        .collect();
    let (basis, start_basis): (Vec<&Finding>, &str) = if !tamper.is_empty() {
        (tamper, "tampering")
    } else {
        let c: Vec<&Finding> = findings
            .iter()
            .filter(|f| {
                f.severity >= Severity::High
                    && (f.category == Category::Webshell || f.rule == "admin.code_planting")
            })
            .collect();
        if c.is_empty() {
            return None;
        }
        (c, "compromise")
    };
    let start = basis.iter().filter_map(|f| f.first_seen).min()?;
    let last_evidence = basis
        .iter()
        .filter_map(|f| f.last_seen.or(f.first_seen))
        .max()
        .unwrap_or(start);
    let (end, end_basis) = match cfg.card.contained_at {
        Some(c) => (c, "contained-at"),
        None => (
            orders
                .last_ts
                .map_or(last_evidence, |l| l.max(last_evidence)),
            "end-of-logs",
        ),
    };
    let end = end.with_offset(start.offset_secs);
    // Sessions: IP + agent; a completion hit more than the gap after the session's last one is
    // a new order.
    let mut sessions = Sessions::new(cfg.card.session_gap_secs);
    let mut forget_at = SESSIONS_HELD;
    // Days at the window's offset, as day numbers: (orders, distinct customer IPs).
    let off_ms = i64::from(start.offset_secs) * 1000;
    let day_of = |utc_ms: i64| utc_ms.saturating_add(off_ms).div_euclid(DAY_MS);
    let mut per_day: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    let mut customers = crate::card::customer_days();
    let mut n = 0u64;
    for h in orders
        .into_time_order(ctx)
        .skip_while(|h| h.utc_ms < start.utc_ms)
        .take_while(|h| h.utc_ms <= end.utc_ms)
    {
        let new_order = sessions.hit((h.ip, h.ua), h.utc_ms);
        if sessions.len() > forget_at {
            sessions.forget_ended(h.utc_ms);
            forget_at = sessions.len().saturating_mul(2).max(SESSIONS_HELD);
        }
        let day = day_of(h.utc_ms);
        let d = per_day.entry(day).or_default();
        if let Some(ip) = h.ip {
            customers.get_or_default((ip, day));
        }
        if new_order {
            n += 1;
            d.0 += 1;
        }
    }
    drop(sessions);
    // (IP, day) pairs in IP order: each IP once overall, and once on each day it ordered.
    let mut distinct_ips = 0u64;
    let mut last_ip = None;
    for ((ip, day), _) in customers.into_sorted(ctx, "Customer IPs (for the exposure count)") {
        if last_ip != Some(ip) {
            distinct_ips += 1;
            last_ip = Some(ip);
        }
        if let Some(d) = per_day.get_mut(&day) {
            d.1 += 1;
        }
    }
    let mut extra = BTreeMap::new();
    extra.insert("start_basis".into(), serde_json::Value::from(start_basis));
    extra.insert("end_basis".into(), serde_json::Value::from(end_basis));
    extra.insert(
        "per_day".into(),
        serde_json::Value::from(
            per_day
                .iter()
                .map(|(&day, &(o, i))| {
                    let date = Timestamp::new(day.saturating_mul(DAY_MS).saturating_sub(off_ms), start.offset_secs)
                        .to_datetime()
                        .format("%Y-%m-%d")
                        .to_string();
                    serde_json::json!({"date": date, "completed_orders": o, "distinct_customer_ips": i})
                })
                .collect::<Vec<_>>(),
        ),
    );
    extra.insert(
        "counting".into(),
        serde_json::Value::from(format!(
            "Completed orders = hits on the platform's order-completion page answered 200 or 302, one per checkout session (client IP + user agent; a new session after {} minutes without a completion hit), between start and end. Customer IPs = distinct client IPs among them.",
            cfg.card.session_gap_secs / 60
        )),
    );
    let mut limits = vec![
        "Access logs carry no session cookie: customers sharing an IP and browser (NAT, corporate proxies) who order within the gap are counted once, and one customer ordering twice within it once.".to_string(),
        "Orders whose completion page was not logged (log gaps, rotation, a payment provider that does not return to the shop) are not counted: compare with the shop's order table for the same window.".to_string(),
        "Customers who typed their card and abandoned checkout were exposed too but are not orders: the distinct customer IPs on checkout pages are the upper bound.".to_string(),
    ];
    if start_basis == "compromise" {
        limits.insert(0, "No evidence of the payment flow itself being changed was found: the window starts at the earliest compromise that could have changed it.".into());
    }
    if end_basis == "end-of-logs" {
        limits.push("No --contained-at given: the window runs to the end of the logs, since nothing in them shows the skimmer removed.".into());
    }
    extra.insert("limits".into(), serde_json::Value::from(limits));
    Some(Exposure {
        start,
        end,
        basis: basis.iter().map(|f| f.id.clone()).collect(),
        completed_orders: n,
        distinct_customer_ips: distinct_ips,
        extra,
    })
}

#[cfg(test)]
mod tests;
