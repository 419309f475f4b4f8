//! Tests of the card detector: each rule, its negatives, and split-independent merging.

use super::*;

const DAY: i64 = 86_400;
const SHOP: &str = "https://shop.example.jp";

/// Runs the card detector over `(seconds, "ip|method|target|status|bytes|ua|referer")` lines,
/// dealt round-robin to `parts` states merged at the end.
fn run_cfg(lines: &[(i64, String)], parts: usize, cfg: DetectConfig) -> Vec<Finding> {
    let cfg = Arc::new(cfg);
    let file: Arc<str> = Arc::from("access.log");
    let mut states: Vec<Card> = (0..parts).map(|_| Card::new(cfg.clone())).collect();
    for (i, (t, l)) in lines.iter().enumerate() {
        let ev = crate::testing::event(l, *t);
        let origin = Origin {
            file: &file,
            line: i as u64 + 1,
            raw: l.as_bytes(),
        };
        states[i % parts].observe(&ev, &origin);
    }
    let mut it = states.into_iter();
    let mut first: Box<dyn DetectorState> = Box::new(it.next().unwrap());
    for s in it {
        first.merge(Box::new(s));
    }
    let mut f = first.finish(&FinishContext::default());
    for x in &mut f {
        x.normalize_evidence();
    }
    f.sort_by(|a, b| (a.rule.as_str(), &a.paths, &a.ips).cmp(&(b.rule.as_str(), &b.paths, &b.ips)));
    f
}

fn run(lines: &[(i64, String)]) -> Vec<Finding> {
    run_cfg(lines, 1, DetectConfig::default())
}

/// Like [`run_cfg`] with the default configuration, each state holding at most `cap`
/// checkout clients in memory and spilling the rest under `dir`.
fn run_spilling(
    lines: &[(i64, String)],
    parts: usize,
    cap: usize,
    dir: &std::path::Path,
) -> String {
    let cfg = Arc::new(DetectConfig::default());
    let mut states: Vec<Card> = (0..parts)
        .map(|_| {
            let mut c = Card::new(cfg.clone());
            c.clients = SpillMap::with_dir(cap, dir.to_path_buf(), "card");
            c
        })
        .collect();
    observe_in_chunks(&mut states, lines);
    if cap < usize::MAX {
        assert!(
            states.iter().any(|s| s.clients.has_spilled()),
            "cap {cap} spills"
        );
    }
    crate::testing::merged_findings(states)
}

/// Feeds `(seconds, line)` to `states` in contiguous chunks, like the scan's.
fn observe_in_chunks(states: &mut [Card], lines: &[(i64, String)]) {
    let lines: Vec<(String, i64)> = lines.iter().map(|(t, l)| (l.clone(), *t)).collect();
    crate::testing::observe_in_chunks(states, &lines);
}

fn rules(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|x| x.rule.as_str()).collect()
}

fn l(t: i64, ip: &str, m: &str, target: &str, st: u16, b: u64, referer: &str) -> (i64, String) {
    (
        t,
        format!("{ip}|{m}|{target}|{st}|{b}|Mozilla/5.0|{referer}"),
    )
}

/// Customers loading a page with two scripts, `n` visits spread over `days`.
fn browsing(n: i64, days: i64, size: impl Fn(i64) -> u64, path: &str) -> Vec<(i64, String)> {
    let mut v = Vec::new();
    for i in 0..n {
        let t = i * days * DAY / n;
        let ip = format!("100.64.{}.{}", i / 200, i % 200 + 1);
        v.push(l(t, &ip, "GET", "/products/detail/1", 200, 9000, "-"));
        let r = format!("{SHOP}/products/detail/1");
        // Two compression variants coexist all along.
        let gz = i % 2 == 0;
        v.push(l(
            t + 1,
            &ip,
            "GET",
            path,
            200,
            if gz { size(t) * 2 / 5 } else { size(t) },
            &r,
        ));
        v.push(l(t + 2, &ip, "GET", path, 304, 0, &r));
    }
    v
}

#[test]
fn asset_drift_finds_the_new_stable_size_not_compression_variants() {
    let lines = browsing(
        200,
        10,
        |t| if t < 6 * DAY { 1200 } else { 3600 },
        "/html/user_data/assets/js/customize.js",
    );
    let f = run(&lines);
    assert_eq!(rules(&f), vec!["card.asset_drift"]);
    assert_eq!(f[0].severity, Severity::Medium);
    assert!(
        f[0].summary.contains("1200") && f[0].summary.contains("3600"),
        "{}",
        f[0].summary
    );
    assert!(
        f[0].summary.contains("480 / 1200"),
        "old sizes: {}",
        f[0].summary
    );
    // Evidence shows the new size first, then the old ones; at most two lines per size.
    assert!(f[0].evidence.len() <= 8, "{:?}", f[0].evidence);
    assert!(f[0].evidence[0].text.contains("|3600|") || f[0].evidence[0].text.contains("|1440|"));
    assert!(f[0].evidence.iter().any(|e| e.text.contains("|1200|")));
    let at = f[0].first_seen.unwrap().utc_ms / 1000 - 1_700_000_000;
    assert!((6 * DAY..6 * DAY + DAY).contains(&at), "{at}");
    // Same size all along (two variants, 304s): nothing.
    let quiet = browsing(200, 10, |_| 1200, "/html/user_data/assets/js/customize.js");
    assert!(run(&quiet).is_empty());
    // Splitting the lines across workers gives the same findings.
    let a = run_cfg(&lines, 1, DetectConfig::default());
    let b = run_cfg(&lines, 3, DetectConfig::default());
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn a_release_changing_several_assets_at_once_is_low() {
    let mut lines = Vec::new();
    for p in ["/a.js", "/b.js", "/c.css"] {
        lines.extend(browsing(
            100,
            10,
            |t| if t < 5 * DAY { 1000 } else { 1500 },
            p,
        ));
    }
    // Without admin activity by a known staff IP, several files changing together is not
    // taken for a release.
    let f = run(&lines);
    assert_eq!(f.len(), 3);
    assert!(f
        .iter()
        .all(|x| x.rule == "card.asset_drift" && x.severity == Severity::Medium));
    assert!(
        f[0].summary.contains("not taken for a release"),
        "{}",
        f[0].summary
    );
    assert!(f[0].summary.contains("No admin page"), "{}", f[0].summary);
    // A new IP in the admin just before is not staff: still medium, but named.
    let mut fresh = lines.clone();
    fresh.push(l(
        5 * DAY - 600,
        "198.51.100.77",
        "GET",
        "/admin/",
        200,
        9000,
        "-",
    ));
    let f = run(&fresh);
    assert!(f.iter().all(|x| x.severity == Severity::Medium));
    assert!(f[0].summary.contains("198.51.100.77"), "{}", f[0].summary);
    // The office IP, in the admin days earlier, logs in (login form: not a session page)
    // and works in the admin shortly before: a release, low.
    let mut staff = lines.clone();
    staff.push(l(DAY, "203.0.113.10", "GET", "/admin/", 200, 9000, "-"));
    staff.push(l(
        5 * DAY - 700,
        "203.0.113.10",
        "GET",
        "/admin/login",
        200,
        9000,
        "-",
    ));
    staff.push(l(
        5 * DAY - 600,
        "203.0.113.10",
        "GET",
        "/admin/content/js",
        200,
        9000,
        "-",
    ));
    for parts in [1, 4] {
        let f = run_cfg(&staff, parts, DetectConfig::default());
        assert_eq!(f.len(), 3);
        assert!(f.iter().all(|x| x.severity == Severity::Low), "{f:#?}");
        assert!(
            f[0].summary.contains("known staff IP(s) 203.0.113.10"),
            "{}",
            f[0].summary
        );
    }
    // Only the login form from the new IP: no admin page served, no release, nobody named.
    let mut login = lines.clone();
    login.push(l(
        5 * DAY - 600,
        "198.51.100.78",
        "GET",
        "/admin/login",
        200,
        9000,
        "-",
    ));
    let f = run(&login);
    assert!(f.iter().all(|x| x.severity == Severity::Medium));
    assert!(!f[0].summary.contains("198.51.100.78"), "{}", f[0].summary);
    // An allow-listed IP counts as staff without earlier history.
    let mut cfg = DetectConfig::default();
    cfg.admin.allow = vec!["198.51.100.0/24".parse().unwrap()];
    let f = run_cfg(&fresh, 2, cfg);
    assert!(f.iter().all(|x| x.severity == Severity::Low), "{f:#?}");
}

#[test]
fn first_seen_script_loaded_from_checkout_but_not_a_marketing_tag() {
    let mut lines = browsing(
        100,
        10,
        |_| 500,
        "/html/template/default/assets/js/function.js",
    );
    for i in 0..30 {
        let t = 6 * DAY + i * 600;
        let ip = format!("100.65.0.{}", i + 1);
        let confirm = format!("{SHOP}/shopping/confirm");
        lines.push(l(
            t,
            &ip,
            "GET",
            "/html/user_data/assets/js/jq.min.js",
            200,
            7000,
            &confirm,
        ));
        // A tag staff added to every page: loaded from the top page.
        lines.push(l(
            t,
            &ip,
            "GET",
            "/html/user_data/assets/js/gtm-tag.js",
            200,
            900,
            &format!("{SHOP}/"),
        ));
    }
    let f = run(&lines);
    assert_eq!(rules(&f), vec!["card.first_seen_script"]);
    assert_eq!(f[0].paths, vec!["/html/user_data/assets/js/jq.min.js"]);
    assert_eq!(f[0].severity, Severity::High);
    // Too few customers: nothing.
    let few: Vec<_> = lines
        .iter()
        .filter(|(_, x)| !x.contains("100.65.0.2"))
        .take(200 * 3 + 10)
        .cloned()
        .collect();
    assert!(!rules(&run(&few)).contains(&"card.first_seen_script"));
}

#[test]
fn same_origin_drop_needs_checkout_referer_and_several_customers() {
    let confirm = format!("{SHOP}/shopping/confirm");
    let mut lines = Vec::new();
    for i in 0..3 {
        let ip = format!("100.64.0.{}", i + 1);
        lines.push(l(
            i * 100,
            &ip,
            "POST",
            "/html/user_data/x.php",
            200,
            2,
            &confirm,
        ));
        lines.push(l(
            i * 100 + 5,
            &ip,
            "POST",
            "/wp-admin/admin-ajax.php",
            200,
            2,
            &confirm,
        ));
        lines.push(l(
            i * 100 + 6,
            &ip,
            "POST",
            "/shopping/checkout",
            302,
            0,
            &confirm,
        ));
        lines.push(l(i * 100 + 7, &ip, "POST", "/other.php", 200, 2, "-"));
    }
    let f = run(&lines);
    assert_eq!(rules(&f), vec!["card.exfil_drop"]);
    assert_eq!(f[0].paths, vec!["/html/user_data/x.php"]);
    assert_eq!(f[0].severity, Severity::High);
    assert_eq!(f[0].count, 3);
    assert!(run(&lines[..8]).is_empty(), "two customers are not enough");
}

#[test]
fn harvest_of_a_growing_file() {
    let mut lines = Vec::new();
    for (i, size) in [100u64, 400, 900, 1500, 20].iter().enumerate() {
        lines.push(l(
            i as i64 * DAY,
            "198.51.100.7",
            "GET",
            "/html/user_data/c.txt",
            200,
            *size,
            "-",
        ));
        lines.push(l(
            i as i64 * DAY,
            "198.51.100.8",
            "GET",
            "/html/user_data/same.txt",
            200,
            100,
            "-",
        ));
    }
    let f = run(&lines);
    assert_eq!(rules(&f), vec!["card.drop_harvest"]);
    assert_eq!(f[0].ips, vec!["198.51.100.7"]);
    assert!(f[0].summary.contains("shrank"));
    // A file every visitor fetches is public, not a drop.
    for i in 0..20 {
        lines.push(l(
            10,
            &format!("100.64.1.{i}"),
            "GET",
            "/html/user_data/c.txt",
            200,
            300,
            "-",
        ));
    }
    assert!(run(&lines).is_empty());
}

#[test]
fn image_beacon_with_base64_query() {
    let b64 =
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkrLw=="
            .repeat(2);
    let confirm = format!("{SHOP}/shopping/confirm");
    let mut lines = Vec::new();
    for i in 0..3 {
        let ip = format!("100.64.0.{}", i + 1);
        lines.push(l(
            i,
            &ip,
            "GET",
            &format!("/html/user_data/p.gif?d={b64}"),
            200,
            43,
            &confirm,
        ));
        lines.push(l(
            i,
            &ip,
            "GET",
            "/img/logo.png?w=300&h=200",
            200,
            43,
            &confirm,
        ));
    }
    let f = run(&lines);
    assert_eq!(rules(&f), vec!["card.image_beacon"]);
    assert_eq!(f[0].severity, Severity::High);
}

fn orders_from(referer: &str, n: usize) -> Vec<(i64, String)> {
    let mut lines = browsing(50, 2, |_| 500, "/js/app.js");
    for i in 0..n {
        let ip = format!("100.66.0.{}", i + 1);
        lines.push(l(
            3 * DAY + i as i64,
            &ip,
            "GET",
            "/shopping/complete",
            200,
            7000,
            referer,
        ));
    }
    lines
}

#[test]
fn completion_from_a_foreign_referer_unless_it_is_the_psp() {
    let f = run(&orders_from("https://pay-secure.example.net/card", 3));
    assert_eq!(rules(&f), vec!["card.foreign_referer_completion"]);
    assert_eq!(f[0].severity, Severity::High);
    assert!(run(&orders_from(&format!("{SHOP}/shopping/confirm"), 3)).is_empty());
    let mut cfg = DetectConfig::default();
    cfg.card.psp_domains = vec!["example.net".into()];
    assert!(run_cfg(
        &orders_from("https://pay-secure.example.net/card", 3),
        1,
        cfg
    )
    .is_empty());
}

#[test]
fn completion_hits_are_kept_for_the_exposure_window() {
    let lines = orders_from("-", 4);
    let cfg = Arc::new(DetectConfig::default());
    let mut c = Card::new(cfg);
    let file: Arc<str> = Arc::from("a");
    for (t, x) in &lines {
        let f: Vec<&str> = x.split('|').collect();
        let ev = Event {
            ts: Some(Timestamp::from_secs(*t, 0)),
            client_ip: f[0].parse().ok(),
            method: Some(f[1].into()),
            target: Some(f[2].into()),
            status: f[3].parse().ok(),
            ..Default::default()
        };
        c.observe(
            &ev,
            &Origin {
                file: &file,
                line: 1,
                raw: b"x",
            },
        );
    }
    let ctx = FinishContext::new(0);
    let hits: Vec<OrderHit> = c.take_orders().into_time_order(&ctx).collect();
    assert_eq!(hits.len(), 4);
    assert!(hits.windows(2).all(|w| w[0] < w[1]));
}

fn checkout_attempts(ip: &str, t0: i64, n: usize, fail: bool) -> Vec<(i64, String)> {
    let confirm = format!("{SHOP}/shopping/confirm");
    let mut v = Vec::new();
    for i in 0..n {
        let t = t0 + i as i64 * 60;
        v.push(l(t, ip, "POST", "/shopping/checkout", 302, 0, &confirm));
        let next = if fail {
            "/shopping/error"
        } else {
            "/shopping/complete"
        };
        v.push(l(t + 1, ip, "GET", next, 200, 5000, &confirm));
    }
    v
}

#[test]
fn card_testing_velocity_and_its_negatives() {
    let f = run(&checkout_attempts("198.51.100.9", 0, 12, true));
    assert_eq!(rules(&f), vec!["cardtest.velocity"]);
    assert_eq!(f[0].count, 12);
    assert_eq!(f[0].category, Category::CardTesting);
    // A customer retrying a declined card three times.
    assert!(run(&checkout_attempts("100.64.0.1", 0, 3, true)).is_empty());
    // A flash sale: many customers, many orders, few failures.
    let mut sale = Vec::new();
    for i in 0..200 {
        sale.extend(checkout_attempts(
            &format!("100.64.{}.{}", i / 100, i % 100 + 1),
            i * 5,
            1,
            i % 20 == 0,
        ));
    }
    let fs = run(&sale);
    assert!(fs.is_empty(), "{fs:#?}");
    // 429s from the rate limiter count as failures.
    let confirm = format!("{SHOP}/shopping/confirm");
    let limited: Vec<_> = (0..15)
        .map(|i| {
            l(
                i * 30,
                "198.51.100.10",
                "POST",
                "/shopping/checkout",
                429,
                0,
                &confirm,
            )
        })
        .collect();
    assert_eq!(rules(&run(&limited)), vec!["cardtest.velocity"]);
}

#[test]
fn distributed_card_testing_against_the_baseline() {
    let mut lines = Vec::new();
    // Ten ordinary hours: one browsing customer fails once per hour.
    for h in 0..10 {
        let ip = format!("100.64.9.{}", h + 1);
        lines.push(l(
            h * 3600,
            &ip,
            "GET",
            "/products/detail/1",
            200,
            9000,
            "-",
        ));
        lines.extend(checkout_attempts(&ip, h * 3600 + 10, 1, true));
    }
    // Then an hour of 30 IPs failing once each, never browsing.
    let mut attack = Vec::new();
    for i in 0..30 {
        attack.extend(checkout_attempts(
            &format!("198.18.0.{}", i + 1),
            11 * 3600 + i * 60,
            1,
            true,
        ));
    }
    let mut all = lines.clone();
    all.extend(attack.clone());
    let f = run(&all);
    assert_eq!(rules(&f), vec!["cardtest.distributed"]);
    assert_eq!(f[0].count, 30);
    // The same failures from customers who browsed first look like a provider outage.
    let mut browsed = lines;
    for i in 0..30 {
        browsed.push(l(
            11 * 3600,
            &format!("198.18.0.{}", i + 1),
            "GET",
            "/products/detail/2",
            200,
            9000,
            "-",
        ));
    }
    browsed.extend(attack);
    assert!(run(&browsed).is_empty());
}

#[test]
fn account_creation_burst() {
    let lines: Vec<_> = (0..6)
        .map(|i| l(i * 60, "198.51.100.11", "POST", "/entry", 302, 0, "-"))
        .collect();
    let f = run(&lines);
    assert_eq!(rules(&f), vec!["cardtest.account_burst"]);
    assert!(run(&lines[..4]).is_empty());
}

#[test]
fn hostile_text_does_not_panic() {
    let lines = vec![
        l(0, "x", "POST", "/\u{202e}.php?%%%", 200, 0, "https://"),
        l(1, "1.2.3.4", "GET", "/a.gif?", 200, 0, "ftp://@:/"),
        l(
            2,
            "1.2.3.4",
            "GET",
            "/shopping/complete",
            302,
            0,
            "http://[::1",
        ),
    ];
    let _ = run(&lines);
}

fn app_failures(ip: &str, times: &[i64]) -> Vec<Event<'static>> {
    times
        .iter()
        .map(|t| Event {
            ts: Some(Timestamp::from_secs(1_700_000_000 + t, 0)),
            client_ip: ip.parse().ok(),
            detail: ecir_model::EventDetail::App {
                level: "INFO".into(),
                channel: Some("crowdsec-events".into()),
                message: format!("{{\"type\":\"PAYMENT_FAILED\",\"ip\":\"{ip}\"}}").into(),
            },
            ..Default::default()
        })
        .collect()
}

fn run_events(evs: &[Event<'_>]) -> Vec<Finding> {
    let mut c = Box::new(Card::new(Arc::new(DetectConfig::default())));
    let file: Arc<str> = Arc::from("events.log");
    for (i, e) in evs.iter().enumerate() {
        let o = Origin {
            file: &file,
            line: i as u64 + 1,
            raw: b"x",
        };
        c.observe(e, &o);
    }
    c.finish(&FinishContext::default())
}

#[test]
fn payment_failures_from_the_application_log() {
    let f = run_events(&app_failures("1.2.3.4", &[0, 6, 11, 19]));
    assert_eq!(rules(&f), vec!["cardtest.velocity"]);
    assert_eq!(f[0].severity, Severity::Medium);
    // Three declines in a row: a customer, not a tester.
    assert!(run_events(&app_failures("1.2.3.4", &[0, 6, 11])).is_empty());
    // Twelve IPs failing once each within a minute, never browsing: distributed.
    let mut many = Vec::new();
    for i in 0..12 {
        many.extend(app_failures(&format!("1.2.4.{}", i + 1), &[i]));
    }
    let f = run_events(&many);
    assert_eq!(rules(&f), vec!["cardtest.distributed"]);
    assert_eq!(f[0].count, 12);
    // Nine are below --distributed-min-ips.
    assert!(run_events(&many[..9]).is_empty());
}

#[test]
fn fake_payment_page_double_card_entry() {
    let confirm = format!("{SHOP}/shopping/confirm");
    let mut lines = Vec::new();
    for i in 0..4 {
        let ip = format!("100.64.0.{}", i + 1);
        let t = i * 1000;
        lines.push(l(t, &ip, "GET", "/user_data/card.php", 200, 5200, &confirm));
        lines.push(l(
            t + 60,
            &ip,
            "POST",
            "/user_data/card.php",
            302,
            0,
            &format!("{SHOP}/user_data/card.php"),
        ));
        lines.push(l(
            t + 61,
            &ip,
            "POST",
            "/user_data/card.php",
            200,
            900,
            &confirm,
        ));
        lines.push(l(
            t + 200,
            &ip,
            "POST",
            "/shopping/checkout",
            302,
            0,
            &confirm,
        ));
    }
    let f = run(&lines);
    assert_eq!(rules(&f), vec!["card.fake_payment_page"]);
    assert_eq!(f[0].severity, Severity::High);
    // Without the page views (a script posting in the background) it is a drop.
    let bg: Vec<_> = lines
        .iter()
        .filter(|(_, x)| !x.contains("|GET|"))
        .cloned()
        .collect();
    assert_eq!(rules(&run(&bg)), vec!["card.exfil_drop"]);
    // Without the real checkout afterwards it is a drop too.
    let no_reentry: Vec<_> = lines
        .iter()
        .filter(|(_, x)| !x.contains("/shopping/checkout"))
        .cloned()
        .collect();
    assert_eq!(rules(&run(&no_reentry)), vec!["card.exfil_drop"]);
    let a = run_cfg(&lines, 1, DetectConfig::default());
    let b = run_cfg(&lines, 4, DetectConfig::default());
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn rest_checkout_failures_count() {
    // WooCommerce Store API and Magento REST answer refused payments with 400.
    let woo: Vec<_> = (0..12)
        .map(|i| {
            l(
                i * 20,
                "198.51.100.40",
                "POST",
                "/wp-json/wc/store/v1/checkout",
                400,
                300,
                "-",
            )
        })
        .collect();
    assert_eq!(rules(&run(&woo)), vec!["cardtest.velocity"]);
    let mage: Vec<_> = (0..12)
        .map(|i| {
            l(
                i * 20,
                "198.51.100.41",
                "POST",
                "/rest/default/V1/guest-carts/abc/payment-information",
                400,
                300,
                "-",
            )
        })
        .collect();
    assert_eq!(rules(&run(&mage)), vec!["cardtest.velocity"]);
    // Accepted orders at the same pace are not card testing.
    let ok: Vec<_> = (0..12)
        .map(|i| {
            l(
                i * 20,
                "198.51.100.42",
                "POST",
                "/wp-json/wc/store/v1/checkout",
                200,
                300,
                "-",
            )
        })
        .collect();
    assert!(run(&ok).is_empty());
}

#[test]
fn card_testing_per_session_catches_a_slower_tester() {
    // Twelve failed submissions four minutes apart: never ten within the 30-minute window,
    // but one session (never 30 minutes idle).
    let mut slow = Vec::new();
    for i in 0..12 {
        slow.extend(checkout_attempts("198.51.100.30", i * 240, 1, true));
    }
    for parts in [1, 3] {
        let f = run_cfg(&slow, parts, DetectConfig::default());
        assert_eq!(rules(&f), vec!["cardtest.velocity"], "{f:#?}");
        assert_eq!(f[0].count, 12);
        assert!(f[0].title.contains("one session"), "{}", f[0].title);
        assert!(
            f[0].summary
                .contains("rotating IPs behind a single session cookie"),
            "{}",
            f[0].summary
        );
    }
    // The same twelve failures an hour apart: twelve sessions, a customer coming back.
    let mut spread = Vec::new();
    for i in 0..12 {
        spread.extend(checkout_attempts("198.51.100.31", i * 3600, 1, true));
    }
    assert!(run(&spread).is_empty());
    // A customer retrying a declined card three times, then paying: quiet.
    let mut retry = checkout_attempts("100.64.0.7", 0, 3, true);
    retry.extend(checkout_attempts("100.64.0.7", 200, 1, false));
    assert!(run(&retry).is_empty());
    // The fast tester's finding says how many sessions and agents it used.
    let f = run(&checkout_attempts("198.51.100.9", 0, 12, true));
    assert!(
        f[0].summary.contains("1 session(s) with 1 user agent(s)"),
        "{}",
        f[0].summary
    );
}

/// A deterministic stream of pseudo-random numbers (SplitMix64).
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x = x.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
}

#[test]
fn ip_set_counts_as_a_smallest_set_whatever_the_split() {
    let mut cases = [0; 2];
    for seed in 0..40u64 {
        let mut next = rng(seed);
        let n = (next() % 200) as usize;
        let ips: Vec<IpAddr> = (0..n)
            .map(|_| {
                let x = next();
                match x % 3 {
                    0 => IpAddr::from([10, 0, (x >> 8) as u8 % 4, (x >> 16) as u8]),
                    1 => IpAddr::from([
                        0x2001,
                        0xdb8,
                        0,
                        0,
                        0,
                        0,
                        (x >> 8) as u16 % 3,
                        (x >> 24) as u16,
                    ]),
                    _ => IpAddr::from([(x >> 8) as u8, (x >> 16) as u8, 1, 1]),
                }
            })
            .collect();
        let mut reference = SmallestSet::new(MAX_PATH_IPS);
        for ip in &ips {
            reference.insert(*ip);
        }
        for parts in [1, 2, 5] {
            let mut sets: Vec<IpSet> = vec![IpSet::default(); parts];
            for (i, ip) in ips.iter().enumerate() {
                sets[(i * 7 + seed as usize) % parts].insert(*ip);
            }
            let mut it = sets.into_iter();
            let mut s = it.next().unwrap();
            for o in it {
                s.merge(o);
            }
            // What a finding reads: the exact count up to the cap, and whether it was passed.
            assert_eq!(
                s.exact_len(),
                reference.exact_len(),
                "seed {seed}, {parts} parts"
            );
            assert_eq!(s.overflowed(), reference.overflowed());
            cases[s.overflowed() as usize] += 1;
            if s.overflowed() {
                assert!(s.v4.is_empty() && s.v6.is_empty());
            } else {
                // Not passed: the very clients (all of them).
                let mut kept: Vec<IpAddr> =
                    s.v4.iter()
                        .map(|x| IpAddr::from(std::net::Ipv4Addr::from(*x)))
                        .chain(
                            s.v6.iter()
                                .map(|x| IpAddr::from(std::net::Ipv6Addr::from(*x))),
                        )
                        .collect();
                kept.sort();
                assert_eq!(kept, reference.items(), "seed {seed}, {parts} parts");
            }
        }
    }
    assert!(cases[0] > 10 && cases[1] > 10, "{cases:?}");
}

#[test]
fn lazy_evidence_keeps_what_top_evidence_keeps_whatever_the_split() {
    let files: Vec<Arc<str>> = vec![Arc::from("b.log"), Arc::from("a.log")];
    for seed in 0..20u64 {
        let mut next = rng(seed);
        let lines: Vec<(usize, u64, Option<Timestamp>, u32, String)> = (0..150)
            .map(|i| {
                let ts = (!next().is_multiple_of(5))
                    .then(|| Timestamp::from_secs((next() % 40) as i64, 0));
                let line = format!(
                    "1.2.3.{} line {i} \u{7}{}",
                    next() % 9,
                    "x".repeat((next() % 3000) as usize)
                );
                (
                    (next() % 2) as usize,
                    i,
                    ts,
                    [10, 20, 40][(next() % 3) as usize],
                    line,
                )
            })
            .collect();
        let mut whole = TopEvidence::default();
        for (f, line, ts, w, raw) in &lines {
            let o = Origin {
                file: &files[*f],
                line: *line,
                raw: raw.as_bytes(),
            };
            whole.offer(&o, *ts, *w);
        }
        let expect = whole.into_vec();
        for (parts, spill_every) in [(1, 0), (3, 0), (1, 7), (1, 40), (3, 23), (2, 60), (1, 90)] {
            let mut states: Vec<(Arena, LazyEvidence)> =
                (0..parts).map(|_| Default::default()).collect();
            let mut spilled = Vec::new();
            for (i, (f, line, ts, w, raw)) in lines.iter().enumerate() {
                let o = Origin {
                    file: &files[*f],
                    line: *line,
                    raw: raw.as_bytes(),
                };
                let (arena, ev) = &mut states[i % parts];
                ev.offer(arena, &o, *ts, *w);
                if spill_every > 0 && next().is_multiple_of(spill_every) {
                    ev.spill(arena, "/p.js", &mut spilled);
                }
            }
            let mut it = states.into_iter();
            let (mut arena, mut ev) = it.next().unwrap();
            for (a, e) in it {
                let remap = Remap {
                    files: a.files.iter().map(|f| arena.file(f)).collect(),
                    from: &a,
                };
                ev.merge(&mut arena, e, &remap);
            }
            // What finish does: the lines in memory and those spilled, the best of them.
            let mut got = ev.to_vec(&arena);
            let mut names = Vec::new();
            decode_spilled(&spilled, &|p| p == "/p.js", &mut names, &mut |_, e| {
                got.push(e)
            })
            .expect("spilled records read back");
            got.sort_by(crate::evidence::order);
            got.truncate(ecir_model::finding::MAX_EVIDENCE);
            assert_eq!(
                got, expect,
                "seed {seed}, {parts} parts, spilled about every {spill_every} lines"
            );
            assert_eq!(
                arena.live,
                ev.items.iter().map(|k| k.raw.len as usize).sum::<usize>()
            );
        }
    }
}

#[test]
fn harvest_evidence_and_popularity_do_not_depend_on_the_split() {
    // Two fetchers of a growing file, many lines each (thinned as they go), and a file that
    // becomes popular only once the parts are merged.
    let mut lines = Vec::new();
    for i in 0..120i64 {
        for ip in ["198.51.100.7", "198.51.100.70"] {
            lines.push(l(
                i * 600,
                ip,
                "GET",
                "/html/user_data/c.txt",
                200,
                100 + i as u64 * 7,
                "-",
            ));
        }
        let ip = format!("100.64.2.{}", i % 12);
        lines.push(l(
            i * 600,
            &ip,
            "GET",
            "/html/user_data/p.txt",
            200,
            100 + i as u64,
            "-",
        ));
    }
    let a = run_cfg(&lines, 1, DetectConfig::default());
    assert_eq!(rules(&a), vec!["card.drop_harvest", "card.drop_harvest"]);
    assert!(a.iter().all(|f| f.paths == vec!["/html/user_data/c.txt"]));
    // "198.51.100.7" also prefixes the other fetcher's lines: both are cited, as before.
    assert!(!a[0].evidence.is_empty());
    for parts in [2, 3, 12] {
        assert_eq!(
            run_cfg(&lines, parts, DetectConfig::default()),
            a,
            "{parts} parts"
        );
    }
}

#[test]
fn browsed_filter_never_forgets_and_merges_by_or() {
    let mut next = rng(7);
    let ips: Vec<IpAddr> = (0..20_000)
        .map(|i| {
            let x = next();
            if i % 5 == 0 {
                IpAddr::from(std::net::Ipv6Addr::from(((x as u128) << 64) | x as u128))
            } else {
                IpAddr::from(std::net::Ipv4Addr::from(x as u32))
            }
        })
        .collect();
    let (seen, unseen) = ips.split_at(10_000);
    let mut parts: Vec<Browsed> = (0..3).map(|_| Browsed::default()).collect();
    for (i, ip) in seen.iter().enumerate() {
        parts[i % 3].insert(*ip);
    }
    let mut it = parts.into_iter();
    let mut b = it.next().unwrap();
    for o in it {
        b.merge(o);
    }
    let mut whole = Browsed::default();
    for ip in seen {
        whole.insert(*ip);
    }
    assert_eq!(b.bits, whole.bits);
    assert!(seen.iter().all(|ip| b.contains(*ip)));
    // False positives (a non-browser taken for one) are rare at this load.
    let fp = unseen.iter().filter(|ip| b.contains(**ip)).count();
    assert!(fp < 10, "{fp} false positives");
    assert!(!Browsed::default().contains(seen[0]));
}

#[test]
fn spilled_checkout_clients_give_the_same_findings() {
    let mut lines = Vec::new();
    // A baseline of browsing customers failing now and then, then distributed testing.
    for h in 0..10 {
        let ip = format!("100.64.9.{}", h + 1);
        lines.push(l(
            h * 3600,
            &ip,
            "GET",
            "/products/detail/1",
            200,
            9000,
            "-",
        ));
        lines.extend(checkout_attempts(&ip, h * 3600 + 10, 1, true));
    }
    for i in 0..30 {
        lines.extend(checkout_attempts(
            &format!("198.18.0.{}", i + 1),
            11 * 3600 + i * 60,
            1,
            true,
        ));
    }
    // A fast tester, and ordinary buyers.
    lines.extend(checkout_attempts("2001:db8::9", 12 * 3600, 12, true));
    for i in 0..40 {
        lines.extend(checkout_attempts(
            &format!("100.64.1.{}", i + 1),
            12 * 3600 + i * 17,
            1,
            false,
        ));
    }
    // Customers typing their card into a fake page, then paying for real.
    let confirm = format!("{SHOP}/shopping/confirm");
    for i in 0..4 {
        let ip = format!("100.64.0.{}", i + 1);
        let t = 14 * 3600 + i * 1000;
        lines.push(l(t, &ip, "GET", "/user_data/card.php", 200, 5200, &confirm));
        let fake = format!("{SHOP}/user_data/card.php");
        lines.push(l(t + 60, &ip, "POST", "/user_data/card.php", 302, 0, &fake));
        lines.push(l(
            t + 61,
            &ip,
            "POST",
            "/user_data/card.php",
            200,
            900,
            &confirm,
        ));
        lines.push(l(
            t + 200,
            &ip,
            "POST",
            "/shopping/checkout",
            302,
            0,
            &confirm,
        ));
    }
    // In time order, so a client's lines are spread over several spilled runs.
    lines.sort_by_key(|x| x.0);
    let dir = std::env::temp_dir().join(format!("ecir-card-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let want = run_spilling(&lines, 1, usize::MAX, &dir);
    for rule in [
        "cardtest.distributed",
        "cardtest.velocity",
        "card.fake_payment_page",
    ] {
        assert!(want.contains(rule), "{rule}: {want}");
    }
    for parts in [1, 3] {
        for cap in [1, 2, 7, 16] {
            assert_eq!(
                run_spilling(&lines, parts, cap, &dir),
                want,
                "cap {cap}, {parts} parts"
            );
        }
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "runs removed");
    let _ = std::fs::remove_dir(&dir);
}

#[test]
fn browsed_recent_inserts_cache_changes_no_bit() {
    // Clients coming back soon and late, colliding in the cache, v4 and v6: the filter holds
    // exactly the bits of every client inserted, as without the cache.
    let mut next = rng(11);
    let pool: Vec<IpAddr> = (0..5_000)
        .map(|i| {
            let x = next();
            if i % 4 == 0 {
                IpAddr::from(std::net::Ipv6Addr::from(
                    ((x as u128) << 64) | (x >> 3) as u128,
                ))
            } else {
                IpAddr::from(std::net::Ipv4Addr::from(x as u32))
            }
        })
        .collect();
    let mut b = Browsed::default();
    let mut expect = vec![0u64; BROWSED_WORDS];
    for round in 0..60_000u64 {
        let x = next();
        // Mostly recent clients (a window of 200), sometimes any.
        let i = if x.is_multiple_of(5) {
            (x >> 8) as usize % pool.len()
        } else {
            (round as usize / 20 + (x >> 8) as usize % 200) % pool.len()
        };
        let ip = pool[i];
        b.insert(ip);
        for k in Browsed::bit_indexes(ip) {
            expect[k / 64] |= 1 << (k % 64);
        }
        if round % 10_000 == 0 {
            assert_eq!(b.bits, expect, "round {round}");
        }
    }
    assert_eq!(b.bits, expect);
    assert_eq!(b.recent.len(), BROWSED_RECENT);
    // A merged-into empty filter keeps a cache true of its bits.
    let mut m = Browsed::default();
    m.merge(b);
    for ip in &pool[..100] {
        m.insert(*ip);
    }
    for ip in &pool[..100] {
        assert!(m.contains(*ip));
    }
}

#[test]
fn writable_prefixes_by_their_bytes() {
    for w in WRITABLE {
        assert!(
            w.len() >= 3 && w.starts_with('/') && w.ends_with('/'),
            "{w}"
        );
        assert_eq!(*w, w.to_ascii_lowercase(), "{w}");
    }
    assert!(in_writable("/html/upload/save_image/a.jpg"));
    assert!(in_writable("/HTML/Upload/x.png"));
    assert!(in_writable("/Wp-Content/Uploads/2024/a.png"));
    assert!(!in_writable("/html/template/default/a.js"));
    assert!(!in_writable("/html/upload"));
    assert!(!in_writable("/"));
    assert!(!in_writable(""));
    assert!(!in_writable("/imgs/a.png"));
}

#[test]
fn writable_matches_the_plain_comparison() {
    let paths = [
        "/html/user_data/x",
        "/HTML/USER_DATA/",
        "/html/user_dat",
        "/html/user_data",
        "/html/upload/",
        "/upload/a",
        "/Upload/a",
        "/uploads/a",
        "/media/",
        "/pub/media/a",
        "/pub/Media/a",
        "/wp-content/uploads/a",
        "/wp-content/uploads",
        "/WP-CONTENT/UPLOADS/x.png",
        "/img/",
        "/im",
        "/img",
        "/img/\u{e9}",
        "/\u{e9}mg/",
        "/i\u{0f}g/",
        "\u{0f}html/upload/",
        "/html\u{0f}upload/",
    ];
    for p in paths {
        assert_eq!(
            in_writable(p),
            WRITABLE.iter().any(|w| starts_with_ci(p, w)),
            "{p}"
        );
    }
}

#[test]
fn extension_kinds() {
    let cases: &[(&str, Ext)] = &[
        ("/a/app.js", Ext::Js),
        ("/a/APP.JS", Ext::Js),
        ("/s.css", Ext::Css),
        ("/i.JPEG", Ext::Image),
        ("/i.webp", Ext::Image),
        ("/i.bmp", Ext::Image),
        ("/x.php", Ext::Php),
        ("/x.html", Ext::Html),
        ("/x.htm", Ext::Htm),
        ("/x.cgi", Ext::Cgi),
        ("/x.jsx", Ext::Other),
        ("/x.j", Ext::Other),
        ("/x.js\0", Ext::Other),
        ("/x.\0js", Ext::Other),
        ("/x.phtml", Ext::Other),
        ("/x.", Ext::None),
        ("/a.b/c", Ext::None),
        ("/products/list", Ext::None),
        ("", Ext::None),
    ];
    for (p, want) in cases {
        assert_eq!(Ext::of(p), *want, "{p:?}");
    }
}

#[test]
fn a_tester_rotating_user_agents_keeps_bounded_sessions() {
    let confirm = format!("{SHOP}/shopping/confirm");
    // `agents` submissions from one IP, one a second, each with its own user agent, all
    // refused (429): one per-IP velocity finding.
    let rotating = |agents: usize| -> Vec<(i64, String)> {
        (0..agents)
            .map(|i| {
                (
                    i as i64,
                    format!("198.51.100.77|POST|/shopping/checkout|429|0|bot/{i}|{confirm}"),
                )
            })
            .collect()
    };
    let few = run(&rotating(200));
    assert_eq!(rules(&few), vec!["cardtest.velocity"]);
    assert!(
        few[0]
            .summary
            .contains("200 session(s) with 200 user agent(s)"),
        "{}",
        few[0].summary
    );
    let lines = rotating(3000);
    let one = run_cfg(&lines, 1, DetectConfig::default());
    assert_eq!(rules(&one), vec!["cardtest.velocity"]);
    // The busiest 30-minute window.
    assert_eq!(one[0].count, 1800);
    assert!(
        one[0].summary.contains(&format!(
            "at least {MAX_AGENTS} session(s) with more than {MAX_AGENTS} user agents (sessions counted for {MAX_AGENTS} of them, {MAX_AGENTS} of its 3000 submissions)"
        )),
        "{}",
        one[0].summary
    );
    // The agents kept do not depend on how the lines were split or spilled.
    let json = |f: &[Finding]| serde_json::to_string(f).unwrap();
    assert_eq!(
        json(&run_cfg(&lines, 3, DetectConfig::default())),
        json(&one)
    );
    // With customers in between, so that the clients spill (and the bound goes to disk).
    let mut mixed = lines.clone();
    for k in 0..40 {
        mixed.extend(checkout_attempts(
            &format!("100.64.1.{k}"),
            k * 70,
            1,
            false,
        ));
    }
    mixed.sort_by_key(|x| x.0);
    let dir = std::env::temp_dir().join(format!("ecir-card-agents-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spilled = run_spilling(&mixed, 4, 1, &dir);
    assert!(spilled.contains(&format!("more than {MAX_AGENTS} user agents")));
    assert_eq!(spilled, run_spilling(&mixed, 1, usize::MAX, &dir));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the card detector over contiguous chunks of `lines` in `parts` states, each writing
/// its first-seen evidence out past `mem` bytes into a spool under `dir`. Gives the findings
/// and the warnings.
fn run_evidence_spilling(
    lines: &[(i64, String)],
    parts: usize,
    mem: usize,
    dir: &std::path::Path,
) -> (String, Vec<String>) {
    let cfg = Arc::new(DetectConfig::default());
    let mut states: Vec<Card> = (0..parts)
        .map(|_| {
            let mut c = Card::new(cfg.clone());
            c.evidence_mem = mem;
            c.ev_spill_at = mem;
            c.ev_spool = ecir_spill::Spool::new(dir.to_path_buf(), "card", 0);
            c
        })
        .collect();
    observe_in_chunks(&mut states, lines);
    if mem < usize::MAX {
        assert!(
            states
                .iter()
                .any(|s| s.ev_spool.has_spilled() || s.ev_spool.memory_bytes() > 0),
            "{mem} bytes: evidence spilled"
        );
    }
    crate::testing::merged_findings_warned(states)
}

#[test]
fn first_seen_evidence_written_out_comes_back_exactly() {
    // Many images loaded from checkout early on (each keeps its lines), then a new script
    // loaded from checkout by 30 customers, some of its lines before others in the file.
    let confirm = format!("{SHOP}/shopping/confirm");
    let mut lines = browsing(
        60,
        10,
        |_| 500,
        "/html/template/default/assets/js/function.js",
    );
    for i in 0..400 {
        let ip = format!("100.64.{}.{}", i % 7, i % 200 + 1);
        let path = format!("/html/upload/save_image/item{}.jpg", i % 40);
        lines.push(l(DAY + i * 60, &ip, "GET", &path, 200, 3000, &confirm));
    }
    for i in 0..90 {
        let t = 6 * DAY + (i * 7919 % 90) * 600;
        let ip = format!("100.65.0.{}", i % 30 + 1);
        lines.push(l(
            t,
            &ip,
            "GET",
            "/html/user_data/assets/js/jq.min.js",
            200,
            7000,
            &confirm,
        ));
    }
    let dir = std::env::temp_dir();
    let (want, warnings) = run_evidence_spilling(&lines, 1, usize::MAX, &dir);
    assert!(warnings.is_empty());
    assert!(want.contains("card.first_seen_script"), "{want}");
    for parts in [1, 2, 3] {
        for mem in [0, 2_000, 20_000] {
            let (got, warnings) = run_evidence_spilling(&lines, parts, mem, &dir);
            assert_eq!(got, want, "{parts} parts, {mem} bytes");
            assert!(warnings.is_empty(), "{warnings:?}");
        }
    }
    // A spool that cannot be written keeps the lines in memory, and says so.
    let (got, warnings) = run_evidence_spilling(
        &lines,
        2,
        0,
        std::path::Path::new("/nonexistent/ecir-card-test"),
    );
    assert_eq!(got, want);
    assert!(
        warnings.iter().any(|w| w.contains("could not be written")),
        "{warnings:?}"
    );
}

/// Random splits over up to six states, spills at random points (also after merges), a
/// random merge order, and file indexes whose order differs from the names': the spool plus
/// memory always give exactly what one `TopEvidence` keeps.
#[test]
fn lazy_evidence_spilled_and_merged_in_any_tree() {
    let files: Vec<Arc<str>> = vec![Arc::from("c.log"), Arc::from("b.log"), Arc::from("a.log")];
    for seed in 0..400u64 {
        let mut next = rng(seed * 7 + 1);
        let n = 20 + next() % 200;
        let lines: Vec<(usize, u64, Option<Timestamp>, u32, String)> = (0..n)
            .map(|i| {
                let ts = (!next().is_multiple_of(5))
                    .then(|| Timestamp::from_secs((next() % 10) as i64, 0));
                let line = format!("l{i} {}", "x".repeat((next() % 50) as usize));
                let w = [10, 20][(next() % 2) as usize];
                ((next() % 3) as usize, i, ts, w, line)
            })
            .collect();
        let mut whole = TopEvidence::default();
        for (f, line, ts, w, raw) in &lines {
            let o = Origin {
                file: &files[*f],
                line: *line,
                raw: raw.as_bytes(),
            };
            whole.offer(&o, *ts, *w);
        }
        let expect = whole.into_vec();
        let parts = 1 + (next() % 6) as usize;
        let spill_every = [0u64, 3, 11, 30][(next() % 4) as usize];
        let mut states: Vec<(Arena, LazyEvidence)> =
            (0..parts).map(|_| Default::default()).collect();
        let mut spilled = Vec::new();
        for (f, line, ts, w, raw) in &lines {
            let o = Origin {
                file: &files[*f],
                line: *line,
                raw: raw.as_bytes(),
            };
            let (arena, ev) = &mut states[(next() % parts as u64) as usize];
            ev.offer(arena, &o, *ts, *w);
            if spill_every > 0 && next().is_multiple_of(spill_every) {
                ev.spill(arena, "/p.js", &mut spilled);
            }
        }
        while states.len() > 1 {
            let (a, e) = states.swap_remove((next() % states.len() as u64) as usize);
            let j = (next() % states.len() as u64) as usize;
            let (arena, ev) = &mut states[j];
            let remap = Remap {
                files: a.files.iter().map(|f| arena.file(f)).collect(),
                from: &a,
            };
            ev.merge(arena, e, &remap);
            if next().is_multiple_of(2) {
                ev.spill(arena, "/p.js", &mut spilled);
            }
        }
        let (arena, ev) = states.pop().unwrap();
        let mut got = ev.to_vec(&arena);
        decode_spilled(&spilled, &|p| p == "/p.js", &mut Vec::new(), &mut |_, e| {
            got.push(e)
        })
        .unwrap();
        got.sort_by(crate::evidence::order);
        got.truncate(ecir_model::finding::MAX_EVIDENCE);
        assert_eq!(got, expect, "seed {seed}");
    }
}

/// A path spilling fewer than `MAX_EVIDENCE` lines at a time still gets a bound once that
/// many are written, so lines in time order are written about once, not every one of them.
#[test]
fn spilling_a_few_lines_at_a_time_still_bounds_what_is_written() {
    let file: Arc<str> = Arc::from("a.log");
    let (mut arena, mut ev) = (Arena::default(), LazyEvidence::default());
    let mut spilled = Vec::new();
    for i in 0..1000u64 {
        let raw = format!("line {i}");
        let o = Origin {
            file: &file,
            line: i + 1,
            raw: raw.as_bytes(),
        };
        ev.offer(&mut arena, &o, Some(Timestamp::from_secs(i as i64, 0)), 20);
        if i % 10 == 9 {
            ev.spill(&mut arena, "/p.jpg", &mut spilled);
        }
    }
    let mut n = 0;
    decode_spilled(&spilled, &|_| true, &mut Vec::new(), &mut |_, _| n += 1).unwrap();
    assert!(ev.bound.is_some());
    assert_eq!(n, ecir_model::finding::MAX_EVIDENCE, "lines written");
    assert_eq!(arena.live, 0);
}

/// Runs the card detector over contiguous chunks of `lines` in `parts` states, each holding
/// at most `cap` paths before writing them all out under `dir`, and writing first-seen
/// evidence out past `mem` bytes. Gives the findings and the warnings.
fn run_paths_spilling(
    lines: &[(i64, String)],
    parts: usize,
    cap: usize,
    mem: usize,
    dir: &std::path::Path,
) -> (String, Vec<String>) {
    let cfg = Arc::new(DetectConfig::default());
    let mut states: Vec<Card> = (0..parts)
        .map(|_| {
            let mut c = Card::new(cfg.clone());
            c.paths_cap = cap;
            c.paths_runs = ecir_spill::Runs::new(dir.to_path_buf(), "card-paths");
            c.evidence_mem = mem;
            c.ev_spill_at = mem;
            c
        })
        .collect();
    observe_in_chunks(&mut states, lines);
    if cap < usize::MAX && dir.exists() {
        assert!(
            states.iter().any(|s| !s.paths_runs.is_empty()),
            "cap {cap}: paths written out"
        );
    }
    crate::testing::merged_findings_warned(states)
}

#[test]
fn paths_written_out_give_the_same_findings() {
    // Every per-path rule at once: a script that changes size, a new script loaded from
    // checkout, a growing file harvested by one client (and one fetched by all), images
    // loaded from checkout, and a scanner requesting a new file name each time.
    let confirm = format!("{SHOP}/shopping/confirm");
    let mut lines = browsing(
        120,
        10,
        |t| if t < 6 * DAY { 1200 } else { 3600 },
        "/html/user_data/assets/js/customize.js",
    );
    for i in 0..30 {
        let ip = format!("100.65.0.{}", i + 1);
        let t = 6 * DAY + (i * 7919 % 30) * 600;
        lines.push(l(
            t,
            &ip,
            "GET",
            "/html/user_data/assets/js/jq.min.js",
            200,
            7000,
            &confirm,
        ));
    }
    for (i, size) in [100u64, 400, 900, 1500, 20].iter().enumerate() {
        let t = i as i64 * DAY + 30;
        lines.push(l(
            t,
            "198.51.100.7",
            "GET",
            "/html/user_data/c.txt",
            200,
            *size,
            "-",
        ));
        lines.push(l(
            t,
            "198.51.100.8",
            "GET",
            "/upload/d.txt",
            200,
            50 + *size,
            "-",
        ));
    }
    for i in 0..12 {
        lines.push(l(
            DAY,
            &format!("100.66.0.{i}"),
            "GET",
            "/upload/d.txt",
            200,
            70,
            "-",
        ));
    }
    for i in 0..300 {
        let ip = format!("100.64.{}.{}", i % 5, i % 100 + 1);
        let path = format!("/html/upload/save_image/item{}.jpg", i % 25);
        lines.push(l(DAY + i * 60, &ip, "GET", &path, 200, 3000, &confirm));
        let probe = format!("/html/user_data/probe{i}.txt");
        lines.push(l(
            2 * DAY + i,
            "203.0.113.45",
            "GET",
            &probe,
            200,
            8412,
            "-",
        ));
    }
    lines.sort_by_key(|x| x.0);
    let dir = std::env::temp_dir().join(format!("ecir-card-paths-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (want, warnings) = run_paths_spilling(&lines, 1, usize::MAX, usize::MAX, &dir);
    assert!(warnings.is_empty());
    for rule in [
        "card.asset_drift",
        "card.first_seen_script",
        "card.drop_harvest",
    ] {
        assert!(want.contains(rule), "{rule}: {want}");
    }
    for parts in [1, 2, 3] {
        for cap in [1, 7, 100] {
            for mem in [usize::MAX, 0] {
                let (got, warnings) = run_paths_spilling(&lines, parts, cap, mem, &dir);
                assert_eq!(got, want, "{parts} parts, cap {cap}, {mem} bytes");
                assert!(warnings.is_empty(), "{warnings:?}");
            }
        }
    }
    // Nothing is left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
    // Paths that cannot be written out stay in memory, and the report says so.
    let (got, warnings) = run_paths_spilling(
        &lines,
        2,
        3,
        usize::MAX,
        std::path::Path::new("/nonexistent/ecir-card-test"),
    );
    assert_eq!(got, want);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("per-path state could not be written")),
        "{warnings:?}"
    );
}

#[test]
fn a_path_record_reads_back_as_written_and_damage_is_refused() {
    use ecir_spill::Record;
    let confirm = format!("{SHOP}/shopping/confirm");
    let mut lines = browsing(40, 10, |t| 1000 + t as u64 % 3, "/js/a.js");
    for i in 0..6u64 {
        lines.push(l(
            i as i64 * DAY,
            "2001:db8::7",
            "GET",
            "/js/a.js",
            200,
            100 * i,
            &confirm,
        ));
    }
    for i in 0..4u64 {
        lines.push(l(
            i as i64 * DAY,
            "198.51.100.7",
            "GET",
            "/html/user_data/c.txt",
            200,
            10 * i,
            "-",
        ));
    }
    let mut card = Card::new(Arc::new(DetectConfig::default()));
    observe_in_chunks(std::slice::from_mut(&mut card), &lines);
    let arena = std::mem::take(&mut card.arena);
    let mut paths: BTreeMap<String, (PathKey, PathState)> = card
        .paths
        .0
        .into_iter()
        .map(|(k, st)| (k.as_str().to_string(), (k, st)))
        .collect();
    // A harvest record whose counts do not match its fetches is refused as damaged.
    let (k, st) = paths.remove("/html/user_data/c.txt").unwrap();
    let mut rec = path_runs::PathRecord::detach(&k, st, &arena);
    let mut bytes = Vec::new();
    rec.encode(&mut bytes);
    assert!(path_runs::PathRecord::decode(&bytes, &mut Files::new()).is_some());
    rec.state.harvest.as_mut().unwrap().with_raw += 1;
    bytes.clear();
    rec.encode(&mut bytes);
    assert!(path_runs::PathRecord::decode(&bytes, &mut Files::new()).is_none());
    let (k, mut st) = paths.remove("/js/a.js").unwrap();
    // As if lines had been written to the evidence spool: a bound, a worst line written.
    let ev = &mut st.asset.as_mut().unwrap().ev;
    let worst = ev.items.last().unwrap().key;
    (ev.bound, ev.worst_written, ev.written) = (Some(worst), Some(ev.items[0].key), 25);
    let rec = path_runs::PathRecord::detach(&k, st, &arena);
    let mut bytes = Vec::new();
    rec.encode(&mut bytes);
    let mut files = Files::new();
    let back = path_runs::PathRecord::decode(&bytes, &mut files).unwrap();
    let mut again = Vec::new();
    back.encode(&mut again);
    assert_eq!(again, bytes);
    assert_eq!(back.key, rec.key);
    let a = back.state.asset.as_ref().unwrap();
    assert!(a.ips.v6.len() == 1 && a.ips.v4.len() == 40, "{:?}", a.ips);
    assert!(!a.ev.items.is_empty());
    assert_eq!((a.ev.bound, a.ev.written), (Some(worst), 25));
    for n in 0..bytes.len() {
        assert!(
            path_runs::PathRecord::decode(&bytes[..n], &mut files).is_none(),
            "truncated at {n}"
        );
    }
}

/// Bytes of the lines a card state's paths hold in its arena.
fn held_bytes(c: &Card) -> usize {
    c.paths
        .0
        .iter()
        .map(|(_, st)| {
            let ev: usize = st
                .asset
                .iter()
                .flat_map(|a| &a.ev.items)
                .map(|k| k.raw.len as usize)
                .sum();
            let fetches: usize = st
                .harvest
                .iter()
                .flat_map(|h| &h.fetches)
                .filter_map(|f| f.raw.map(|r| r.len as usize))
                .sum();
            ev + fetches
        })
        .sum()
}

#[test]
fn paths_that_cannot_be_written_out_keep_the_arena_accounts_right() {
    let confirm = format!("{SHOP}/shopping/confirm");
    let mut lines = Vec::new();
    for i in 0..200 {
        let ip = format!("100.64.0.{}", i % 50 + 1);
        let path = format!("/html/upload/save_image/item{}.jpg", i % 20);
        lines.push(l(DAY + i * 60, &ip, "GET", &path, 200, 3000, &confirm));
        let drop = format!("/html/user_data/d{}.txt", i % 9);
        lines.push(l(
            DAY + i * 60,
            "198.51.100.7",
            "GET",
            &drop,
            200,
            100 + i as u64,
            "-",
        ));
    }
    for (dir, writable) in [
        (std::env::temp_dir(), true),
        (
            std::path::PathBuf::from("/nonexistent/ecir-card-test"),
            false,
        ),
    ] {
        let mut c = Card::new(Arc::new(DetectConfig::default()));
        c.paths_cap = 5;
        c.paths_runs = ecir_spill::Runs::new(dir, "card-paths");
        observe_in_chunks(std::slice::from_mut(&mut c), &lines);
        assert_eq!(c.paths_error.is_none(), writable);
        assert_eq!(c.arena.live, held_bytes(&c), "writable {writable}");
        c.compact_arena();
        assert_eq!(c.arena.bytes.used, c.arena.live, "writable {writable}");
        if !writable {
            assert!(c.paths.0.len() > 5, "the paths stayed in memory");
        }
    }
}

/// A fake payment page (drop + page views + customers paying again), an image beacon, a
/// completion from a foreign referer host, and `noise` invented beacon and drop paths (one
/// client each: never findings) and referer hosts, as forged requests would make them,
/// interleaved with the rest.
fn named_table_lines(noise: usize) -> Vec<(i64, String)> {
    let confirm = format!("{SHOP}/shopping/confirm");
    let b64 =
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkrLw=="
            .repeat(2);
    let mut lines = orders_from("https://pay-secure.example.net/card", 3);
    for i in 0..4 {
        let ip = format!("100.64.0.{}", i + 1);
        let t = i * 3000;
        lines.push(l(t, &ip, "GET", "/user_data/card.php", 200, 5200, &confirm));
        lines.push(l(
            t + 61,
            &ip,
            "POST",
            "/user_data/card.php",
            200,
            900,
            &confirm,
        ));
        lines.push(l(
            t + 200,
            &ip,
            "POST",
            "/shopping/checkout",
            302,
            0,
            &confirm,
        ));
        let beacon = format!("/html/user_data/p.gif?d={b64}");
        lines.push(l(t + 5, &ip, "GET", &beacon, 200, 43, &confirm));
    }
    // Half of the noise among the fake page's requests, half among the completions, so
    // that their names' hits are written out in parts and combined when read back.
    for i in 0..noise {
        let t = if i % 2 == 0 {
            i as i64 * 10_000 / noise as i64
        } else {
            3 * DAY + i as i64 * 3 / noise as i64
        };
        let ip = format!("203.0.113.{}", i % 200 + 1);
        let path = format!("/img/x{i}.png?d={b64}");
        lines.push(l(t, &ip, "GET", &path, 200, 43, "-"));
        lines.push(l(t, &ip, "POST", &format!("/u{i}.php"), 200, 2, &confirm));
        lines.push(l(t, &ip, "GET", &format!("/v{i}.php"), 200, 2, &confirm));
        let host = format!("https://h{i}.example.org/pay");
        lines.push(l(t, &ip, "GET", "/shopping/complete", 200, 7000, &host));
    }
    lines.sort_by_key(|x| x.0);
    lines
}

/// The findings of `lines` over `parts` states whose named tables hold `cap` names in
/// memory (spilling under `dir`), each state parked at its end when `park`.
fn run_named_tables(
    lines: &[(i64, String)],
    parts: usize,
    cap: usize,
    dir: &std::path::Path,
    park: bool,
) -> String {
    let cfg = Arc::new(DetectConfig::default());
    let mut states: Vec<Card> = (0..parts)
        .map(|_| {
            let mut c = Card::new(cfg.clone());
            let t = || SpillMap::with_dir(cap, dir.to_path_buf(), "card-names");
            c.drops = t();
            c.beacons = t();
            c.completion_refs = t();
            c.offflow_gets = SpillMap::with_dir(cap, dir.to_path_buf(), "card-names");
            c
        })
        .collect();
    observe_in_chunks(&mut states, lines);
    if park {
        states.iter_mut().for_each(|s| s.park());
    }
    if cap < usize::MAX {
        let any = |f: fn(&Card) -> bool| states.iter().any(f);
        assert!(any(|s| s.beacons.has_spilled()) && any(|s| s.drops.has_spilled()));
        assert!(any(|s| s.offflow_gets.has_spilled()) && any(|s| s.completion_refs.has_spilled()));
    }
    crate::testing::merged_findings(states)
}

#[test]
fn named_tables_written_out_give_the_same_findings() {
    let lines = named_table_lines(300);
    let dir = std::env::temp_dir().join(format!("ecir-card-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let want = run_named_tables(&lines, 1, usize::MAX, &dir, false);
    for rule in [
        "card.fake_payment_page",
        "card.image_beacon",
        "card.foreign_referer_completion",
    ] {
        assert!(want.contains(rule), "{rule}: {want}");
    }
    // The invented names (one client each) make no finding of their own.
    assert!(!want.contains("/img/x1.png"), "{want}");
    for parts in [1, 2, 3] {
        for cap in [1, 7, 100] {
            let got = run_named_tables(&lines, parts, cap, &dir, false);
            assert!(got == want, "{parts} parts, cap {cap}: the findings differ");
        }
        let got = run_named_tables(&lines, parts, named_hits::NAME_CAP, &dir, true);
        assert!(got == want, "{parts} parts, parked: the findings differ");
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "runs removed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_flood_of_invented_names_is_not_held_in_memory() {
    let lines = named_table_lines(3 * named_hits::NAME_CAP);
    let mut c = Card::new(Arc::new(DetectConfig::default()));
    observe_in_chunks(std::slice::from_mut(&mut c), &lines);
    for (what, n) in [
        ("drops", c.drops.in_memory()),
        ("beacons", c.beacons.in_memory()),
        ("completion hosts", c.completion_refs.in_memory()),
        ("off-flow views", c.offflow_gets.in_memory()),
    ] {
        assert!(n <= named_hits::NAME_CAP, "{what}: {n} in memory");
    }
    assert!(c.beacons.has_spilled());
    let f = crate::testing::merged_findings(vec![c]);
    assert!(f.contains("card.fake_payment_page") && f.contains("card.image_beacon"));
    // One finding per referer host for the most used ones, the invented ones summed.
    let hosts = f
        .matches("\"rule\":\"card.foreign_referer_completion\"")
        .count();
    assert_eq!(
        hosts,
        MAX_NAMED_FINDINGS + 1,
        "{hosts} referer host findings"
    );
    assert!(f.contains("Order completion reached from pay-secure.example.net"));
    let more = format!(
        "Order completions reached from {} more hosts",
        3 * named_hits::NAME_CAP - MAX_NAMED_FINDINGS + 1
    );
    assert!(f.contains(&more), "{more}");
}

#[test]
fn ranked_names_keep_the_most_used_whatever_the_order() {
    use named_hits::{rank, NamedHits};
    let item = |i: usize| {
        let mut h = PathHits {
            ips: SmallestSet::new(MAX_PATH_IPS),
            count: (i % 7) as u64 + 1,
            ..Default::default()
        };
        for k in 0..(i % 5) {
            h.ips
                .insert(IpAddr::from([10, 0, (i / 256) as u8, k as u8]));
        }
        NamedHits {
            name: format!("h{i:03}.example").into(),
            hits: h,
        }
    };
    let names = |r: &named_hits::Ranked| {
        let mut v: Vec<String> = r.kept.iter().map(|n| n.name.to_string()).collect();
        v.sort();
        v
    };
    let forward = rank((0..250).map(item), 100);
    let backward = rank((0..250).rev().map(item), 100);
    assert_eq!(names(&forward), names(&backward));
    assert_eq!(forward.kept.len(), 100);
    assert_eq!((forward.rest_names, backward.rest_names), (150, 150));
    // Every kept name has at least as many clients as any summed one.
    let least_kept = forward.kept.iter().map(|n| n.clients()).min().unwrap();
    assert!(least_kept >= forward.rest_most_clients);
    // Nothing is lost: the hits kept and summed add up.
    let total: u64 = (0..250).map(|i| item(i).hits.count).sum();
    let kept: u64 = forward.kept.iter().map(|n| n.hits.count).sum();
    assert_eq!(kept + forward.rest.count, total);
    assert_eq!(forward.rest.count, backward.rest.count);
}

#[test]
fn paths_forged_from_a_few_addresses_past_the_most_used_are_summed() {
    let confirm = format!("{SHOP}/shopping/confirm");
    let b64 =
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkrLw=="
            .repeat(2);
    let mut lines = Vec::new();
    for i in 0..250i64 {
        for k in 0..3 {
            let ip = format!("198.51.100.{}", k + 1);
            let beacon = format!("/img/y{i}.png?d={b64}");
            lines.push(l(i * 10 + k, &ip, "GET", &beacon, 200, 43, "-"));
            let drop = format!("/w{i}.php");
            lines.push(l(i * 10 + k, &ip, "POST", &drop, 200, 2, &confirm));
        }
    }
    let f = run(&lines);
    for (rule, title) in [
        (
            "card.image_beacon",
            "Image requests carrying long encoded data: 150 more paths",
        ),
        (
            "card.exfil_drop",
            "Customers' browsers sent data to 150 more paths from checkout",
        ),
    ] {
        let of_rule: Vec<&Finding> = f.iter().filter(|x| x.rule == rule).collect();
        assert_eq!(of_rule.len(), MAX_NAMED_FINDINGS + 1, "{rule}");
        let rest: Vec<&&Finding> = of_rule.iter().filter(|x| x.paths.is_empty()).collect();
        assert_eq!(rest.len(), 1, "{rule}: one summed finding");
        assert_eq!(rest[0].title, title);
        assert_eq!(
            rest[0].count,
            150 * 3,
            "{rule}: every request of the summed paths"
        );
    }
    let split = run_cfg(&lines, 3, DetectConfig::default());
    assert_eq!(format!("{f:?}"), format!("{split:?}"));
}

/// Completion hits from many customers, some logged twice (a reload in the same second).
fn completion_flood(n: usize) -> Vec<(i64, String)> {
    let confirm = format!("{SHOP}/shopping/confirm");
    let mut v = Vec::new();
    for i in 0..n {
        let ip = format!("2001:db8::{:x}", i % 997 + 1);
        let t = (i as i64 * 7919) % 100_000;
        v.push(l(t, &ip, "GET", "/shopping/complete", 200, 5000, &confirm));
        if i % 5 == 0 {
            v.push(l(t, &ip, "GET", "/shopping/complete", 200, 5000, &confirm));
        }
    }
    v
}

fn orders_of(mut states: Vec<Card>) -> Vec<OrderHit> {
    let mut first = states.remove(0);
    for s in states {
        DetectorState::merge(&mut first, Box::new(s));
    }
    let ctx = FinishContext::new(0);
    let hits: Vec<OrderHit> = first.take_orders().into_time_order(&ctx).collect();
    assert!(ctx.take_warnings().is_empty());
    hits
}

#[test]
fn completion_hits_written_out_are_read_back_exactly_in_time_order() {
    let lines = completion_flood(3000);
    let dir = std::env::temp_dir().join(format!("ecir-card-orders-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let want: Vec<OrderHit> = {
        let mut c = Card::new(Arc::new(DetectConfig::default()));
        observe_in_chunks(std::slice::from_mut(&mut c), &lines);
        assert!(!c.orders.has_spilled());
        orders_of(vec![c])
    };
    // Each distinct (time, client, agent) once, in time order.
    assert_eq!(want.len(), 3000);
    assert!(want.windows(2).all(|w| w[0] < w[1]));
    for parts in [1, 2, 3] {
        for (cap, park) in [(1, false), (50, false), (50, true), (ORDERS_CAP, true)] {
            let mut states: Vec<Card> = (0..parts)
                .map(|_| {
                    let mut c = Card::new(Arc::new(DetectConfig::default()));
                    c.orders = SpillMap::with_dir(cap, dir.clone(), "card-orders");
                    c
                })
                .collect();
            observe_in_chunks(&mut states, &lines);
            if park {
                states.iter_mut().for_each(|s| s.park());
            }
            for s in &states {
                let held = s.orders.in_memory();
                assert!(
                    held <= cap && (!park || held == 0),
                    "cap {cap}, park {park}"
                );
            }
            if cap < 100 {
                assert!(states.iter().all(|s| s.orders.has_spilled()));
            }
            let got = orders_of(states);
            assert!(got == want, "{parts} parts, cap {cap}, park {park}");
        }
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "runs removed");
    let _ = std::fs::remove_dir_all(&dir);
}
