//! Admin-compromise evidence from several sources in one directory: access log, EC-CUBE 2/3/4
//! app logs, a `dtb_login_history` export and `secure` are each read with the right parser
//! without `--format`, and one login seen in three of them counts once, citing each.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::{line, normalise, scan_json, temp_dir, write};

const ATTACKER: &str = "203.0.113.7";
const OFFICE: &str = "192.0.2.10";
const UA: &str = "Mozilla/5.0";

/// A shop's collected logs: `n` failed admin logins from the attacker at 03:14 JST, then one
/// success, in the access log, the EC-CUBE 4 site log and the login history; plus other
/// sources that only need reading.
fn collected(dir: &Path, n: u32) {
    let mut access = String::new();
    let mut site = String::new();
    let mut hist = String::from(
        "\u{feff}create_date,user_name,client_ip,login_history_status_id,member_id\r\n",
    );
    // Office staff first.
    access += &line(
        OFFICE,
        "12/Mar/2024:02:00:00 +0900",
        "GET /admin/login HTTP/1.1",
        200,
        900,
        UA,
    );
    access += &line(
        OFFICE,
        "12/Mar/2024:02:00:08 +0900",
        "POST /admin/login HTTP/1.1",
        302,
        0,
        UA,
    );
    access += &line(
        OFFICE,
        "12/Mar/2024:02:00:09 +0900",
        "GET /admin/ HTTP/1.1",
        200,
        5000,
        UA,
    );
    hist += &format!("2024-03-11 17:00:08,tanaka,{OFFICE},1,3\r\n");
    for i in 0..=n {
        let s = 15 * i;
        let (mm, ss) = (14 + s / 60, s % 60);
        let ok = i == n;
        let jst = format!("12/Mar/2024:03:{mm:02}:{ss:02} +0900");
        access += &line(
            ATTACKER,
            &jst,
            "POST /admin/login HTTP/1.1",
            302,
            0,
            "python-requests/2.31",
        );
        let next = if ok {
            "GET /admin/ HTTP/1.1"
        } else {
            "GET /admin/login HTTP/1.1"
        };
        let jst1 = format!("12/Mar/2024:03:{mm:02}:{:02} +0900", ss + 1);
        access += &line(ATTACKER, &jst1, next, 200, 900, "python-requests/2.31");
        site += &format!(
            "[2024-03-12T03:{mm:02}:{ss:02}.101010+09:00] security.INFO [9b1d22aa] [4c1f0a9] [N/A] [Symfony\\Component\\Security\\Http\\Authentication\\AuthenticatorManager:executeAuthenticator:218] - {} [] [POST, /admin/login, {ATTACKER}, https://shop.example.jp/admin/login, python-requests/2.31]\n",
            if ok { "Authenticator successful!" } else { "Authenticator failed." }
        );
        // The table stores UTC.
        hist += &format!(
            "2024-03-11 18:{mm:02}:{ss:02},admin,{ATTACKER},{},{}\r\n",
            u8::from(ok),
            if ok { "1" } else { "" }
        );
    }
    write(dir, "access.log", access);
    std::fs::create_dir_all(dir.join("var/log/prod")).unwrap();
    write(&dir.join("var/log/prod"), "site-2024-03-12.log", site);
    write(dir, "login_history.csv", hist);
    std::fs::create_dir_all(dir.join("app/log")).unwrap();
    write(
        &dir.join("app/log"),
        "admin_site_2024-03-12.log",
        "[2024-03-12 09:12:12,132] admin.INFO [83fdklt8] [1484] [1] [Eccube\\Controller\\Admin\\AdminController:index:34] - 処理を開始しました。 [] [] [GET, /admin/, 192.0.2.10, https://shop.example.jp/admin/login, Mozilla/5.0]\n",
    );
    std::fs::create_dir_all(dir.join("data/logs")).unwrap();
    write(
        &dir.join("data/logs"),
        "admin.log",
        "2024/03/12 09:14:15 [/mgr_x9k2/index.php] tanaka password incorrect. from 192.0.2.10\n\
         login_id = (0)[8c1e0e7b]\n\
         2024/03/12 09:14:22 [/mgr_x9k2/index.php] login: user=tanaka(3) auth=0 lastlogin=2024-03-11 09:12:44 sid=8c1e0e7b from 192.0.2.10\n\
         login_id = tanaka(0)[8c1e0e7b]\n",
    );
    let mut secure = String::new();
    for i in 0..12 {
        secure += &format!(
            "Mar 12 02:30:{i:02} shop sshd[4242]: Failed password for root from {ATTACKER} port {} ssh2\n",
            40000 + i
        );
    }
    write(dir, "secure", secure);
}

#[test]
fn mixed_directory_reads_each_file_with_its_parser() {
    let d = temp_dir("admin-mixed");
    collected(&d, 7);
    let ds = d.display().to_string();
    let (_, report) = scan_json(&[
        "--fail-on",
        "never",
        "--tz",
        "Asia/Tokyo",
        "--year",
        "2024",
        &ds,
    ]);
    let mut seen = Vec::new();
    for input in report["inputs"].as_array().unwrap() {
        let path = input["path"].as_str().unwrap();
        let base = path.rsplit('/').next().unwrap();
        let (lines, parsed, skipped) = (
            input["lines"].as_u64().unwrap(),
            input["parsed"].as_u64().unwrap(),
            input["skipped"].as_u64().unwrap(),
        );
        assert_eq!(lines, parsed + skipped, "{path}: every line accounted for");
        assert_eq!(input["format_basis"], "detected", "{path}");
        seen.push((
            base.to_string(),
            input["format"].as_str().unwrap().to_string(),
            input["source"].as_str().unwrap().to_string(),
            skipped,
        ));
    }
    seen.sort();
    let expect = |name: &str, format: &str, source: &str, skipped: u64| {
        (
            name.to_string(),
            format.to_string(),
            source.to_string(),
            skipped,
        )
    };
    assert_eq!(
        seen,
        vec![
            expect("access.log", "combined", "web", 0),
            expect("admin.log", "eccube2-log", "app", 0),
            expect("admin_site_2024-03-12.log", "eccube3-log", "app", 0),
            // The header row is the one skipped line.
            expect(
                "login_history.csv",
                "eccube-login-history",
                "admin-login",
                1
            ),
            expect("secure", "auth-log", "auth", 0),
            expect("site-2024-03-12.log", "eccube4-log", "app", 0),
        ]
    );

    let findings = report["findings"].as_array().unwrap();
    let find = |rule: &str| {
        findings
            .iter()
            .find(|f| f["rule"] == rule)
            .unwrap_or_else(|| panic!("{rule} missing: {findings:#?}"))
    };
    let bf = find("admin.brute_force");
    assert_eq!(
        bf["count"], 7,
        "each failed login once, though three sources saw it"
    );
    assert_eq!(bf["ips"], serde_json::json!([ATTACKER]));
    assert_eq!(bf["users"], serde_json::json!(["admin"]));
    assert_eq!(bf["playbook"], "admin-takeover");
    let s = find("admin.success_after_failures");
    assert_eq!(s["severity"], "critical");
    let files: BTreeSet<String> = s["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let f = e["file"].as_str().unwrap();
            f.rsplit('/').next().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        files,
        ["access.log", "login_history.csv", "site-2024-03-12.log"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        "the success cites every source"
    );
    // The office mistype in the EC-CUBE 2 log is not a finding about the office IP.
    assert!(findings
        .iter()
        .filter(|f| f["severity"] != "info")
        .all(|f| !f["ips"].as_array().unwrap().iter().any(|i| i == OFFICE)));
    assert!(findings.iter().any(|f| f["rule"] == "host.ssh_brute_force"));
}

#[test]
fn mixed_directory_is_the_same_split_across_workers() {
    let d = temp_dir("admin-mixed-split");
    collected(&d, 60);
    let ds = d.display().to_string();
    let base = ["--fail-on", "never", "--tz", "Asia/Tokyo", "--year", "2024"];
    let mut one = base.to_vec();
    one.extend(["-j", "1", &ds]);
    let mut two = base.to_vec();
    two.extend(["-j", "2", "--chunk-size", "1024", &ds]);
    let (_, a) = scan_json(&one);
    let (_, b) = scan_json(&two);
    let bf = a["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "admin.brute_force")
        .expect("brute force");
    assert_eq!(bf["count"], 60);
    assert_eq!(normalise(a), normalise(b));
}

/// CrowdSec hub's Magento tests: the bouncer's event log is read without `--format`, its
/// admin login failures feed `admin.brute_force` for the labelled IP, and the parser test's
/// mixed event types all parse without any being taken for an admin login.
#[test]
fn crowdsec_magento_admin_brute_force_agrees() {
    let Some(base) = crate::support::corpus("crowdsec-hub-tests") else {
        return;
    };
    let index = std::fs::read_to_string(base.join("INDEX.tsv")).unwrap();
    let row: Vec<&str> = index
        .lines()
        .find(|l| l.starts_with("http-magento-bf\t"))
        .expect("http-magento-bf in INDEX.tsv")
        .split('\t')
        .collect();
    let (lines, alerts, ips) = (row[3], row[4], row[6]);
    let log = base.join("tests/http-magento-bf").join(row[1]);
    let (_, r) = scan_json(&["--fail-on", "never", log.to_str().unwrap()]);
    assert_eq!(r["inputs"][0]["format"], "magento-log");
    assert_eq!(
        r["inputs"][0]["parsed"].as_u64().unwrap().to_string(),
        lines
    );
    let bf: Vec<&serde_json::Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "admin.brute_force")
        .collect();
    eprintln!(
        "crowdsec http-magento-bf: {} admin.brute_force finding(s) (crowdsec expects {alerts} alert(s) for {ips}); ips {:?}",
        bf.len(),
        bf.iter().map(|f| f["ips"].clone()).collect::<Vec<_>>()
    );
    assert_eq!(bf.len().to_string(), alerts);
    assert_eq!(bf[0]["ips"], serde_json::json!([ips]));
    assert_eq!(bf[0]["count"].as_u64().unwrap().to_string(), lines);

    let log = base.join("tests/magento-extension-logs/magento-extension-logs.log");
    let (_, r) = scan_json(&["--fail-on", "never", log.to_str().unwrap()]);
    let i = &r["inputs"][0];
    assert_eq!(i["format"], "magento-log");
    assert_eq!(
        i["parsed"],
        i["lines"].as_u64().unwrap() - i["skipped_by_reason"]["empty"].as_u64().unwrap_or(0)
    );
    // One failed admin login is not an attack.
    assert!(r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["severity"] == "info" || f["category"] != "admin-compromise"));
}

/// A botnet: more addresses each brute-forcing the admin login than ecir lists one by one.
/// The busiest are listed, the rest summed in one finding, and the report stays readable.
#[test]
fn brute_force_from_more_addresses_than_listed_is_summed() {
    let dir = temp_dir("admin-botnet");
    let n = ecir_detect::client_cap::MAX_CLIENT_FINDINGS + 4;
    let mut hist =
        String::from("create_date,user_name,client_ip,login_history_status_id,member_id\n");
    for i in 0..n {
        // Six failures each, except the last address which fails seven times.
        let tries = if i == n - 1 { 7 } else { 6 };
        for k in 0..tries {
            hist += &format!(
                "2024-03-12 {:02}:{:02}:{:02},admin,10.1.{}.{},0,\n",
                i / 60 % 24,
                i % 60,
                k,
                i / 250,
                i % 250 + 1
            );
        }
    }
    write(&dir, "login_history.csv", hist);
    let (_, report) = scan_json(&["--fail-on", "never", dir.to_str().unwrap()]);
    let brute: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "admin.brute_force")
        .collect();
    assert_eq!(
        brute.len(),
        ecir_detect::client_cap::MAX_CLIENT_FINDINGS + 1
    );
    let sum: Vec<&&serde_json::Value> = brute
        .iter()
        .filter(|f| f["ips"].as_array().unwrap().len() > 1)
        .collect();
    assert_eq!(sum.len(), 1);
    assert_eq!(sum[0]["title"], "admin.brute_force from 4 more IP(s)");
    assert_eq!(sum[0]["count"], 24);
    // The address that failed most is listed on its own.
    let busiest = format!("10.1.{}.{}", (n - 1) / 250, (n - 1) % 250 + 1);
    assert!(brute
        .iter()
        .any(|f| f["ips"] == serde_json::json!([busiest]) && f["count"] == 7));
}
