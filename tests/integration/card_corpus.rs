//! Card-testing detectors against the CrowdSec hub's Magento card-testing tests
//! (`../shared/corpus/crowdsec-hub-tests`, read through `INDEX.tsv`): for each test, does ecir
//! raise a card-testing finding on the same source IPs exactly when CrowdSec raises an alert?
//! CrowdSec's distributed scenarios group by AS number or country, which logs do not carry;
//! ecir's distributed rule counts distinct failing IPs within ten minutes instead.

use crate::support::{corpus, scan_json};

const TESTS: &[&str] = &[
    "magento-ccs",
    "magento-ccs-by-as",
    "magento-ccs-by-country",
    "magento-extension-logs",
];

#[test]
fn crowdsec_magento_card_testing_agreement() {
    let Some(dir) = corpus("crowdsec-hub-tests") else {
        return;
    };
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).unwrap();
    let mut agree = 0;
    let mut rows = Vec::new();
    for name in TESTS {
        let row: Vec<&str> = index
            .lines()
            .find(|l| l.split('\t').next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not in INDEX.tsv"))
            .split('\t')
            .collect();
        let expected_alerts: u64 = row[4].parse().unwrap();
        let expected_ips: Vec<&str> = row[6].split(',').filter(|s| *s != "-").collect();
        let log = dir.join("tests").join(name).join(row[1]);
        let (_, rep) = scan_json(&["--fail-on", "never", "--tz", "UTC", log.to_str().unwrap()]);
        assert_eq!(rep["inputs"][0]["format"], "magento-log", "{name}");
        let reasons = rep["inputs"][0]["skipped_by_reason"].as_object().unwrap();
        assert!(reasons.keys().all(|k| k == "empty"), "{name}: {reasons:?}");
        let ours: Vec<&serde_json::Value> = rep["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["category"] == "card-testing")
            .collect();
        let our_ips: Vec<&str> = ours
            .iter()
            .flat_map(|f| f["ips"].as_array().unwrap())
            .filter_map(|v| v.as_str())
            .collect();
        let ok = if expected_alerts == 0 {
            ours.is_empty()
        } else {
            !ours.is_empty() && our_ips.iter().any(|ip| expected_ips.contains(ip))
        };
        if ok {
            agree += 1;
        }
        rows.push(format!(
            "{name}: crowdsec {expected_alerts} alert(s) on {} IP(s); ecir {} card-testing finding(s) {:?} -> {}",
            expected_ips.len(),
            ours.len(),
            ours.iter().map(|f| f["rule"].as_str().unwrap()).collect::<Vec<_>>(),
            if ok { "agree" } else { "DISAGREE" }
        ));
    }
    eprintln!("{}\nagreement {agree}/{}", rows.join("\n"), TESTS.len());
    assert_eq!(agree, TESTS.len(), "{}", rows.join("\n"));
}
