//! The WAF issue's promise, end to end: `ecir scan` over a directory holding an access log and
//! a WAF log of any supported kind, with no flags, correlates the WAF record with the access-log
//! line, and the finding's `playbook` follows the chain (upload-folder script → `web-shell`,
//! admin route → `card-skimming`).

use crate::support::{line, scan_json, temp_dir, write};

const IP: &str = "203.0.113.45";
const QUERY: &str =
    "category_id=1%27%20UNION%20SELECT%20NULL,login_id,password%20FROM%20dtb_member--";
const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0";

/// One WAF kind: its format name, a file name, and the record of a SQL injection on
/// `/products/list?{QUERY}` from [`IP`] at 2026-11-12 03:00:00 +09:00 that the WAF only logged.
struct Kind {
    format: &'static str,
    file: &'static str,
    record: fn() -> String,
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            format: "modsec2-json",
            file: "modsec_audit.log",
            record: || {
                format!(
                    r#"{{"transaction":{{"time":"12/Nov/2026:03:00:00.123456 +0900","transaction_id":"ZzJ2AAAAAA","remote_address":"{IP}","remote_port":41234,"local_address":"10.0.0.5","local_port":443}},"request":{{"request_line":"GET /products/list?{QUERY} HTTP/1.1","headers":{{"Host":"shop.example.jp","User-Agent":"{UA}"}}}},"response":{{"protocol":"HTTP/1.1","status":200,"headers":{{}}}},"audit_data":{{"messages":["Warning. detected SQLi using libinjection. [file \"/etc/modsecurity/crs/rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf\"] [line \"45\"] [id \"942100\"] [msg \"SQL Injection Attack Detected via libinjection\"] [severity \"CRITICAL\"] [tag \"attack-sqli\"]"],"engine_mode":"DETECTION_ONLY","producer":["ModSecurity for Apache/2.9.7"]}}}}"#
                )
            },
        },
        Kind {
            format: "modsec3-json",
            file: "modsec_audit.json",
            record: || {
                format!(
                    r#"{{"transaction":{{"client_ip":"{IP}","time_stamp":"Thu Nov 12 03:00:00 2026","server_id":"x","client_port":41234,"host_ip":"10.0.0.5","host_port":443,"unique_id":"173134800012.1","request":{{"method":"GET","http_version":1.1,"uri":"/products/list?{QUERY}","body":"","headers":{{"Host":"shop.example.jp"}}}},"response":{{"http_code":200,"headers":{{}}}},"producer":{{"modsecurity":"ModSecurity v3.0.12 (Linux)","secrules_engine":"DetectionOnly","components":[]}},"messages":[{{"message":"SQL Injection Attack Detected via libinjection","details":{{"ruleId":"942100","severity":"2","tags":["attack-sqli"]}}}}]}}}}"#
                )
            },
        },
        Kind {
            format: "modsec-native",
            file: "modsec_audit.log",
            record: || {
                format!(
                    "--9f2b77aa-A--\n[12/Nov/2026:03:00:00 +0900] ZzJ2AAAAAA {IP} 41234 10.0.0.5 443\n--9f2b77aa-B--\nGET /products/list?{QUERY} HTTP/1.1\nHost: shop.example.jp\n\n--9f2b77aa-F--\nHTTP/1.1 200 OK\n\n--9f2b77aa-H--\nMessage: Warning. detected SQLi using libinjection. [id \"942100\"] [msg \"SQL Injection Attack Detected via libinjection\"] [severity \"CRITICAL\"]\nEngine-Mode: \"DETECTION_ONLY\"\n\n--9f2b77aa-Z--\n"
                )
            },
        },
        Kind {
            format: "modsec-apache-error",
            file: "error_log",
            record: || {
                format!(
                    "[Thu Nov 12 03:00:00.123456 2026] [security2:error] [pid 2210:tid 1400] [client {IP}:41234] [client {IP}] ModSecurity: Warning. detected SQLi using libinjection. [file \"/etc/modsecurity/crs/rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf\"] [line \"45\"] [id \"942100\"] [msg \"SQL Injection Attack Detected via libinjection\"] [severity \"CRITICAL\"] [tag \"attack-sqli\"] [hostname \"shop.example.jp\"] [uri \"/products/list\"] [unique_id \"ZzJ2AAAAAA\"]"
                )
            },
        },
        Kind {
            format: "modsec-nginx-error",
            file: "error.log",
            record: || {
                format!(
                    "2026/11/12 03:00:00 [warn] 2210#2210: *44 [client {IP}] ModSecurity: Warning. Matched \"Operator `DetectSQLi' with parameter `' against variable `ARGS:category_id' (Value: `1' UNION SELECT' ) [file \"/etc/nginx/modsec/crs/rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf\"] [line \"46\"] [id \"942100\"] [rev \"\"] [msg \"SQL Injection Attack Detected via libinjection\"] [data \"\"] [severity \"2\"] [ver \"OWASP_CRS/3.3.5\"] [maturity \"0\"] [accuracy \"0\"] [tag \"attack-sqli\"] [hostname \"10.0.0.5\"] [uri \"/products/list\"] [unique_id \"173134800012.1\"] [ref \"\"], client: {IP}, server: shop.example.jp, request: \"GET /products/list?{QUERY} HTTP/1.1\", host: \"shop.example.jp\""
                )
            },
        },
        Kind {
            format: "aws-waf",
            file: "aws-waf.log",
            record: || {
                format!(
                    r#"{{"timestamp":1794420000000,"formatVersion":1,"webaclId":"arn:aws:wafv2:ap-northeast-1:123456789012:regional/webacl/shop/abcd","terminatingRuleId":"Default_Action","terminatingRuleType":"REGULAR","action":"ALLOW","terminatingRuleMatchDetails":[],"httpSourceName":"ALB","httpSourceId":"x","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[{{"ruleId":"AWS-AWSManagedRulesSQLiRuleSet","action":"COUNT","ruleMatchDetails":[{{"conditionType":"SQL_INJECTION","location":"QUERY_STRING","matchedData":["UNION","SELECT"]}}]}}],"httpRequest":{{"clientIp":"{IP}","country":"NL","headers":[{{"name":"Host","value":"shop.example.jp"}}],"uri":"/products/list","args":"{QUERY}","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"1-abc"}}}}"#
                )
            },
        },
        Kind {
            format: "cloudflare-firewall",
            file: "cloudflare-firewall.json",
            record: || {
                format!(
                    r#"{{"Action":"log","ClientIP":"{IP}","ClientRequestHost":"shop.example.jp","ClientRequestMethod":"GET","ClientRequestPath":"/products/list","ClientRequestQuery":"?{QUERY}","Datetime":"2026-11-11T18:00:00Z","Description":"SQLi - UNION based","EdgeResponseStatus":200,"Kind":"firewall","OriginResponseStatus":200,"RayID":"8a1b2c3d4e5f6a7b","RuleID":"a0b1c2d3e4f5","Source":"firewallManaged"}}"#
                )
            },
        },
        Kind {
            format: "cloudflare-http",
            file: "cloudflare-http.json",
            record: || {
                format!(
                    r#"{{"EdgeStartTimestamp":"2026-11-11T18:00:00Z","EdgeEndTimestamp":"2026-11-11T18:00:00Z","EdgeResponseStatus":200,"ClientIP":"{IP}","ClientRequestHost":"shop.example.jp","ClientRequestMethod":"GET","ClientRequestURI":"/products/list?{QUERY}","RayID":"8a1b2c3d4e5f6a7c","SecurityAction":"","SecurityActions":[],"SecurityRuleID":"","SecurityRuleIDs":[],"WAFAttackScore":9,"WAFSQLiAttackScore":4,"WAFXSSAttackScore":95,"WAFRCEAttackScore":92}}"#
                )
            },
        },
        Kind {
            format: "azure-appgw-waf",
            file: "appgw-firewall.json",
            record: || {
                format!(
                    r#"{{"resourceId":"/SUBSCRIPTIONS/X/RESOURCEGROUPS/SHOP/PROVIDERS/MICROSOFT.NETWORK/APPLICATIONGATEWAYS/SHOP-GW","operationName":"ApplicationGatewayFirewall","time":"2026-11-11T18:00:00.1234567Z","category":"ApplicationGatewayFirewallLog","properties":{{"instanceId":"appgw_0","clientIp":"{IP}","requestUri":"/products/list?{QUERY}","ruleSetType":"OWASP_CRS","ruleSetVersion":"3.2","ruleId":"942100","ruleGroup":"REQUEST-942-APPLICATION-ATTACK-SQLI","message":"SQL Injection Attack Detected via libinjection","action":"Matched","site":"Global","details":{{"message":"Warning. detected SQLi using libinjection.","data":"","file":"rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf","line":"45"}},"hostname":"shop.example.jp","transactionId":"c82550eb"}}}}"#
                )
            },
        },
        Kind {
            format: "siteguard-detect",
            file: "detect.log",
            record: || {
                format!(
                    "1794420000.000000      0 {IP} TCP_MISS/000 0 GET http://shop.example.jp/products/list?{QUERY} - DIRECT/10.0.0.5 - DETECT-STAT:WAF:RULE_SIG/PART_PARAM_VALUE|PART_GET_PARAM/category_id/OFFICIAL/00201001/sqli-union-1::union%20select:1%27%20UNION%20SELECT: ACTION:MONITOR: JUDGE:MONITOR:0: SEARCH-KEY:1794420000.000000.1001:"
                )
            },
        },
    ]
}

/// The access log: the same request answered 200, then either a script in an upload folder
/// (`shell`) or the admin area from the same client.
fn access_log(shell: bool) -> String {
    let mut s = line(
        "192.0.2.10",
        "12/Nov/2026:02:59:30 +0900",
        "GET / HTTP/1.1",
        200,
        5120,
        UA,
    );
    s += &line(
        IP,
        "12/Nov/2026:03:00:00 +0900",
        &format!("GET /products/list?{QUERY} HTTP/1.1"),
        200,
        18231,
        UA,
    );
    let follow = if shell {
        "POST /user_data/packages/default/img/c.php HTTP/1.1"
    } else {
        "GET /admin/order HTTP/1.1"
    };
    s += &line(IP, "12/Nov/2026:03:07:41 +0900", follow, 200, 31, UA);
    s
}

#[test]
fn every_waf_kind_correlates_without_flags() {
    let mut seen = Vec::new();
    for (i, k) in kinds().iter().enumerate() {
        let shell = i % 2 == 0;
        let dir = temp_dir(&format!("waf-kind-{}", k.format));
        write(&dir, "access_log", access_log(shell));
        write(&dir, k.file, format!("{}\n", (k.record)()));
        let (_, report) = scan_json(&[&dir.display().to_string()]);
        let formats: Vec<&str> = report["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["format"].as_str())
            .collect();
        assert!(
            formats.contains(&k.format),
            "{}: detected as {formats:?}",
            k.format
        );
        let f = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == "waf.unblocked_attack")
            .unwrap_or_else(|| panic!("{}: no waf.unblocked_attack in {report:#}", k.format));
        assert_eq!(f["ips"][0], IP, "{}", k.format);
        assert_eq!(f["severity"], "critical", "{}: {f:#}", k.format);
        let want = if shell { "web-shell" } else { "card-skimming" };
        assert_eq!(f["playbook"], want, "{}", k.format);
        // Explainable: the WAF record and the access-log line are both cited.
        let files: Vec<&str> = f["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["file"].as_str().unwrap().rsplit('/').next().unwrap())
            .collect();
        assert!(files.contains(&k.file), "{}: {files:?}", k.format);
        assert!(files.contains(&"access_log"), "{}: {files:?}", k.format);
        seen.push(k.format);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_eq!(seen.len(), 10);
}

/// The same directories with the WAF blocking (or the application refusing) give no
/// unblocked-attack finding: the correlation needs the 2xx.
#[test]
fn a_refused_request_is_not_an_unblocked_attack() {
    for k in kinds() {
        let dir = temp_dir(&format!("waf-kind-403-{}", k.format));
        write(
            &dir,
            "access_log",
            access_log(true).replace("HTTP/1.1\" 200 18231", "HTTP/1.1\" 403 18231"),
        );
        // Records that carry their own response status must say 403 too.
        let rec = (k.record)()
            .replace("\"status\":200", "\"status\":403")
            .replace("\"http_code\":200", "\"http_code\":403")
            .replace("HTTP/1.1 200 OK", "HTTP/1.1 403 Forbidden")
            .replace("\"EdgeResponseStatus\":200", "\"EdgeResponseStatus\":403")
            .replace(
                "\"OriginResponseStatus\":200",
                "\"OriginResponseStatus\":403",
            );
        write(&dir, k.file, format!("{rec}\n"));
        let (_, report) = scan_json(&[&dir.display().to_string()]);
        let rules: Vec<&str> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap())
            .collect();
        assert!(
            !rules.contains(&"waf.unblocked_attack"),
            "{}: {rules:?}",
            k.format
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Azure diagnostic blobs wrap the records in `{"records": [ … ]}`, pretty-printed or one
/// record per line: both correlate like JSON lines, every line is accounted for, and a split
/// across workers changes nothing.
#[test]
fn azure_records_wrapper_pretty_or_per_line_correlates_and_splits() {
    let azure = &kinds()[kinds()
        .iter()
        .position(|k| k.format == "azure-appgw-waf")
        .unwrap()];
    let rec: serde_json::Value = serde_json::from_str(&(azure.record)()).unwrap();
    // Filler records of another category, so the file spans many chunks.
    let mut other = rec.clone();
    other["category"] = "ApplicationGatewayAccessLog".into();
    let mut records = vec![other.clone(); 60];
    records.insert(30, rec);
    let doc = serde_json::json!({ "records": records });
    let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    let per_line = format!(
        "{{\"records\": [\n{}\n]}}\n",
        records
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(",\n")
    );
    for (name, text) in [("pretty", pretty), ("per-line", per_line)] {
        let dir = temp_dir(&format!("waf-azure-wrapper-{name}"));
        write(&dir, "access_log", access_log(false));
        write(&dir, azure.file, text.clone());
        let ds = dir.display().to_string();
        let (_, one) = scan_json(&["-j", "1", &ds]);
        let (_, two) = scan_json(&["-j", "2", "--chunk-size", "1024", &ds]);
        let input = one["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["path"].as_str().unwrap().ends_with(azure.file))
            .unwrap();
        assert_eq!(input["format"], "azure-appgw-waf", "{name}");
        assert_eq!(input["lines"], text.lines().count(), "{name}");
        assert_eq!(
            input["lines"].as_u64(),
            Some(input["parsed"].as_u64().unwrap() + input["skipped"].as_u64().unwrap()),
            "{name}: {input:#}"
        );
        assert_eq!(one["waf_summary"]["events"], 1, "{name}");
        let f = one["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == "waf.unblocked_attack")
            .unwrap_or_else(|| panic!("{name}: {one:#}"));
        assert_eq!(f["severity"], "critical", "{name}");
        assert_eq!(one["findings"], two["findings"], "{name}");
        assert_eq!(one["inputs"], two["inputs"], "{name}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
