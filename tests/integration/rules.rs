//! One fixture and one snapshot per detection rule (`tests/fixtures/rules/<rule>.log`), plus
//! negative fixtures that must stay quiet.

use crate::support::{root, scan_json};

/// The parts of a finding a reviewer checks, one line each: stable across runs.
fn condensed(report: &serde_json::Value) -> String {
    let mut out = String::new();
    for f in report["findings"].as_array().unwrap() {
        let ev: Vec<String> = f["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let file = e["file"].as_str().unwrap_or("");
                let base = file.rsplit('/').next().unwrap_or(file);
                format!("{base}:{}", e["line"])
            })
            .collect();
        out.push_str(&format!(
            "{} {} [{}] {}\n  ips={} paths={} count={} span={}..{} evidence_lines={} playbook={}\n",
            f["severity"].as_str().unwrap(),
            f["rule"].as_str().unwrap(),
            f["category"].as_str().unwrap(),
            f["title"].as_str().unwrap(),
            f["ips"],
            // Paths relative to the checkout, so snapshots hold in any worktree.
            f["paths"]
                .to_string()
                .replace(&format!("{}/", root().display()), ""),
            f["count"],
            f["first_seen"].as_str().unwrap_or("-"),
            f["last_seen"].as_str().unwrap_or("-"),
            ev.join(","),
            f["playbook"].as_str().unwrap_or("-"),
        ));
        // Users only where a finding names some (admin and host rules), so the other
        // snapshots keep their form.
        if f["users"].as_array().is_some_and(|u| !u.is_empty()) {
            out.push_str(&format!("  users={}\n", f["users"]));
        }
    }
    out
}

/// `tests/fixtures/rules/<rule>.log`, or the directory `tests/fixtures/rules/<rule>/` for rules
/// that need several sources (access log plus WAF, login history, …).
fn fixture(rule: &str) -> String {
    let base = root().join("tests/fixtures/rules");
    let dir = base.join(rule);
    if dir.is_dir() {
        return dir.display().to_string();
    }
    base.join(format!("{rule}.log")).display().to_string()
}

/// Extra arguments a fixture needs (`tests/fixtures/rules/<rule>.args`, one per line).
fn fixture_args(rule: &str) -> Vec<String> {
    let p = root()
        .join("tests/fixtures/rules")
        .join(format!("{rule}.args"));
    std::fs::read_to_string(p)
        .map(|s| {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn check(rule: &str) {
    let extra = fixture_args(rule);
    let path = fixture(rule);
    let mut args: Vec<&str> = vec!["--fail-on", "never", "--tz", "Asia/Tokyo"];
    args.extend(extra.iter().map(String::as_str));
    args.push(&path);
    let (_, report) = scan_json(&args);
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&rule), "{rule} did not fire: {rules:?}");
    conforms(&report);
    insta::assert_snapshot!(rule, condensed(&report));
}

/// What `report-v1.md` promises of every finding: a bundled playbook id or none, a time span
/// (`first_seen` <= `last_seen`), and evidence lines each cited once, with their time.
fn conforms(report: &serde_json::Value) {
    let playbooks: Vec<&str> = ecir_playbook::bundled()
        .iter()
        .map(|(file, _)| file.trim_end_matches(".toml"))
        .collect();
    let time = |v: &serde_json::Value| {
        ecir_model::Timestamp::parse_rfc3339(v.as_str().unwrap_or("")).map(|t| t.utc_ms)
    };
    for f in report["findings"].as_array().unwrap() {
        let id = format!("{} {}", f["id"], f["rule"]);
        if let Some(p) = f.get("playbook") {
            assert!(
                playbooks.contains(&p.as_str().unwrap()),
                "{id}: playbook {p}"
            );
        }
        let (first, last) = (time(&f["first_seen"]), time(&f["last_seen"]));
        assert!(first.is_some() && last.is_some(), "{id}: no time span");
        assert!(first <= last, "{id}: span backwards");
        let mut cited = std::collections::BTreeSet::new();
        for e in f["evidence"].as_array().unwrap() {
            let at = format!("{}:{}", e["file"], e["line"]);
            assert!(time(&e["ts"]).is_some(), "{id}: {at} has no time");
            assert!(cited.insert(at.clone()), "{id}: {at} cited twice");
        }
    }
}

macro_rules! rule_tests {
    ($($name:ident => $rule:expr),* $(,)?) => {
        $( #[test] fn $name() { check($rule); } )*
    };
}

rule_tests! {
    web_sqli => "web.sqli",
    web_xss => "web.xss",
    web_traversal => "web.traversal",
    web_cmdi => "web.cmdi",
    web_php_injection => "web.php_injection",
    web_jndi => "web.jndi",
    web_sensitive_file => "web.sensitive_file",
    web_installer => "web.installer",
    recon_scanner_ua => "recon.scanner_ua",
    recon_404_burst => "recon.404_burst",
    webshell_upload_dir_script => "webshell.upload_dir_script",
    webshell_rare_script => "webshell.rare_script",
    webshell_command_param => "webshell.command_param",
    waf_unblocked_attack => "waf.unblocked_attack",
    waf_blocked_then_through => "waf.blocked_then_through",
    waf_detection_only => "waf.detection_only",
    waf_counted_not_blocked => "waf.counted_not_blocked",
    waf_monitoring_lapse => "waf.monitoring_lapse",
    waf_stored_xss_bait => "waf.stored_xss_bait",
    admin_profile => "admin.profile",
    admin_brute_force => "admin.brute_force",
    admin_password_spraying => "admin.password_spraying",
    admin_credential_stuffing => "admin.credential_stuffing",
    admin_success_after_failures => "admin.success_after_failures",
    admin_outside_allowlist => "admin.outside_allowlist",
    admin_first_seen_ip => "admin.first_seen_ip",
    admin_session_without_login => "admin.session_without_login",
    admin_path_discovery => "admin.path_discovery",
    admin_code_planting => "admin.code_planting",
    admin_account_change => "admin.account_change",
    admin_security_change => "admin.security_change",
    admin_payment_change => "admin.payment_change",
    admin_off_hours => "admin.off_hours",
    admin_script_agent => "admin.script_agent",
    host_ssh_brute_force => "host.ssh_brute_force",
    host_ssh_success_after_failures => "host.ssh_success_after_failures",
    host_ssh_first_seen_ip => "host.ssh_first_seen_ip",
    host_account_change => "host.account_change",
    log_damaged_archive => "log.damaged_archive",
    log_missing_days => "log.missing_days",
    log_silence => "log.silence",
    log_source_silent => "log.source_silent",
    card_asset_drift => "card.asset_drift",
    card_first_seen_script => "card.first_seen_script",
    card_exfil_drop => "card.exfil_drop",
    card_fake_payment_page => "card.fake_payment_page",
    card_drop_harvest => "card.drop_harvest",
    card_image_beacon => "card.image_beacon",
    card_foreign_referer_completion => "card.foreign_referer_completion",
    card_code_planting => "card.code_planting",
    card_reinjection => "card.reinjection",
    cardtest_velocity => "cardtest.velocity",
    cardtest_distributed => "cardtest.distributed",
    cardtest_account_burst => "cardtest.account_burst",
    chain_skimming => "chain.skimming",
    chain_card_testing => "chain.card_testing",
    chain_compromise => "chain.compromise",
    webshell_after_upload => "webshell.after_upload",
}

#[test]
fn ordinary_day_stays_quiet() {
    let (code, report) = scan_json(&[&fixture("negative.ordinary-day")]);
    // Info findings (what was inferred about the shop) are context, not alarms.
    let loud = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .count();
    assert_eq!(loud, 0, "unexpected findings: {}", condensed(&report));
    assert_eq!(code, 0);
}

/// A negative fixture: scanned as a user would (no flags), nothing above low may come out.
fn stays_quiet_above_low(name: &str) {
    let (code, report) = scan_json(&["--tz", "Asia/Tokyo", &fixture(name)]);
    let loud: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !matches!(f["severity"].as_str(), Some("info" | "low")))
        .collect();
    assert!(
        loud.is_empty(),
        "unexpected findings: {}",
        condensed(&report)
    );
    assert_eq!(code, 0);
    // The fixture did exercise the WAF: its records were parsed and summarised.
    assert!(report["waf_summary"]["events"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn blocked_attacks_that_never_succeeded_are_not_high() {
    stays_quiet_above_low("negative.waf-blocked");
}

#[test]
fn a_waf_silent_while_the_shop_was_silent_is_not_a_lapse() {
    stays_quiet_above_low("negative.waf-quiet-night");
}

/// Scans a negative fixture (with its `.args`) and returns the findings above info.
fn loud_findings(name: &str) -> (Vec<(String, String)>, String) {
    let extra = fixture_args(name);
    let path = fixture(name);
    let mut args: Vec<&str> = vec!["--fail-on", "never", "--tz", "Asia/Tokyo"];
    args.extend(extra.iter().map(String::as_str));
    args.push(&path);
    let (_, report) = scan_json(&args);
    let loud = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (loud, condensed(&report))
}

#[test]
fn staff_mistype_in_office_hours_stays_quiet() {
    // One failed login, then a success from the office in business hours, seen in the access
    // log and the login history: nothing above info.
    let (loud, text) = loud_findings("negative.staff-mistype");
    assert!(loud.is_empty(), "unexpected findings: {text}");
    assert!(
        text.contains("admin.profile"),
        "the admin was analysed: {text}"
    );
}

#[test]
fn thousand_failures_without_success_is_not_critical() {
    let (loud, text) = loud_findings("negative.thousand-failures");
    assert!(
        loud.iter().all(|(_, sev)| sev != "critical"),
        "no success, so no compromise: {text}"
    );
    assert!(
        loud.contains(&("admin.brute_force".to_string(), "high".to_string())),
        "the attack itself is reported: {text}"
    );
}

#[test]
fn shell_probes_answered_by_a_catch_all_page_are_summed_not_high() {
    // A shop that answers every path with its top page (200, 8412 bytes), probed for 46
    // web-shell names (some POSTed, so medium): probes, not 46 web shells. One finding per
    // rule, none high.
    let (loud, text) = loud_findings("negative.catch-all-probe");
    let mut got: Vec<_> = loud
        .into_iter()
        .filter(|(rule, _)| rule != "admin.profile")
        .collect();
    got.sort();
    let want = [
        ("webshell.command_param", "medium"),
        ("webshell.upload_dir_script", "medium"),
    ]
    .map(|(r, s)| (r.to_string(), s.to_string()));
    assert_eq!(got, want, "{text}");
}

#[test]
fn every_rule_has_a_fixture() {
    // Keeps the "one fixture per rule" promise honest as rules are added.
    let out = crate::support::run(&["rules"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut n = 0;
    for rule in text.lines().filter_map(|l| l.split_whitespace().next()) {
        if rule.contains('.') {
            n += 1;
            let f = fixture(rule);
            assert!(
                std::path::Path::new(&f).exists(),
                "rule {rule} has no fixture at {f}"
            );
        }
    }
    assert!(n >= 17, "`ecir rules` listed {n} rules");
    assert!(text.contains("log.missing_days") && text.contains("log-integrity"));
}

/// Runs a fixture with its `.args` and returns the report.
fn scan_fixture(name: &str) -> serde_json::Value {
    let extra = fixture_args(name);
    let path = fixture(name);
    let mut args: Vec<&str> = vec!["--fail-on", "never", "--tz", "Asia/Tokyo"];
    args.extend(extra.iter().map(String::as_str));
    args.push(&path);
    scan_json(&args).1
}

#[test]
fn stored_xss_bait_links_admin_anomalies_on_a_renamed_admin_path() {
    // The shop's admin lives at /kanri_7f3 (no generic admin route): an XSS the WAF only
    // logged on /contact, then 3 h later a stolen admin session from another IP. The bait is
    // reported because the admin detector's findings are linked to it.
    let report = scan_fixture("waf.stored_xss_bait.admin-anomaly");
    let findings = report["findings"].as_array().unwrap();
    let bait: Vec<_> = findings
        .iter()
        .filter(|f| f["rule"] == "waf.stored_xss_bait")
        .collect();
    assert_eq!(bait.len(), 1, "{}", condensed(&report));
    let related: Vec<&str> = bait[0]["related"]
        .as_array()
        .expect("related ids")
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let linked: Vec<&str> = related
        .iter()
        .map(|id| {
            let f = findings.iter().find(|f| f["id"] == *id).expect("id exists");
            f["rule"].as_str().unwrap()
        })
        .collect();
    assert!(
        linked.contains(&"admin.session_without_login"),
        "{linked:?}"
    );
    assert!(linked.iter().all(|r| r.starts_with("admin.")), "{linked:?}");
    // The bait cites the WAF record and the admin access-log lines.
    let files: Vec<&str> = bait[0]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["file"].as_str().unwrap())
        .collect();
    assert!(files.iter().any(|f| f.ends_with("detect.log")), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with("access_log")), "{files:?}");
    // No internal candidate reaches the report.
    assert!(findings
        .iter()
        .all(|f| f["rule"] != "waf.stored_xss_bait.candidate"));
    let mut text = condensed(&report);
    text.push_str(&format!("related={related:?} -> {linked:?}\n"));
    insta::assert_snapshot!("waf.stored_xss_bait.admin-anomaly", text);
}

#[test]
fn stored_xss_bait_ignores_admin_anomalies_days_later() {
    // Same shop, but the stolen session comes 5 days after the XSS: not linked, no bait.
    let report = scan_fixture("waf.stored_xss_bait.admin-later");
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["rule"] == "admin.session_without_login"),
        "{}",
        condensed(&report)
    );
    assert!(
        findings.iter().all(|f| !f["rule"]
            .as_str()
            .unwrap()
            .starts_with("waf.stored_xss_bait")
            && f["related"].as_array().is_none_or(|r| r.is_empty())),
        "{}",
        condensed(&report)
    );
}
