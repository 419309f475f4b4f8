//! A bounded, deterministic mutation test of every format's parser: lines of the project's
//! own fixtures (and a sample of each format without one), mutated the way hostile or
//! damaged logs are (byte flips, cuts, splices, NUL, CR, bytes 0x80-0xFF, long runs, deep
//! JSON, huge numbers, odd times and addresses), go through each parser, which must not
//! panic and must account for every line it was fed exactly once: as an event, a skip, or a
//! line absorbed into a multi-line record. Some line numbers are left out, as the input layer
//! leaves out a line too long to parse; those must not be accounted for by the parser.

use std::collections::BTreeSet;
use std::path::Path;

use ecir_formats::{by_name, list, EventSink, ParseContext};
use ecir_model::Event;

/// SplitMix64: a small deterministic generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Samples of the formats the fixtures lack.
const SAMPLES: &str = r#"{"ClientRequestScheme":"https","Source":"firewallrules","ClientRequestUserAgent":"curl/8","EdgeResponseStatus":403,"ClientRequestProtocol":"HTTP/1.1","RayID":"713d477539b55c29","ClientRequestMethod":"GET","ClientIP":"175.16.199.0","ClientRequestPath":"/abc/checkout","Action":"block","Kind":"firewall","RuleID":"7dc666e026974dab84884c73b3e2afe1","ClientRequestQuery":"?q=1","Datetime":"2022-05-31T05:23:43Z","ClientRequestHost":"xyz.example.com"}
{"EdgeStartTimestamp":"2024-09-11T12:57:10Z","EdgeResponseStatus":200,"RayID":"abcdef1234567890","ClientIP":"192.168.1.1","ClientRequestHost":"shop.example","ClientRequestMethod":"GET","ClientRequestURI":"/foo/bar?x=1","ClientRequestUserAgent":"Mozilla/5.0","SecurityAction":"block","SecurityRuleID":"100000","SecuritySources":["firewallManaged"],"OriginResponseStatus":0}
{"resourceId":"/SUBSCRIPTIONS/X/APPLICATIONGATEWAYS/G","operationName":"ApplicationGatewayFirewall","time":"2017-03-20T15:52:09.1494499Z","category":"ApplicationGatewayFirewallLog","properties":{"instanceId":"I_0","clientIp":"67.43.156.7","clientPort":"0","requestUri":"/.env","ruleSetType":"OWASP","ruleSetVersion":"3.0","ruleId":"930130","message":"Restricted File Access Attempt","action":"Blocked","details":{"message":"x","data":"y"},"hostname":"shop.example","transactionId":"1686"}}
{"records": [
{"category": "ApplicationGatewayFirewallLog", "time": "2024-05-28T08:58:53Z", "properties": {"clientIp": "192.0.2.1", "requestUri": "/", "ruleId": "920350", "action": "Matched"}},
{
  "category": "ApplicationGatewayFirewallLog",
  "time": "2024-05-28T08:58:54Z",
  "properties": {"clientIp": "192.0.2.2", "requestUri": "/x?id=1'", "ruleId": "942100", "action": "Blocked"}
}
]}
{"time_iso8601":"2026-11-03T02:52:40+09:00","remote_addr":"203.0.113.5","request_method":"GET","uri":"/index.php","args":"id=1' or 1=1","status":200,"body_bytes_sent":12,"http_user_agent":"sqlmap","http_x_forwarded_for":"198.51.100.1, 10.0.0.1"}
{"time_local":"12/Mar/2024:10:02:11 +0900","remote_addr":"198.51.100.23","request":"POST /admin/login HTTP/2.0","status":"302","body_bytes_sent":"0","request_time":"0.231","http_referrer":"-","http_user_agent":"Mozilla/5.0"}
localhost 192.0.2.7 - - [04/Jun/2008:15:22:56 +0100] "GET /favicon.ico?x=<script> HTTP/1.1" 404 268 "-" "Mozilla/5.0" SEhOCH8AAQEAAFTYdLYAAAAA "-" /20080604/20080604-1522/20080604-152256-SEhOCH8AAQEAAFTYdLYAAAAA 0 941 md5:e0a6f4bc93e4ec16bb5ee0c3a5c9f2d1
[2016-10-01 12:12:12,132] front.INFO [83fdklt8] [1484] [TopController:index:34] - 処理を開始しました。 [/, 127.0.0.1, http://localhost]
[2016-10-01 12:12:13,500] admin.INFO [83fdklt8] [1485] [7] [A:b:1] - 検索 {"q":"x"} [] [GET, /admin/product?q=1, 192.0.2.4, , curl/8]
  #0 /var/www/html/src/Eccube/Controller/Admin/AdminController.php(120): foo()
[2024-03-12T03:14:15.101010+09:00] main.CRITICAL: Crowdsec ban 203.0.113.9 {"ip":"203.0.113.9"} []
--b147b831-A--
[11/Jan/2017:23:19:13 +0000] WHaSUX8AAQEAAD1jSg0AAAAB 203.0.113.4 54321 10.0.0.2 80
--b147b831-B--
GET /index.php?id=1%27%20or%201=1 HTTP/1.1
Host: www.example.com
--b147b831-H--
Message: Warning. detected SQLi using libinjection. [id "942100"] [msg "SQL Injection Attack Detected via libinjection"] [severity "CRITICAL"]
Engine-Mode: "DETECTION_ONLY"
--b147b831-Z--
[Tue Nov 10 00:01:00.123456 2026] [:error] [pid 1:tid 2] [client 203.0.113.100:4000] ModSecurity: Access denied with code 403 (phase 2). [id "942100"] [msg "SQLi"] [hostname "shop"] [uri "/x"] [unique_id "abc"]
2026-11-10T00:01:00.123456+09:00 shop sshd[1]: Failed password for invalid user admin from 2001:db8::1 port 22 ssh2
https 2026-11-03T01:02:03.000001Z app/shop-alb/0123456789abcdef 2001:db8::7:51234 10.0.0.5:80 0.001 0.020 0.000 200 200 310 5120 "POST https://shop.example.jp:443/admin/login?x=1 HTTP/2.0" "Mozilla/5.0 (X)" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:x "Root=1-1" "shop.example.jp" "arn:aws:acm:x" 0 2026-11-03T01:02:03.000000Z "forward" "-" "-" "10.0.0.5:80" "200" "-" "-"
#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for
2019-12-04	21:02:31	LAX1	392	89.160.20.112	GET	d1.cloudfront.net	/index.html	200	-	Mozilla/5.0%20(X)	q=%27	-	Hit	SOX4==	shop.example	https	23	0.001	81.2.69.142,%20216.160.83.56
#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken
2018-01-01 08:09:10 127.0.0.1 GET /admin/index.php q=100 80 - 81.2.69.143 Mozilla/5.0+(Windows+NT+6.1) - 200 0 0 123
"#;

/// Seed files: the rule fixtures and the sample shop (plain text only), then the samples.
fn seed_files() -> Vec<Vec<Vec<u8>>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut paths = Vec::new();
    let mut stack = vec![root.join("tests/fixtures/rules"), root.join("fixtures")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_none_or(|x| x != "args" && x != "gz") {
                paths.push(p);
            }
        }
    }
    paths.sort();
    let mut files: Vec<Vec<Vec<u8>>> = paths
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|b| !b.starts_with(&[0x1f, 0x8b]))
        .map(|b| b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect())
        .collect();
    files.push(SAMPLES.lines().map(|l| l.as_bytes().to_vec()).collect());
    files
}

const ODD: &[&[u8]] = &[
    b"\0",
    b"\r",
    b"\x80",
    b"\xff\xfe",
    b"\xe3\x81",
    b"\xe3\x80\x80",
    b"\xed\xa0\x80",
    b"\\",
    b"\"",
    b"\\u0000",
    b"\\ud800",
    b"{",
    b"}",
    b"[",
    b"]",
    b"%",
    b"%zz",
    b"%252e%252e%252f",
    b"0000",
    b"99999",
    b"+9999",
    b"-2400",
    b"23:59:60",
    b"2016-12-31T23:59:60Z",
    b"31/Feb/0000:24:00:00 +9999",
    b"18446744073709551616",
    b"9223372036854775807",
    b"1e999",
    b"::ffff:1.2.3.4",
    b"[::1]:80",
    b"fe80::1%eth0",
    b"1:2:3:4:5:6:7:8:9",
    b"300.1.1.1",
    b"--x-A--",
    b"--x-Z--",
    b"{\"records\": [",
    b"]}",
];

fn mutate(r: &mut SplitMix64, line: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + r.below(3) {
        let at = r.below(line.len() + 1);
        match r.below(10) {
            0 if !line.is_empty() => {
                let i = r.below(line.len());
                line[i] ^= 1 << r.below(8);
            }
            1 => line.truncate(at),
            2 => {
                let from = r.below(other.len() + 1);
                line.truncate(at);
                line.extend_from_slice(&other[from..]);
            }
            3 => {
                let odd = r.pick(ODD);
                line.splice(at..at, odd.iter().copied());
            }
            4 => {
                const UNITS: &[&[u8]] = &[b"a", b"%41", b"[", b"{\"a\":", b" ", b"\xe3\x81\x82"];
                let unit = *r.pick(UNITS);
                let n = *r.pick(&[100, 4000, 70_000]) / unit.len();
                line.splice(at..at, unit.repeat(n));
            }
            5 => {
                let depth = *r.pick(&[100, 200, 3000]);
                let deep = [b"[".repeat(depth), b"]".repeat(depth)].concat();
                line.splice(at..at, deep);
            }
            6 => {
                let len = r.below(64).min(line.len() - at.min(line.len()));
                line.drain(at..at + len);
            }
            7 => {
                // A high byte, often among the first bytes, where headers and times are.
                let b = (0x80 + r.below(0x80)) as u8;
                let at = if r.chance(50) {
                    at.min(r.below(24))
                } else {
                    at
                };
                line.insert(at, b);
            }
            8 => {
                // Replace a run of digits by an odd one.
                if let Some(i) = line[at..].iter().position(u8::is_ascii_digit) {
                    let s = at + i;
                    let e = s + line[s..].iter().take_while(|c| c.is_ascii_digit()).count();
                    let odd = r.pick(ODD);
                    line.splice(s..e, odd.iter().copied());
                }
            }
            _ => {
                let n = *r.pick(&[2, 3]);
                let end = (at + r.below(100)).min(line.len());
                let piece = line[at..end].to_vec();
                for _ in 1..n {
                    line.splice(end..end, piece.iter().copied());
                }
            }
        }
    }
}

/// Counts what a parser made of the lines it was fed.
#[derive(Default)]
struct Tally {
    /// Line numbers given an event or a skip, in order.
    numbered: Vec<u64>,
    absorbed: u64,
}

impl EventSink for Tally {
    fn event(&mut self, _ev: &Event<'_>, line: u64, _raw: &[u8]) {
        self.numbered.push(line);
    }
    fn skip(&mut self, line: u64, _reason: &'static str, _raw: &[u8]) {
        self.numbered.push(line);
    }
    fn absorbed(&mut self, n: u64) {
        self.absorbed += n;
    }
    fn extra_event(&mut self, _ev: &Event<'_>, _line: u64, _raw: &[u8]) {}
}

#[test]
fn mutated_lines_never_panic_and_every_fed_line_is_accounted_once() {
    let files = seed_files();
    assert!(files.len() > 10, "fixtures not found");
    let pool: Vec<&Vec<u8>> = files.iter().flatten().collect();
    let ctx = ParseContext::default();
    let mut r = SplitMix64(0x00ec_1a5e_ed00_0001);
    for (name, _, _) in list() {
        let chosen = by_name(name).unwrap();
        for round in 0..12 {
            let mut parser = chosen.format.parser(chosen.variant, &ctx);
            let mut tally = Tally::default();
            let mut fed = BTreeSet::new();
            let mut number = 0u64;
            for _ in 0..4 {
                // A window of consecutive lines keeps multi-line records whole.
                // The samples (multi-line records among them) a quarter of the time.
                let file = if r.chance(25) {
                    files.last().unwrap()
                } else {
                    r.pick(&files)
                };
                let start = r.below(file.len());
                for line in file.iter().skip(start).take(1 + r.below(40)) {
                    let mut line = line.clone();
                    if r.chance(30) {
                        let other: &[u8] = r.pick(&pool).as_slice();
                        mutate(&mut r, &mut line, other);
                    }
                    // A line the input layer would skip without feeding (too long).
                    number += 1 + u64::from(r.chance(8));
                    line.truncate(64 * 1024);
                    parser.feed(number, &line, &mut tally);
                    fed.insert(number);
                }
            }
            parser.finish(&mut tally);
            let accounted = tally.numbered.len() as u64 + tally.absorbed;
            assert_eq!(
                accounted,
                fed.len() as u64,
                "{name} round {round}: {} events and skips + {} absorbed for {} lines fed",
                tally.numbered.len(),
                tally.absorbed,
                fed.len()
            );
            let distinct: BTreeSet<u64> = tally.numbered.iter().copied().collect();
            assert_eq!(
                distinct.len(),
                tally.numbered.len(),
                "{name}: a line counted twice"
            );
            assert!(
                distinct.is_subset(&fed),
                "{name}: a line not fed was counted"
            );
        }
    }
}
