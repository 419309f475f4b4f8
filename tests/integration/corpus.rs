//! Checks against third-party logs in `../shared/corpus` (skipped, with a message, when the
//! corpus is absent): parse rates, a false-positive baseline, and agreement with the
//! CrowdSec hub's labelled attack tests.

use crate::support::{corpus, scan_json};

#[test]
fn elastic_benign_apache_logs_parse_and_stay_quiet() {
    let Some(dir) = corpus("elastic-examples-apache-logs") else {
        return;
    };
    let (_, r) = scan_json(&[
        "--fail-on",
        "never",
        dir.join("apache_logs").to_str().unwrap(),
    ]);
    let i = &r["inputs"][0];
    assert_eq!(i["format"], "combined");
    assert_eq!(i["lines"], 10_000);
    let parsed = i["parsed"].as_u64().unwrap();
    assert!(
        parsed >= 9_990,
        "parsed only {parsed} of 10000 real combined lines"
    );
    let loud: Vec<String> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "low" && f["severity"] != "info")
        .map(|f| format!("{} {}", f["rule"], f["title"]))
        .collect();
    assert!(
        loud.is_empty(),
        "false positives on benign traffic: {loud:?}"
    );
}

/// (crowdsec test, the ecir rule expected to fire for the labelled source IPs).
const CROWDSEC_WEB: &[(&str, &str)] = &[
    ("CVE-2017-9841", "web.php_injection"),
    ("thinkphp-cve-2018-20062", "web.php_injection"),
    ("apache-cve-2021-41773", "web.traversal"),
    ("cve-2021-42013", "web.traversal"),
    ("nginx-cve-2021-41773", "web.traversal"),
    ("nginx-http-path-traversal", "web.traversal"),
    ("apache2-http-sensitive-files", "web.sensitive_file"),
    ("nginx-http-sensitive-files", "web.sensitive_file"),
    ("http-wordpress_wpconfig", "web.sensitive_file"),
    ("apache_log4j2_cve-2021-44228", "web.jndi"),
    ("nginx-http-sqli-probing", "web.sqli"),
    ("nginx-http-xss-probing", "web.xss"),
];

#[test]
fn crowdsec_web_attack_tests_agree() {
    let Some(base) = corpus("crowdsec-hub-tests") else {
        return;
    };
    let index = std::fs::read_to_string(base.join("INDEX.tsv")).unwrap();
    let mut agree = 0;
    let mut report = Vec::new();
    for (test, rule) in CROWDSEC_WEB {
        let row: Vec<&str> = index
            .lines()
            .find(|l| l.split('\t').next() == Some(test))
            .unwrap_or_else(|| panic!("{test} not in INDEX.tsv"))
            .split('\t')
            .collect();
        let log = base.join("tests").join(test).join(row[1]);
        let expected_ips: Vec<&str> = row[6].split(',').collect();
        let (_, r) = scan_json(&["--fail-on", "never", "--tz", "UTC", log.to_str().unwrap()]);
        let hit_ips: Vec<String> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == *rule)
            .flat_map(|f| {
                f["ips"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i.as_str().unwrap().to_string())
            })
            .collect();
        // Some labelled IPs appear only in lines of other formats (an Apache error log line
        // in the CVE-2021-41773 test); the rule must fire for the others.
        let found = expected_ips
            .iter()
            .filter(|ip| hit_ips.iter().any(|h| h == *ip))
            .count();
        let ok = found > 0;
        agree += usize::from(ok);
        report.push(format!(
            "{test:<32} {rule:<20} {} ({found}/{} labelled IPs)",
            if ok { "agree" } else { "MISS" },
            expected_ips.len()
        ));
    }
    eprintln!(
        "crowdsec web-attack agreement: {agree}/{}\n{}",
        CROWDSEC_WEB.len(),
        report.join("\n")
    );
    assert!(
        agree * 10 >= CROWDSEC_WEB.len() * 9,
        "agreement below 90%:\n{}",
        report.join("\n")
    );
}

#[test]
fn crowdsec_benign_web_logs_stay_quiet() {
    let Some(base) = corpus("crowdsec-hub-tests") else {
        return;
    };
    for (test, file) in [
        ("apache2-logs", "apache2-logs.log"),
        ("nginx_http-logs", "nginx_http-logs.log"),
    ] {
        let (_, r) = scan_json(&[
            "--fail-on",
            "never",
            base.join("tests").join(test).join(file).to_str().unwrap(),
        ]);
        let loud: Vec<_> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] != "low" && f["severity"] != "info")
            .map(|f| f["rule"].clone())
            .collect();
        assert!(loud.is_empty(), "{test}: {loud:?}");
    }
}
