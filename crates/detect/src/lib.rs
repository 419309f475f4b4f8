//! Detection: turning normalized events into findings.
//!
//! Each detector is a [`DetectorState`] that observes events one at a time, keeps only the
//! compact state it needs (counters, a few evidence lines, per-IP or per-path summaries, never
//! the events themselves), merges with the state another worker built over other lines, and
//! finally yields [`Finding`]s. Because states merge, the scan stage can feed file chunks to
//! workers in parallel; because every keep-the-best choice uses a total order (weight, time,
//! file, line), the findings do not depend on how the lines were split.
//!
//! This crate must not know about input files, formats, threads or output. (One exception to
//! "no files": tables that grow with clients or paths (recon's 404 state, web-attack groups,
//! web-shell paths, card clients and evidence, admin requests) spill past a cap to private
//! temporary runs under `TMPDIR`, removed when done.)

pub mod admin;
pub mod card;
pub mod client_cap;
mod codec;
pub mod decode;
pub mod evidence;
pub mod host;
pub mod post;
pub mod recon;
pub mod session;
mod soft404;
mod spill_map;
pub mod waf;
pub mod web_attack;
pub mod webshell;

use std::any::Any;
use std::sync::Arc;

use ecir_model::{Event, Finding};

/// Where an event came from: the evidence a finding can cite.
#[derive(Copy, Clone, Debug)]
pub struct Origin<'a> {
    /// The input file, as shown in the report.
    pub file: &'a Arc<str>,
    /// 1-based line number of the record's first line.
    pub line: u64,
    /// The raw line as read.
    pub raw: &'a [u8],
}

/// Tunable thresholds. Defaults are documented on each field.
#[derive(Clone, Debug)]
pub struct DetectConfig {
    /// 404s from one IP within [`Self::burst_window_secs`] that make a burst (50).
    pub burst_404: u32,
    /// Window for 404 bursts, seconds (600).
    pub burst_window_secs: i64,
    /// Most distinct client IPs a script path may have to count as rarely used (2).
    pub rare_script_max_ips: usize,
    /// Distinct client IPs the logs must show before "rare" means anything (20).
    pub rare_script_min_site_ips: usize,
    /// Body size above which a sensitive file served with 2xx counts as exposed (100).
    pub exposure_min_bytes: u64,
    /// Admin-panel settings (`--platform`, `--admin-path`, `--admin-allow`, …).
    pub admin: admin::AdminConfig,
    /// Card-skimming and card-testing settings (`--psp-domain`, `--contained-at`, …).
    pub card: card::CardConfig,
    /// Whether any input of the run is a WAF log (known before reading, from the inputs'
    /// format detection). Without one, the WAF correlation keeps no web-request state.
    pub run_has_waf: bool,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            burst_404: 50,
            burst_window_secs: 600,
            rare_script_max_ips: 2,
            rare_script_min_site_ips: 20,
            exposure_min_bytes: 100,
            admin: admin::AdminConfig::default(),
            card: card::CardConfig::default(),
            run_has_waf: true,
        }
    }
}

/// Facts about the whole run that detectors may use when they finish, and where they report
/// what went wrong while finishing.
#[derive(Debug, Default)]
pub struct FinishContext {
    /// Distinct client IPs seen across all inputs.
    pub distinct_client_ips: usize,
    /// Problems met by detectors (state that could not be spilled or read back), for the
    /// report's warnings.
    warnings: std::sync::Mutex<Vec<String>>,
    /// What the admin detector chose where the options left the choice to it.
    inferred_panel: std::sync::Mutex<Option<InferredPanel>>,
}

/// The admin panel the admin detector used where the options named none: the report's
/// `options.platform_inferred` and `options.admin_paths_inferred`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InferredPanel {
    /// The platform profile's name, when inferred from the logs (`None`: it was given).
    pub platform: Option<String>,
    /// The admin prefixes used, when no `--admin-path` was given: inferred from the logs, or
    /// the platform's default when the logs show none (`None`: they were given).
    pub admin_paths: Option<Vec<String>>,
}

impl FinishContext {
    pub fn new(distinct_client_ips: usize) -> Self {
        FinishContext {
            distinct_client_ips,
            warnings: Default::default(),
            inferred_panel: Default::default(),
        }
    }

    /// Records what the admin detector chose itself (see [`InferredPanel`]).
    pub fn set_inferred_panel(&self, panel: InferredPanel) {
        *self
            .inferred_panel
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(panel);
    }

    /// What the admin detector chose itself, if it chose anything.
    pub fn inferred_panel(&self) -> Option<InferredPanel> {
        self.inferred_panel
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn warn(&self, warning: String) {
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(warning);
    }

    /// The warnings raised so far, sorted (detectors finish in parallel), each once.
    pub fn take_warnings(&self) -> Vec<String> {
        let mut w = std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|p| p.into_inner()));
        w.sort();
        w.dedup();
        w
    }
}

/// One detector's mergeable state.
pub trait DetectorState: Send + Any {
    /// Looks at one event.
    fn observe(&mut self, ev: &Event<'_>, origin: &Origin<'_>);
    /// Absorbs the state built over other lines (always of the same detector).
    fn merge(&mut self, other: Box<dyn DetectorState>);
    /// Called when this state has seen its lines and waits for the state of the lines
    /// before it to be merged with it: writes out what its tables can read back exactly
    /// (spilled runs) and drops its caches, so that a waiting state holds little memory
    /// beside the ones still folding. Findings do not depend on whether it was called.
    fn park(&mut self) {}
    /// Produces the findings.
    fn finish(self: Box<Self>, ctx: &FinishContext) -> Vec<Finding>;
    /// For [`merge`](Self::merge) implementations to recover their concrete type.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    /// The WAF activity summary for the report, from the detector that keeps one.
    fn waf_summary(&self) -> Option<ecir_model::WafSummary> {
        None
    }
    /// The completion-page hits for the exposure window, from the detector that keeps them,
    /// taken out of the state (its findings do not use them), so they are not held twice.
    fn take_orders(&mut self) -> Option<card::Orders> {
        None
    }
}

/// Recovers the concrete state in a `merge` implementation.
pub fn downcast<T: 'static>(other: Box<dyn DetectorState>) -> T {
    *other
        .into_any()
        .downcast::<T>()
        .unwrap_or_else(|_| panic!("merged detector states of different kinds"))
}

/// The states of every detector, in a fixed order.
pub struct DetectorSet {
    states: Vec<Box<dyn DetectorState>>,
}

/// Detector groups and the rule ids they emit, for documentation and `--help`.
pub const DETECTORS: &[(&str, &[&str])] = &[
    ("web-attack", web_attack::RULES),
    ("recon", recon::RULES),
    ("webshell", webshell::RULES),
    ("admin", admin::RULES),
    ("host", host::RULES),
    ("waf", waf::RULES),
    ("card", card::RULES),
    ("post-detection", post::RULES),
];

impl DetectorSet {
    pub fn new(config: &Arc<DetectConfig>) -> Self {
        DetectorSet {
            states: vec![
                Box::new(web_attack::WebAttack::new(config.clone())),
                Box::new(recon::Recon::new(config.clone())),
                Box::new(webshell::Webshell::new(config.clone())),
                Box::new(admin::Admin::new(config.clone())),
                Box::new(host::Host::new(config.clone())),
                Box::new(waf::Waf::new(config.clone())),
                Box::new(card::Card::new(config.clone())),
            ],
        }
    }

    #[inline]
    pub fn observe(&mut self, ev: &Event<'_>, origin: &Origin<'_>) {
        for s in &mut self.states {
            s.observe(ev, origin);
        }
    }

    /// Merges detector by detector, in parallel on the caller's rayon pool (the last merge
    /// of a scan has the other workers idle); each detector merges its own pair as before.
    pub fn merge(&mut self, other: DetectorSet) {
        use rayon::prelude::*;
        self.states
            .par_iter_mut()
            .zip(other.states.into_par_iter())
            .for_each(|(mine, theirs)| mine.merge(theirs));
    }

    /// Parks every detector's state ([`DetectorState::park`]): it waits, finished, to be
    /// merged.
    pub fn park(&mut self) {
        for s in &mut self.states {
            s.park();
        }
    }

    /// The WAF summary for the report, when a WAF log was read.
    pub fn waf_summary(&self) -> Option<ecir_model::WafSummary> {
        self.states.iter().find_map(|s| s.waf_summary())
    }

    /// Completion-page hits for the exposure window, taken out of the card detector's state.
    pub fn take_orders(&mut self) -> card::Orders {
        self.states
            .iter_mut()
            .find_map(|s| s.take_orders())
            .unwrap_or_default()
    }

    /// Every detector's findings, in the fixed detector order. The detectors finish on the
    /// caller's rayon pool in two lanes, `FINISH_LANES`, each detector one after another
    /// within its lane: they share nothing, so the order changes no finding, only the peak
    /// memory. A finishing detector still holds its state while it builds its findings, and
    /// the states of the detectors not yet finished are alive beside it. The two finishes
    /// that take the most memory are the admin detector's (it reads back every kept
    /// request) and the web-attack detector's (it turns its groups into most of the run's
    /// findings, which stay): they share a lane, admin first, so they never overlap; the
    /// card detector, whose state is the largest and whose findings are few, goes first in
    /// the other lane. On the 8 GiB bench file this took the peak live heap from 91 to 64
    /// MiB (the other way round, card first before web attacks and admin beside them).
    pub fn finish(self, ctx: &FinishContext) -> Vec<Finding> {
        use rayon::prelude::*;
        let mut states: Vec<Option<Box<dyn DetectorState>>> =
            self.states.into_iter().map(Some).collect();
        let lanes: Vec<Vec<(usize, Box<dyn DetectorState>)>> = FINISH_LANES
            .iter()
            .map(|lane| {
                lane.iter()
                    .filter_map(|&i| Some((i, states.get_mut(i)?.take()?)))
                    .collect()
            })
            .collect();
        assert!(
            states.iter().all(Option::is_none),
            "a detector in no finish lane"
        );
        let mut per_detector: Vec<(usize, Vec<Finding>)> = lanes
            .into_par_iter()
            .flat_map_iter(|lane| {
                lane.into_iter()
                    .map(|(i, s)| (i, s.finish(ctx)))
                    .collect::<Vec<_>>()
            })
            .collect();
        per_detector.sort_by_key(|(i, _)| *i);
        per_detector.into_iter().flat_map(|(_, f)| f).collect()
    }
}

/// The order detectors finish in, by index into [`DetectorSet::new`]'s list: two lanes run
/// side by side, each in order (see [`DetectorSet::finish`]). Admin (3), web attacks (0),
/// recon (1); card (6), web shells (2), host (4), WAF (5).
const FINISH_LANES: [&[usize]; 2] = [&[3, 0, 1], &[6, 2, 4, 5]];

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers to run detectors over a few CLF lines in tests.
    use super::*;

    /// An event from `ip|method|target|status|bytes[|user agent[|referer]]`, `secs` seconds
    /// after a fixed instant (+09:00).
    pub fn event(l: &str, secs: i64) -> Event<'_> {
        let f: Vec<&str> = l.split('|').collect();
        Event {
            ts: Some(ecir_model::Timestamp::from_secs(
                1_700_000_000 + secs,
                9 * 3600,
            )),
            client_ip: f[0].parse().ok(),
            method: Some(f[1].into()),
            target: Some(f[2].into()),
            status: f[3].parse().ok(),
            bytes: f[4].parse().ok(),
            user_agent: f.get(5).map(|s| (*s).into()),
            referer: f.get(6).map(|s| (*s).into()),
            ..Default::default()
        }
    }

    /// Parses minimal combined lines: `ip method target status bytes [ua]` separated by `|`.
    pub fn run(lines: &[&str]) -> Vec<Finding> {
        run_split(lines, 1)
    }

    /// Feeds `(line, seconds)` to `states` in contiguous chunks, like the scan's.
    pub fn observe_in_chunks<S: DetectorState>(states: &mut [S], lines: &[(String, i64)]) {
        let file: Arc<str> = Arc::from("access.log");
        let n = states.len();
        for (i, (l, secs)) in lines.iter().enumerate() {
            let ev = event(l, *secs);
            let origin = Origin {
                file: &file,
                line: i as u64 + 1,
                raw: l.as_bytes(),
            };
            states[i * n / lines.len()].observe(&ev, &origin);
        }
    }

    /// `states` merged in order into one.
    pub fn merge_in_order<S: DetectorState>(states: Vec<S>) -> Box<dyn DetectorState> {
        let mut it = states.into_iter();
        let mut first: Box<dyn DetectorState> = Box::new(it.next().expect("a state"));
        for s in it {
            first.merge(Box::new(s));
        }
        first
    }

    /// The findings of `states` merged in order, as JSON (evidence normalised), and the
    /// warnings they raised.
    pub fn merged_findings_warned<S: DetectorState>(states: Vec<S>) -> (String, Vec<String>) {
        let ctx = FinishContext::default();
        let mut f = merge_in_order(states).finish(&ctx);
        for x in &mut f {
            x.normalize_evidence();
        }
        (
            serde_json::to_string(&f).expect("json"),
            ctx.take_warnings(),
        )
    }

    /// The findings of `states` merged in order, as JSON (evidence normalised).
    pub fn merged_findings<S: DetectorState>(states: Vec<S>) -> String {
        merged_findings_warned(states).0
    }

    /// Runs over `parts` separate states merged at the end, to check merging.
    pub fn run_split(lines: &[&str], parts: usize) -> Vec<Finding> {
        let cfg = Arc::new(DetectConfig::default());
        let file: Arc<str> = Arc::from("access.log");
        let mut sets: Vec<DetectorSet> = (0..parts).map(|_| DetectorSet::new(&cfg)).collect();
        for (i, l) in lines.iter().enumerate() {
            let ev = event(l, i as i64);
            let origin = Origin {
                file: &file,
                line: i as u64 + 1,
                raw: l.as_bytes(),
            };
            sets[i % parts].observe(&ev, &origin);
        }
        let mut it = sets.into_iter();
        let mut first = it.next().unwrap();
        for s in it {
            first.merge(s);
        }
        let ctx = FinishContext::new(100);
        let mut f = first.finish(&ctx);
        for x in &mut f {
            x.normalize_evidence();
        }
        f.sort_by(|a, b| (a.rule.as_str(), &a.ips).cmp(&(b.rule.as_str(), &b.ips)));
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_lanes_hold_each_detector_once() {
        let n = DetectorSet::new(&Arc::new(DetectConfig::default()))
            .states
            .len();
        let mut all: Vec<usize> = FINISH_LANES
            .iter()
            .flat_map(|l| l.iter().copied())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    }

    /// Lines that give findings from the web-attack, recon, web-shell and card detectors,
    /// spread over ten days, as `(line, seconds)`.
    fn lines_for_every_web_detector() -> Vec<(String, i64)> {
        const DAY: i64 = 86_400;
        let confirm = "https://shop.example.jp/shopping/confirm";
        let mut v: Vec<(String, i64)> = Vec::new();
        for i in 0..60i64 {
            let t = i * 10 * DAY / 60;
            // SQL injection answered 2xx, from many addresses (web-attack groups).
            v.push((
                format!(
                    "198.51.{}.{}|GET|/products/list?id=1%27%20OR%201=1--|200|{}|Mozilla/5.0",
                    i % 3,
                    i + 1,
                    9000 + i
                ),
                t,
            ));
            // Shop traffic loading a script that changes size on day 6 (card per-path state).
            let size = if t < 6 * DAY { 1200 } else { 3600 };
            let ip = format!("100.64.0.{}", i + 1);
            v.push((
                format!("{ip}|GET|/products/detail/1|200|9000|Mozilla/5.0"),
                t,
            ));
            v.push((
                format!("{ip}|GET|/html/user_data/assets/js/customize.js|200|{size}|Mozilla/5.0|https://shop.example.jp/products/detail/1"),
                t + 1,
            ));
            // A new script loaded from checkout by many customers.
            if t >= 6 * DAY {
                v.push((
                    format!("100.65.0.{}|GET|/html/user_data/assets/js/jq.min.js|200|7000|Mozilla/5.0|{confirm}", i + 1),
                    t + 2,
                ));
            }
        }
        // A scanner's 404 burst, and a web shell in use.
        for i in 0..60i64 {
            v.push((
                format!("203.0.113.9|GET|/guess{i}.php|404|0|Mozilla/5.0 zgrab/0.x"),
                2 * DAY + i,
            ));
            v.push((
                format!(
                    "192.0.2.66|POST|/html/user_data/up.php?cmd=id|200|{}|curl/8.0",
                    100 + i * 37
                ),
                3 * DAY + i * 600 + 7,
            ));
        }
        // A growing file fetched by one client (a drop being harvested).
        for (i, size) in [100i64, 400, 900, 1500, 20].iter().enumerate() {
            v.push((
                format!("198.51.100.7|GET|/html/user_data/c.txt|200|{size}|Mozilla/5.0"),
                i as i64 * DAY + 30,
            ));
        }
        v.sort_by_key(|x| x.1);
        v
    }

    /// The findings of `lines` folded in `parts` contiguous runs merged in order; with
    /// `park`, each run's state is parked halfway through its lines (and goes on) and at
    /// its end, as a scan parks a run that waits to be merged.
    fn findings_in_runs(lines: &[(String, i64)], parts: usize, park: bool) -> String {
        let cfg = Arc::new(DetectConfig::default());
        let file: Arc<str> = Arc::from("access.log");
        let mut sets: Vec<DetectorSet> = (0..parts).map(|_| DetectorSet::new(&cfg)).collect();
        let per = lines.len().div_ceil(parts);
        for (i, (l, secs)) in lines.iter().enumerate() {
            let origin = Origin {
                file: &file,
                line: i as u64 + 1,
                raw: l.as_bytes(),
            };
            let set = &mut sets[i / per];
            set.observe(&testing::event(l, *secs), &origin);
            if park && (i % per == per / 2 || i % per == per - 1 || i + 1 == lines.len()) {
                set.park();
            }
        }
        let mut it = sets.into_iter();
        let mut all = it.next().expect("a run");
        for s in it {
            all.merge(s);
        }
        let mut f = all.finish(&FinishContext::new(100));
        for x in &mut f {
            x.normalize_evidence();
        }
        serde_json::to_string(&f).expect("json")
    }

    #[test]
    fn parked_states_give_the_same_findings() {
        let lines = lines_for_every_web_detector();
        let want = findings_in_runs(&lines, 1, false);
        for rule in [
            "web.sqli",
            "recon.404_burst",
            "webshell.command_param",
            "card.asset_drift",
            "card.first_seen_script",
            "card.drop_harvest",
        ] {
            assert!(
                want.contains(&format!("\"rule\":\"{rule}\"")),
                "no {rule} finding"
            );
        }
        for parts in [1, 2, 3] {
            assert!(
                findings_in_runs(&lines, parts, false) == want,
                "{parts} runs"
            );
            assert!(
                findings_in_runs(&lines, parts, true) == want,
                "{parts} runs, parked: the findings differ"
            );
        }
    }

    #[test]
    fn findings_come_in_detector_order_whatever_the_finish_order() {
        // A web attack (detector 0), a scanner (1) and card testing (6): the card detector
        // finishes first, its findings still come last.
        let mut lines = vec![(
            "198.51.100.7|GET|/?id=1%20UNION%20SELECT%201,2|200|10|sqlmap/1.7".to_string(),
            0,
        )];
        for i in 0..15 {
            lines.push((
                "198.51.100.10|POST|/shopping/checkout|429|0|Mozilla/5.0|https://shop.example.jp/shopping/confirm".to_string(),
                10 + i * 30,
            ));
        }
        let cfg = Arc::new(DetectConfig::default());
        let mut set = DetectorSet::new(&cfg);
        let file: Arc<str> = Arc::from("access.log");
        for (i, (l, secs)) in lines.iter().enumerate() {
            let origin = Origin {
                file: &file,
                line: i as u64 + 1,
                raw: l.as_bytes(),
            };
            set.observe(&testing::event(l, *secs), &origin);
        }
        let f = set.finish(&FinishContext::new(100));
        let order: Vec<usize> = f
            .iter()
            .map(|x| {
                DETECTORS
                    .iter()
                    .position(|(_, rules)| rules.contains(&x.rule.as_str()))
                    .expect("a known rule")
            })
            .collect();
        assert!(order.contains(&0) && order.contains(&6), "{order:?} {f:#?}");
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    }
}
