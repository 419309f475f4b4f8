//! Tests of the post-detection rules and the exposure window.

use std::sync::Arc;

use ecir_model::Evidence;

use super::*;
use crate::card::OrderHit;

const T0: i64 = 1_700_000_000_000;
const H: i64 = 3_600_000;

fn ts(ms: i64) -> Timestamp {
    Timestamp::new(ms, 9 * 3600)
}

fn ev(ms: i64, text: &str) -> Evidence {
    Evidence {
        file: Arc::from("access.log"),
        line: (ms / 1000) as u64,
        ts: Some(ts(ms)),
        text: text.into(),
        weight: 90,
    }
}

fn admin_planting(ip: &str, sev: Severity, at: &[i64], path: &str) -> Finding {
    let mut f = Finding::new("admin.code_planting", Category::AdminCompromise, sev);
    f.ips = vec![ip.into()];
    f.paths = vec![path.into()];
    f.first_seen = at.first().map(|m| ts(*m));
    f.last_seen = at.last().map(|m| ts(*m));
    f.evidence = at
        .iter()
        .map(|m| ev(*m, &format!("{ip} \"POST {path} HTTP/1.1\" 302")))
        .collect();
    f
}

fn of<'a>(f: &'a [Finding], rule: &str) -> Vec<&'a Finding> {
    f.iter().filter(|x| x.rule == rule).collect()
}

#[test]
fn storefront_edits_become_card_findings_with_the_right_severity() {
    let findings = vec![
        admin_planting(
            "198.51.100.7",
            Severity::Critical,
            &[T0],
            "/admin/content/js",
        ),
        admin_planting(
            "203.0.113.10",
            Severity::Medium,
            &[T0],
            "/admin/content/block/7/edit",
        ),
        admin_planting("198.51.100.8", Severity::High, &[T0], "/admin/content/css"),
        admin_planting(
            "198.51.100.9",
            Severity::High,
            &[T0],
            "/admin/store/plugin/install",
        ),
        {
            let mut o = Finding::new(
                "admin.outside_allowlist",
                Category::AdminCompromise,
                Severity::High,
            );
            o.ips = vec!["198.51.100.8".into()];
            o
        },
    ];
    let out = run(findings, &DetectConfig::default());
    let cp = of(&out, "card.code_planting");
    assert_eq!(cp.len(), 3, "a plugin install is not a storefront edit");
    let sev = |ip: &str| cp.iter().find(|f| f.ips[0] == ip).unwrap().severity;
    assert_eq!(sev("198.51.100.7"), Severity::Critical);
    assert_eq!(
        sev("198.51.100.8"),
        Severity::Critical,
        "outside the allow-list"
    );
    assert_eq!(sev("203.0.113.10"), Severity::Medium, "known staff IP");
    assert!(cp
        .iter()
        .all(|f| f.playbook.as_deref() == Some("card-skimming")));
    // Every card finding links the admin finding it came from, by id.
    for f in &cp {
        let admin = out.iter().find(|a| a.id == f.related[0]).unwrap();
        assert_eq!(admin.rule, "admin.code_planting");
        assert_eq!(admin.ips, f.ips);
    }
    // Unique temporary ids.
    let ids: BTreeSet<&str> = out.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids.len(), out.len());
}

#[test]
fn reinjection_after_cleanup_with_cadence() {
    let at = [T0, T0 + 50 * H, T0 + 100 * H];
    let findings = vec![admin_planting(
        "198.51.100.7",
        Severity::High,
        &at,
        "/admin/content/js",
    )];
    let mut cfg = DetectConfig::default();
    cfg.card.cleaned_at = Some(ts(T0 + H));
    let out = run(findings.clone(), &cfg);
    let r = of(&out, "card.reinjection");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].severity, Severity::Critical);
    assert_eq!(r[0].count, 2);
    assert!(r[0].summary.contains("50.0 hours"), "{}", r[0].summary);
    // Cleaned after the last edit: nothing came back.
    cfg.card.cleaned_at = Some(ts(T0 + 101 * H));
    assert!(of(&run(findings.clone(), &cfg), "card.reinjection").is_empty());
    // Without --cleaned-at the rule does not run.
    assert!(of(&run(findings, &DetectConfig::default()), "card.reinjection").is_empty());
}

#[test]
fn drift_is_linked_to_admin_activity_shortly_before() {
    let mut d = Finding::new("card.asset_drift", Category::CardSkimming, Severity::Medium);
    d.first_seen = Some(ts(T0 + H));
    let before = admin_planting(
        "198.51.100.7",
        Severity::Critical,
        &[T0],
        "/admin/content/js",
    );
    let long_before = admin_planting(
        "198.51.100.8",
        Severity::High,
        &[T0 - 48 * H],
        "/admin/content/css",
    );
    let out = run(vec![d, before, long_before], &DetectConfig::default());
    let d = of(&out, "card.asset_drift")[0];
    assert_eq!(d.severity, Severity::High);
    assert_eq!(d.related.len(), 1);
    let linked = out.iter().find(|f| f.id == d.related[0]).unwrap();
    assert_eq!(linked.ips, vec!["198.51.100.7"]);
}

#[test]
fn chain_links_compromise_to_skimming() {
    let mut shell = Finding::new(
        "webshell.upload_dir_script",
        Category::Webshell,
        Severity::High,
    );
    shell.first_seen = Some(ts(T0 - H));
    shell.evidence = vec![ev(T0 - H, "shell")];
    let mut drop = Finding::new("card.exfil_drop", Category::CardSkimming, Severity::High);
    drop.first_seen = Some(ts(T0 + 5 * H));
    drop.last_seen = Some(ts(T0 + 9 * H));
    let out = run(
        vec![
            admin_planting(
                "198.51.100.7",
                Severity::Critical,
                &[T0],
                "/admin/content/js",
            ),
            shell,
            drop,
        ],
        &DetectConfig::default(),
    );
    let c = of(&out, "chain.skimming");
    assert_eq!(c.len(), 1);
    let c = c[0];
    assert_eq!(c.severity, Severity::Critical);
    assert_eq!(
        c.related.len(),
        4,
        "admin, shell, card edit, drop: {:?}",
        c.related
    );
    assert_eq!(c.first_seen, Some(ts(T0 - H)));
    assert_eq!(c.last_seen, Some(ts(T0 + 9 * H)));
    assert!(c.summary.find("webshell").unwrap() < c.summary.find("card.exfil_drop").unwrap());
    // Skimming signs without any compromise are not a chain.
    let mut lone = Finding::new("card.exfil_drop", Category::CardSkimming, Severity::High);
    lone.first_seen = Some(ts(T0));
    assert!(of(&run(vec![lone], &DetectConfig::default()), "chain.skimming").is_empty());
}

#[test]
fn card_testing_chain_needs_an_account_burst() {
    let mut a = Finding::new(
        "cardtest.account_burst",
        Category::CardTesting,
        Severity::Medium,
    );
    a.first_seen = Some(ts(T0));
    let mut v = Finding::new("cardtest.velocity", Category::CardTesting, Severity::High);
    v.first_seen = Some(ts(T0 + H));
    let out = run(vec![a, v.clone()], &DetectConfig::default());
    let c = of(&out, "chain.card_testing");
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].severity, Severity::High);
    assert!(of(
        &run(vec![v], &DetectConfig::default()),
        "chain.card_testing"
    )
    .is_empty());
}

fn hit(ms: i64, ip: &str, ua: u64) -> OrderHit {
    OrderHit {
        utc_ms: ms,
        ip: ip.parse().ok(),
        ua,
    }
}

#[test]
fn exposure_counts_sessions_in_the_window() {
    let findings = run(
        vec![admin_planting(
            "198.51.100.7",
            Severity::Critical,
            &[T0],
            "/admin/content/js",
        )],
        &DetectConfig::default(),
    );
    let mut hits = vec![
        hit(T0 - H, "100.64.0.1", 1),          // before the window
        hit(T0 + H, "100.64.0.2", 1),          // an order
        hit(T0 + H + 60_000, "100.64.0.2", 1), // a reload: same order
        hit(T0 + 3 * H, "100.64.0.2", 1),      // later: a second order
        hit(T0 + 3 * H, "100.64.0.3", 1),
        hit(T0 + 3 * H, "100.64.0.3", 2), // another browser behind the same IP
        hit(T0 + 30 * H, "100.64.0.4", 1), // next day
    ];
    hits.reverse(); // any order
    let orders = || Orders::from_hits(hits.clone(), 9 * 3600, Some(ts(T0 + 40 * H)));
    let cfg = DetectConfig::default();
    let ctx = FinishContext::new(0);
    let e = exposure(&findings, orders(), &cfg, &ctx).unwrap();
    assert_eq!(e.start, ts(T0));
    assert_eq!(e.end, ts(T0 + 40 * H));
    assert_eq!(e.completed_orders, 5);
    assert_eq!(e.distinct_customer_ips, 3);
    assert_eq!(e.extra["start_basis"], "tampering");
    assert_eq!(e.extra["end_basis"], "end-of-logs");
    let days = e.extra["per_day"].as_array().unwrap();
    assert_eq!(days.len(), 2);
    assert_eq!(
        days[0]["completed_orders"].as_u64().unwrap()
            + days[1]["completed_orders"].as_u64().unwrap(),
        5
    );
    // The basis is the card finding, not the admin one.
    let basis: Vec<&str> = out_rules(&findings, &e.basis);
    assert_eq!(basis, vec!["card.code_planting"]);
    // --contained-at ends the window.
    let mut cfg = DetectConfig::default();
    cfg.card.contained_at = Some(ts(T0 + 2 * H));
    let e = exposure(&findings, orders(), &cfg, &ctx).unwrap();
    assert_eq!(e.completed_orders, 1);
    assert_eq!(e.extra["end_basis"], "contained-at");
}

fn out_rules<'a>(f: &'a [Finding], ids: &[String]) -> Vec<&'a str> {
    ids.iter()
        .map(|id| f.iter().find(|x| &x.id == id).unwrap().rule.as_str())
        .collect()
}

#[test]
fn exposure_falls_back_to_the_compromise_or_is_absent() {
    let mut shell = Finding::new(
        "webshell.upload_dir_script",
        Category::Webshell,
        Severity::High,
    );
    shell.first_seen = Some(ts(T0));
    let f = run(vec![shell], &DetectConfig::default());
    let e = exposure(
        &f,
        Orders::default(),
        &DetectConfig::default(),
        &FinishContext::new(0),
    )
    .unwrap();
    assert_eq!(e.extra["start_basis"], "compromise");
    assert!(e.extra["limits"][0]
        .as_str()
        .unwrap()
        .contains("No evidence"));
    let mut sqli = Finding::new("web.sqli", Category::WebAttack, Severity::High);
    sqli.first_seen = Some(ts(T0));
    let f = run(vec![sqli], &DetectConfig::default());
    assert!(exposure(
        &f,
        Orders::default(),
        &DetectConfig::default(),
        &FinishContext::new(0),
    )
    .is_none());
}

#[test]
fn web_shell_used_soon_after_an_admin_upload() {
    let upload = admin_planting(
        "198.51.100.7",
        Severity::Critical,
        &[T0],
        "/admin/content/file_manager",
    );
    let mut shell = Finding::new(
        "webshell.upload_dir_script",
        Category::Webshell,
        Severity::High,
    );
    shell.first_seen = Some(ts(T0 + 10 * 60_000));
    shell.ips = vec!["203.0.113.99".into()];
    shell.paths = vec!["/html/user_data/x.php".into()];
    shell.evidence = vec![ev(
        T0 + 10 * 60_000,
        "203.0.113.99 \"POST /html/user_data/x.php\"",
    )];
    let out = run(
        vec![upload.clone(), shell.clone()],
        &DetectConfig::default(),
    );
    let w = of(&out, "webshell.after_upload");
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].severity, Severity::Critical, "used from another IP");
    assert_eq!(w[0].related.len(), 2);
    assert!(w[0].title.contains("10 min"));
    // Two hours later is not "after the upload"; a template edit is not an upload.
    let mut late = shell.clone();
    late.first_seen = Some(ts(T0 + 2 * H));
    assert!(of(
        &run(vec![upload, late], &DetectConfig::default()),
        "webshell.after_upload"
    )
    .is_empty());
    let edit = admin_planting(
        "198.51.100.7",
        Severity::Critical,
        &[T0],
        "/admin/content/js",
    );
    assert!(of(
        &run(vec![edit, shell], &DetectConfig::default()),
        "webshell.after_upload"
    )
    .is_empty());
}

#[test]
fn one_storefront_edit_alone_is_not_a_chain() {
    let out = run(
        vec![admin_planting(
            "198.51.100.7",
            Severity::High,
            &[T0],
            "/admin/content/page/1/edit",
        )],
        &DetectConfig::default(),
    );
    assert_eq!(of(&out, "card.code_planting").len(), 1);
    assert!(of(&out, "chain.skimming").is_empty());
}

fn finding(rule: &str, cat: Category, sev: Severity, ip: &str, at: i64) -> Finding {
    let mut f = Finding::new(rule, cat, sev);
    f.ips = vec![ip.into()];
    f.first_seen = Some(ts(at));
    f.last_seen = Some(ts(at + 60_000));
    f.evidence = vec![ev(at, &format!("{ip} {rule}"))];
    f
}

#[test]
fn compromise_chain_links_admin_takeover_to_web_shell() {
    let cfg = DetectConfig::default();
    let stolen = || {
        finding(
            "admin.session_without_login",
            Category::AdminCompromise,
            Severity::High,
            "203.0.113.66",
            T0,
        )
    };
    let shell = |ip: &str, at: i64, sev: Severity| {
        finding("webshell.command_param", Category::Webshell, sev, ip, at)
    };
    // Same IP, three days later; and another IP an hour later.
    let out = run(
        vec![
            stolen(),
            shell("203.0.113.66", T0 + 72 * H, Severity::Critical),
            shell("198.51.100.5", T0 + H, Severity::High),
        ],
        &cfg,
    );
    let c = of(&out, "chain.compromise");
    assert_eq!(c.len(), 1, "{out:#?}");
    assert_eq!(c[0].related.len(), 3);
    assert_eq!(
        c[0].severity,
        Severity::Critical,
        "at least the worst member"
    );
    assert!(c[0].summary.contains("admin.session_without_login"));
    assert_eq!(c[0].ips, vec!["198.51.100.5", "203.0.113.66"]);
    assert!(
        c[0].summary.find("admin.session_without_login").unwrap()
            < c[0].summary.find("webshell.command_param").unwrap(),
        "{}",
        c[0].summary
    );
    // Unrelated: another IP, days apart; or a shell before the takeover.
    for out in [
        run(
            vec![stolen(), shell("198.51.100.5", T0 + 72 * H, Severity::High)],
            &cfg,
        ),
        run(
            vec![stolen(), shell("203.0.113.66", T0 - 5 * H, Severity::High)],
            &cfg,
        ),
        run(vec![shell("203.0.113.66", T0, Severity::High)], &cfg),
    ] {
        assert!(of(&out, "chain.compromise").is_empty(), "{out:#?}");
    }
    // When card skimming follows, the skimming chain tells the story instead.
    let mut drop = Finding::new("card.exfil_drop", Category::CardSkimming, Severity::High);
    drop.first_seen = Some(ts(T0 + 2 * H));
    let out = run(
        vec![
            stolen(),
            shell("203.0.113.66", T0 + H, Severity::High),
            drop,
        ],
        &cfg,
    );
    assert!(of(&out, "chain.compromise").is_empty());
    assert_eq!(of(&out, "chain.skimming").len(), 1);
}

/// A drift finding at `at` and admin findings with one evidence line each at the given times.
fn drift_with_admin(at: i64, admin: &[(i64, Severity)]) -> Vec<Finding> {
    let mut d = Finding::new("card.asset_drift", Category::CardSkimming, Severity::Medium);
    d.first_seen = Some(ts(at));
    let mut v = vec![d];
    for (i, (t, sev)) in admin.iter().enumerate() {
        let mut a = finding(
            "admin.brute_force",
            Category::AdminCompromise,
            *sev,
            &format!("198.51.100.{i}"),
            *t,
        );
        a.id = format!("a{i}");
        v.push(a);
    }
    v
}

#[test]
fn drift_window_bounds_are_inclusive() {
    let at = T0 + 10 * H;
    let m = Severity::Medium;
    let out = run(
        drift_with_admin(
            at,
            &[
                (at - 6 * H - 1, m),  // just before the six hours: out
                (at - 6 * H, m),      // at the bound: in
                (at, m),              // same instant: in
                (at + 60_000, m),     // a minute after: in
                (at + 60_000 + 1, m), // just past it: out
                (at - 6 * H, m),      // a tie with a1: in, in finding order
            ],
        ),
        &DetectConfig::default(),
    );
    let d = of(&out, "card.asset_drift")[0];
    assert_eq!(d.related, vec!["a1", "a2", "a3", "a5"]);
    assert_eq!(d.severity, Severity::Medium, "no high admin finding");
    assert!(!d.summary.contains("more"), "{}", d.summary);
}

#[test]
fn drift_links_the_worst_admin_findings_and_says_how_many() {
    let at = T0 + 10 * H;
    // 30 in the window: every fifth critical, the rest medium.
    let admin: Vec<(i64, Severity)> = (0..30)
        .map(|i| {
            let sev = if i % 5 == 4 {
                Severity::Critical
            } else {
                Severity::Medium
            };
            (at - i * 60_000, sev)
        })
        .collect();
    let out = run(drift_with_admin(at, &admin), &DetectConfig::default());
    let d = of(&out, "card.asset_drift")[0];
    assert_eq!(d.related.len(), MAX_RELATED);
    for crit in ["a4", "a9", "a14", "a19", "a24", "a29"] {
        assert!(
            d.related.iter().any(|r| r == crit),
            "{crit} in {:?}",
            d.related
        );
    }
    // In finding order: the criticals, then the earliest mediums.
    let want: Vec<String> = (0..30)
        .filter(|i| i % 5 == 4 || *i < 17)
        .map(|i| format!("a{i}"))
        .collect();
    assert_eq!(d.related, want);
    assert_eq!(d.severity, Severity::High);
    assert!(
        d.summary
            .contains("; and 25 more (30 admin findings in all, the worst 20 linked)."),
        "{}",
        d.summary
    );
    // The five named are the criticals but one, by finding order.
    assert!(d.summary.contains("198.51.100.4;") && !d.summary.contains("198.51.100.0;"));
}

/// The links of the old pairwise `link_drift`, for comparison.
fn drift_windows_naive(
    times: &[(i64, usize)],
    admin: &[(usize, Severity)],
    drifts: &[(i64, usize)],
) -> Vec<(Vec<usize>, usize, Severity)> {
    drifts
        .iter()
        .map(|(at, _)| {
            let mut inside: Vec<usize> = (0..admin.len())
                .filter(|k| {
                    times
                        .iter()
                        .any(|(t, j)| j == k && *t <= at + 60_000 && *t >= at - 6 * H)
                })
                .collect();
            let n = inside.len();
            let worst = inside
                .iter()
                .map(|k| admin[*k].1)
                .max()
                .unwrap_or(Severity::Info);
            inside.sort_by_key(|k| (std::cmp::Reverse(admin[*k].1), *k));
            inside.truncate(MAX_RELATED);
            (inside, n, worst)
        })
        .collect()
}

/// A small deterministic pseudo-random sequence.
fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

#[test]
fn drift_sliding_window_matches_the_pairwise_rule() {
    let mut seed = 7;
    for round in 0..40 {
        let n_admin = 1 + round % 30;
        let sevs = [Severity::Medium, Severity::High, Severity::Critical];
        let admin: Vec<(usize, Severity)> = (0..n_admin)
            .map(|i| (i * 2, sevs[(lcg(&mut seed) % 3) as usize]))
            .collect();
        // Times on a coarse grid so bounds and ties are hit.
        let grid = 60_000 * (1 + (round as i64 % 3) * 59);
        let mut times: Vec<(i64, usize)> = (0..n_admin * 3)
            .map(|_| {
                (
                    T0 + (lcg(&mut seed) % 40) as i64 * grid,
                    (lcg(&mut seed) as usize) % n_admin,
                )
            })
            .collect();
        times.sort_unstable();
        let mut drifts: Vec<(i64, usize)> = (0..20)
            .map(|i| (T0 + (lcg(&mut seed) % 40) as i64 * grid, i))
            .collect();
        drifts.sort_unstable();
        assert_eq!(
            drift_windows(&times, &admin, &drifts),
            drift_windows_naive(&times, &admin, &drifts),
            "round {round}"
        );
    }
}

#[test]
fn upload_window_bounds_and_ties() {
    let first = T0 + H;
    let mk = |id: &str| {
        let mut f = admin_planting("198.51.100.7", Severity::High, &[T0], "/admin/file_manager");
        f.id = id.into();
        f
    };
    let (a, b, c) = (mk("a"), mk("b"), mk("c"));
    let t = |ms: i64| ts(ms);
    let mut ups = vec![(&a, t(first - H)), (&b, t(first - H)), (&c, t(first + 1))];
    ups.sort_by_key(|(_, t)| *t);
    // Exactly an hour before: in; of two at that time, the later one in finding order.
    let (up, at) = upload_before(&ups, t(first)).unwrap();
    assert_eq!((up.id.as_str(), at.utc_ms), ("b", first - H));
    // An upload after the first request is not taken, until the request time reaches it;
    // a millisecond more than an hour before is out.
    assert!(upload_before(&ups, t(first + 1)).is_some_and(|(u, _)| u.id == "c"));
    let ups2 = vec![(&a, t(first - H - 1)), (&c, t(first + 1))];
    assert!(upload_before(&ups2, t(first)).is_none());
    // Same instant as the first request: in.
    let ups3 = vec![(&a, t(first))];
    assert_eq!(upload_before(&ups3, t(first)).unwrap().0.id, "a");
}

/// The members of the old pairwise `compromise_chain`, for comparison.
fn compromise_members_naive<'a>(admin: &[&'a Finding], shells: &[&'a Finding]) -> Vec<&'a Finding> {
    let mut members: Vec<&Finding> = Vec::new();
    let mut linked: BTreeSet<&str> = BTreeSet::new();
    for a in admin {
        let at = a.first_seen.map_or(0, |t| t.utc_ms);
        for w in shells {
            let dt = w.first_seen.map_or(0, |t| t.utc_ms) - at;
            let same_ip = w.ips.iter().any(|i| a.ips.contains(i));
            if dt >= -60_000 && (dt <= ANY_IP_LINK_MS || (same_ip && dt <= SAME_IP_LINK_MS)) {
                for m in [*a, *w] {
                    if linked.insert(m.id.as_str()) {
                        members.push(m);
                    }
                }
            }
        }
    }
    members
}

#[test]
fn compromise_index_matches_the_pairwise_rule() {
    let mut seed = 11;
    let day = 86_400_000;
    for round in 0..60 {
        let ips = ["203.0.113.1", "203.0.113.2", "203.0.113.3", "198.51.100.9"];
        let steps = [
            -60_001,
            -60_000,
            0,
            day,
            day + 1,
            30 * day,
            30 * day + 1,
            5 * day,
        ];
        let mut all = Vec::new();
        let n = 1 + round % 12;
        for i in 0..n {
            let mut a = finding(
                "admin.success_after_failures",
                Category::AdminCompromise,
                Severity::High,
                ips[(lcg(&mut seed) % 4) as usize],
                T0 + (lcg(&mut seed) % 4) as i64 * 10 * day,
            );
            a.id = format!("a{i}");
            if lcg(&mut seed).is_multiple_of(3) {
                a.ips.push(ips[(lcg(&mut seed) % 4) as usize].into());
            }
            all.push(a);
        }
        for i in 0..n + 3 {
            let base = T0 + (lcg(&mut seed) % 4) as i64 * 10 * day;
            let mut w = finding(
                "webshell.command_param",
                Category::Webshell,
                Severity::High,
                ips[(lcg(&mut seed) % 4) as usize],
                base + steps[(lcg(&mut seed) % 8) as usize],
            );
            w.id = format!("w{i}");
            if lcg(&mut seed).is_multiple_of(4) {
                w.ips.push(ips[(lcg(&mut seed) % 4) as usize].into());
            }
            all.push(w);
        }
        let admin: Vec<&Finding> = all.iter().filter(|f| f.id.starts_with('a')).collect();
        let shells: Vec<&Finding> = all.iter().filter(|f| f.id.starts_with('w')).collect();
        let ids = |v: Vec<&Finding>| v.iter().map(|f| f.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(compromise_members(&admin, &shells)),
            ids(compromise_members_naive(&admin, &shells)),
            "round {round}"
        );
    }
}

#[test]
fn compromise_link_bounds() {
    let day = 86_400_000;
    let a = {
        let mut a = finding(
            "admin.outside_allowlist",
            Category::AdminCompromise,
            Severity::High,
            "203.0.113.66",
            T0,
        );
        a.id = "a".into();
        a
    };
    let shell = |id: &str, ip: &str, at: i64| {
        let mut w = finding(
            "webshell.command_param",
            Category::Webshell,
            Severity::High,
            ip,
            at,
        );
        w.id = id.into();
        w
    };
    let shells = [
        shell("w0", "198.51.100.1", T0 - 60_000), // a minute before: in
        shell("w1", "198.51.100.1", T0 - 60_001), // just past: out
        shell("w2", "198.51.100.1", T0 + day),    // any IP, a day: in
        shell("w3", "198.51.100.1", T0 + day + 1), // just past: out
        shell("w4", "203.0.113.66", T0 + 30 * day), // same IP, 30 days: in
        shell("w5", "203.0.113.66", T0 + 30 * day + 1), // just past: out
    ];
    let shells: Vec<&Finding> = shells.iter().collect();
    let got: Vec<&str> = compromise_members(&[&a], &shells)
        .iter()
        .map(|f| f.id.as_str())
        .collect();
    assert_eq!(got, ["a", "w0", "w2", "w4"]);
}

#[test]
fn long_chains_name_the_first_of_each_kind_and_say_how_many() {
    let cfg = DetectConfig::default();
    let mut v = Vec::new();
    for i in 0..30 {
        v.push(finding(
            "admin.success_after_failures",
            Category::AdminCompromise,
            Severity::High,
            &format!("203.0.113.{i}"),
            T0 + i * 60_000,
        ));
    }
    v.push(finding(
        "webshell.command_param",
        Category::Webshell,
        Severity::High,
        "198.51.100.5",
        T0 + H,
    ));
    let out = run(v, &cfg);
    let c = of(&out, "chain.compromise");
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].count, 31);
    assert_eq!(c[0].related.len(), MAX_RELATED);
    assert_eq!(c[0].evidence.len(), MAX_RELATED);
    let shell = out
        .iter()
        .find(|f| f.rule == "webshell.command_param")
        .unwrap();
    assert_eq!(
        c[0].related.last(),
        Some(&shell.id),
        "the web shell stays in the story"
    );
    assert!(
        c[0].summary.contains("(and 11 more: 31 steps in all;"),
        "{}",
        c[0].summary
    );
    // At the cap, nothing is left out.
    let mut v: Vec<Finding> = out
        .into_iter()
        .filter(|f| !f.rule.starts_with("chain."))
        .collect();
    v.retain(|f| {
        f.rule != "admin.success_after_failures" || f.first_seen < Some(ts(T0 + 19 * 60_000))
    });
    let out = run(v, &cfg);
    let c = of(&out, "chain.compromise");
    assert_eq!(c[0].related.len(), MAX_RELATED);
    assert!(!c[0].summary.contains("more:"), "{}", c[0].summary);
}

/// The exposure count done the plain way: every hit held, sessions never forgotten.
fn plain_count(hits: &[OrderHit], gap_ms: i64) -> (u64, u64, Vec<(u64, u64)>) {
    let mut hits = hits.to_vec();
    hits.sort();
    hits.dedup();
    let mut last: HashMap<(Option<std::net::IpAddr>, u64), i64> = HashMap::new();
    let mut ips = BTreeSet::new();
    let mut days: BTreeMap<i64, (u64, BTreeSet<std::net::IpAddr>)> = BTreeMap::new();
    let mut n = 0;
    for h in &hits {
        let new = last
            .insert((h.ip, h.ua), h.utc_ms)
            .is_none_or(|t| h.utc_ms - t > gap_ms);
        let d = days
            .entry((h.utc_ms + 9 * H).div_euclid(24 * H))
            .or_default();
        if let Some(ip) = h.ip {
            ips.insert(ip);
            d.1.insert(ip);
        }
        if new {
            n += 1;
            d.0 += 1;
        }
    }
    let days = days.values().map(|(o, i)| (*o, i.len() as u64)).collect();
    (n, ips.len() as u64, days)
}

#[test]
fn a_flood_of_completion_hits_is_counted_exactly() {
    let findings = run(
        vec![admin_planting(
            "198.51.100.7",
            Severity::Critical,
            &[T0],
            "/admin/content/js",
        )],
        &DetectConfig::default(),
    );
    // More distinct customers per day than the IP table holds, and more open sessions than
    // are held before the ended ones are forgotten; revisits after and within the gap.
    let mut hits = Vec::new();
    for i in 0..(crate::card::ORDERS_CAP as i64 + 30_000) {
        let ip = format!("2001:db8:{:x}::{:x}", i / 60_000, i % 60_000 + 1);
        let t = T0 + i * 1_500; // about 60,000 a day
        hits.push(hit(t, &ip, (i % 3) as u64));
        if i % 7 == 0 {
            hits.push(hit(t + 20 * 60_000, &ip, (i % 3) as u64)); // same session
            hits.push(hit(t + 45 * 60_000, &ip, (i % 3) as u64)); // a new one
        }
        if i % 11 == 0 {
            hits.push(hit(t, &ip, (i % 3) as u64)); // logged twice
            hits.push(OrderHit {
                utc_ms: t + 1,
                ip: None,
                ua: 9,
            });
        }
    }
    let cfg = DetectConfig::default();
    let (n, ips, days) = plain_count(&hits, cfg.card.session_gap_secs * 1000);
    assert!(ips > crate::card::ORDERS_CAP as u64);
    let ctx = FinishContext::new(0);
    let last = Some(ts(T0 + 40 * 24 * H));
    let e = exposure(
        &findings,
        Orders::from_hits(hits, 9 * 3600, last),
        &cfg,
        &ctx,
    )
    .unwrap();
    assert!(ctx.take_warnings().is_empty());
    assert_eq!(e.completed_orders, n);
    assert_eq!(e.distinct_customer_ips, ips);
    let got: Vec<(u64, u64)> = e.extra["per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["completed_orders"].as_u64().unwrap(),
                d["distinct_customer_ips"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, days);
}
