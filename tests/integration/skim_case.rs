//! A generated two-week EC-CUBE 4 case with a planted skimmer: staff work, customers shop and
//! pay, a stolen admin session edits the shop's JavaScript, a drop file collects card data and
//! the attacker harvests it. The generator is deterministic (a fixed-seed LCG) and returns what
//! it planted, so the test can check the exposure window and the order count exactly.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{FixedOffset, TimeZone};

use crate::support::{run, scan_json, temp_dir};

/// Fixed-seed linear congruential generator (Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the generator planted.
pub struct Planted {
    /// Unix seconds of the skimmer injection (the admin POST to /admin/content/js).
    pub injection: i64,
    /// Checkout sessions that reached the completion page at or after the injection.
    pub orders_after: u64,
    pub ips_after: BTreeSet<String>,
    pub orders_total: u64,
}

const START: i64 = 1_793_545_200; // 2026-11-02T00:00:00+09:00
const DAY: i64 = 86_400;
const SHOP: &str = "https://shop.example.jp";
const UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
];

fn ts(t: i64) -> String {
    let tz = FixedOffset::east_opt(9 * 3600).unwrap();
    tz.timestamp_opt(t, 0)
        .unwrap()
        .format("%d/%b/%Y:%H:%M:%S %z")
        .to_string()
}

struct Log(Vec<(i64, u64, String)>);

impl Log {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        t: i64,
        ip: &str,
        req: &str,
        status: u16,
        bytes: u64,
        referer: &str,
        ua: &str,
    ) {
        let n = self.0.len() as u64;
        self.0.push((
            t,
            n,
            format!(
                "{ip} - - [{}] \"{req}\" {status} {bytes} \"{referer}\" \"{ua}\"\n",
                ts(t)
            ),
        ));
    }
}

/// Writes `access.log` into `dir` and returns what was planted.
pub fn generate(dir: &Path) -> Planted {
    let mut r = Lcg(0x5eed_ec1e);
    let mut log = Log(Vec::new());
    let injection = START + 5 * DAY + 14 * 3600 + 23 * 60 + 7;
    let end = START + 14 * DAY;
    let mut planted = Planted {
        injection,
        orders_after: 0,
        ips_after: BTreeSet::new(),
        orders_total: 0,
    };

    // Staff: a daily login and order work from the office, a block edit on day 3 (a release).
    let staff = "203.0.113.10";
    let sua = UAS[0];
    for d in 0..14 {
        let t = START + d * DAY + 10 * 3600;
        log.add(t, staff, "GET /admin/login HTTP/1.1", 200, 4100, "-", sua);
        log.add(
            t + 20,
            staff,
            "POST /admin/login HTTP/1.1",
            302,
            0,
            &format!("{SHOP}/admin/login"),
            sua,
        );
        log.add(
            t + 21,
            staff,
            "GET /admin/ HTTP/1.1",
            200,
            9000,
            &format!("{SHOP}/admin/login"),
            sua,
        );
        log.add(
            t + 90,
            staff,
            "GET /admin/order HTTP/1.1",
            200,
            12000,
            &format!("{SHOP}/admin/"),
            sua,
        );
        if d == 3 {
            log.add(
                t + 300,
                staff,
                "GET /admin/content/block/7/edit HTTP/1.1",
                200,
                8000,
                &format!("{SHOP}/admin/"),
                sua,
            );
            log.add(
                t + 400,
                staff,
                "POST /admin/content/block/7/edit HTTP/1.1",
                302,
                0,
                &format!("{SHOP}/admin/content/block/7/edit"),
                sua,
            );
        }
    }

    // The attacker: a stolen admin session edits the shop's JavaScript, then harvests daily.
    let atk = "198.51.100.7";
    let aua = UAS[0];
    log.add(
        injection - 60,
        atk,
        "GET /admin/content/js HTTP/1.1",
        200,
        7000,
        "-",
        aua,
    );
    log.add(
        injection,
        atk,
        "POST /admin/content/js HTTP/1.1",
        302,
        0,
        &format!("{SHOP}/admin/content/js"),
        aua,
    );
    let drop = "/html/user_data/packages/cache.php";
    let loot = "/html/user_data/packages/cache.txt";
    let mut loot_size = 0u64;

    // Customers.
    let mut t = START + 3600;
    let mut session = 0u64;
    while t < end {
        session += 1;
        let ip = format!("100.64.{}.{}", r.below(200), 1 + r.below(250));
        let fam = r.below(2) as usize;
        let ua = UAS[fam];
        let skimmed = t >= injection;
        let (fn_js, custom_js) = match (fam, skimmed) {
            (0, false) => (5000, 1200),
            (0, true) => (5000, 3400),
            (_, false) => (1800, 480),
            (_, true) => (1800, 1290),
        };
        let page = |log: &mut Log, at: i64, path: &str, bytes: u64, referer: &str| {
            log.add(
                at,
                &ip,
                &format!("GET {path} HTTP/1.1"),
                200,
                bytes,
                referer,
                ua,
            );
            let me = format!("{SHOP}{path}");
            log.add(
                at + 1,
                &ip,
                "GET /html/template/default/assets/js/function.js HTTP/1.1",
                200,
                fn_js,
                &me,
                ua,
            );
            log.add(
                at + 1,
                &ip,
                "GET /html/user_data/assets/js/customize.js HTTP/1.1",
                200,
                custom_js,
                &me,
                ua,
            );
        };
        page(&mut log, t, "/", 20000, "-");
        page(
            &mut log,
            t + 30,
            &format!("/products/detail/{}", 1 + r.below(40)),
            15000,
            &format!("{SHOP}/"),
        );
        if r.below(3) == 0 {
            page(
                &mut log,
                t + 90,
                "/cart",
                9000,
                &format!("{SHOP}/products/detail/1"),
            );
            page(
                &mut log,
                t + 120,
                "/shopping",
                11000,
                &format!("{SHOP}/cart"),
            );
            let confirm = format!("{SHOP}/shopping/confirm");
            log.add(
                t + 150,
                &ip,
                "POST /shopping/confirm HTTP/1.1",
                200,
                10000,
                &format!("{SHOP}/shopping"),
                ua,
            );
            if skimmed {
                log.add(
                    t + 170,
                    &ip,
                    &format!("POST {drop} HTTP/1.1"),
                    200,
                    2,
                    &confirm,
                    ua,
                );
                loot_size += 180 + r.below(40);
            }
            // One in five has a card declined two or three times first.
            let mut at = t + 180;
            if r.below(5) == 0 {
                for _ in 0..(2 + r.below(2)) {
                    log.add(
                        at,
                        &ip,
                        "POST /shopping/checkout HTTP/1.1",
                        302,
                        0,
                        &confirm,
                        ua,
                    );
                    log.add(
                        at + 1,
                        &ip,
                        "GET /shopping/error HTTP/1.1",
                        200,
                        6000,
                        &confirm,
                        ua,
                    );
                    at += 60;
                }
            }
            log.add(
                at,
                &ip,
                "POST /shopping/checkout HTTP/1.1",
                302,
                0,
                &confirm,
                ua,
            );
            log.add(
                at + 1,
                &ip,
                "GET /shopping/complete HTTP/1.1",
                200,
                7000,
                &confirm,
                ua,
            );
            // Some customers reload the completion page: still one order.
            if r.below(6) == 0 {
                log.add(
                    at + 120,
                    &ip,
                    "GET /shopping/complete HTTP/1.1",
                    200,
                    7000,
                    &confirm,
                    ua,
                );
            }
            planted.orders_total += 1;
            if at + 1 >= injection {
                planted.orders_after += 1;
                planted.ips_after.insert(ip.clone());
            }
        }
        t += 300 + r.below(900) as i64 + (session % 7) as i64;
    }
    // Harvest: every day at 03:00 after the injection, growing.
    let mut d = 6;
    while START + d * DAY + 3 * 3600 < end {
        let at = START + d * DAY + 3 * 3600;
        let size = loot_size * (d as u64 - 5) / 9 + 100;
        log.add(
            at,
            atk,
            &format!("GET {loot} HTTP/1.1"),
            200,
            size,
            "-",
            aua,
        );
        d += 1;
    }
    log.0.sort();
    let text: String = log.0.into_iter().map(|(_, _, l)| l).collect();
    std::fs::write(dir.join("access.log"), text).unwrap();
    planted
}

#[test]
fn exposure_window_matches_the_planted_skimmer() {
    let dir = temp_dir("skim-case");
    let p = generate(&dir);
    let (_, rep) = scan_json(&[
        "--fail-on",
        "never",
        "--tz",
        "Asia/Tokyo",
        dir.to_str().unwrap(),
    ]);
    let exp = &rep["exposure"];
    assert!(exp.is_object(), "no exposure: {}", rep["findings"]);
    let start = ecir_model::Timestamp::parse_rfc3339(exp["start"].as_str().unwrap()).unwrap();
    let d = start.secs() - p.injection;
    assert!(
        (0..3600).contains(&d),
        "window starts {d}s from the injection ({})",
        exp["start"]
    );
    assert_eq!(exp["start_basis"], "tampering");
    assert_eq!(exp["completed_orders"].as_u64().unwrap(), p.orders_after);
    assert_eq!(
        exp["distinct_customer_ips"].as_u64().unwrap(),
        p.ips_after.len() as u64
    );
    assert!(p.orders_after > 50 && p.orders_after < p.orders_total);
    let per_day_sum: u64 = exp["per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["completed_orders"].as_u64().unwrap())
        .sum();
    assert_eq!(per_day_sum, p.orders_after);
    // The basis names findings of the report.
    let ids: Vec<&str> = rep["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    for b in exp["basis"].as_array().unwrap() {
        assert!(
            ids.contains(&b.as_str().unwrap()),
            "basis {b} is not a finding id"
        );
    }
    let rules: Vec<&str> = rep["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for want in [
        "card.code_planting",
        "card.asset_drift",
        "card.exfil_drop",
        "card.drop_harvest",
        "chain.skimming",
    ] {
        assert!(rules.contains(&want), "{want} missing: {rules:?}");
    }
    // Customers retrying a declined card are not card testing; staff's release is not planting.
    assert!(
        !rules.iter().any(|r| r.starts_with("cardtest.")),
        "{rules:?}"
    );
    let staff_edit = rep["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "card.code_planting" && f["ips"][0] == "203.0.113.10");
    if let Some(f) = staff_edit {
        assert_eq!(f["severity"], "medium", "{f}");
    }

    // --contained-at closes the window earlier: fewer orders.
    let (_, rep2) = scan_json(&[
        "--fail-on",
        "never",
        "--tz",
        "Asia/Tokyo",
        "--contained-at",
        "2026-11-09 00:00",
        dir.to_str().unwrap(),
    ]);
    let n2 = rep2["exposure"]["completed_orders"].as_u64().unwrap();
    assert!(n2 < p.orders_after && n2 > 0, "{n2}");
    assert_eq!(rep2["exposure"]["end_basis"], "contained-at");

    // The terminal summary shows the window and the count.
    let out = run(&[
        "scan",
        "--fail-on",
        "never",
        "--tz",
        "Asia/Tokyo",
        dir.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Exposure window"), "{text}");
    assert!(
        text.contains(&format!("{} completed order", p.orders_after)),
        "{text}"
    );
    if std::env::var_os("ECIR_KEEP_CASE").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn determinism_across_threads() {
    let dir = temp_dir("skim-case-j");
    generate(&dir);
    let p = dir.to_str().unwrap();
    let a = crate::support::normalise(
        scan_json(&["-j", "1", "--chunk-size", "65536", "--fail-on", "never", p]).1,
    );
    let b = crate::support::normalise(
        scan_json(&["-j", "2", "--chunk-size", "65536", "--fail-on", "never", p]).1,
    );
    assert_eq!(a, b);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A normal release day, a marketing tag added by staff, a flash sale with customers retrying
/// declined cards: nothing high, no exposure window, no card testing, no chain.
#[test]
fn card_negatives_stay_below_high() {
    for name in ["release-day", "marketing-tag", "flash-sale"] {
        let path = crate::support::root()
            .join("tests/fixtures/rules")
            .join(format!("negative.{name}.log"));
        let (_, rep) = scan_json(&[
            "--fail-on",
            "never",
            "--tz",
            "Asia/Tokyo",
            path.to_str().unwrap(),
        ]);
        assert!(rep["exposure"].is_null(), "{name}: {}", rep["exposure"]);
        for f in rep["findings"].as_array().unwrap() {
            let sev = f["severity"].as_str().unwrap();
            let rule = f["rule"].as_str().unwrap();
            assert!(
                !matches!(sev, "high" | "critical"),
                "{name}: {rule} is {sev}"
            );
            assert!(
                !rule.starts_with("cardtest.")
                    && !rule.starts_with("chain.")
                    && rule != "card.first_seen_script",
                "{name}: {rule}"
            );
        }
    }
    // The release is visible, but low: several assets changed together after a staff edit.
    let path = crate::support::root().join("tests/fixtures/rules/negative.release-day.log");
    let (_, rep) = scan_json(&["--fail-on", "never", path.to_str().unwrap()]);
    let drift: Vec<&serde_json::Value> = rep["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "card.asset_drift")
        .collect();
    assert_eq!(drift.len(), 3);
    assert!(drift.iter().all(|f| f["severity"] == "low"));
}
