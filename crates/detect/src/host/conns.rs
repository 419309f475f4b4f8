//! sshd connections: login attempts logged without a `Failed …` line, counted once each.
//!
//! sshd logs one `Failed password` line per password tried, and the host detector counts
//! those as they come. The same connection (one sshd process: the pid of the syslog tag)
//! may also log lines that stand for the same attempts: `Invalid user X from A port N` (once,
//! before its `Failed … for invalid user X` lines), `Connection closed by invalid user X A
//! port N [preauth]` (once, at its end), PAM's `authentication failure; … rhost=A` (its
//! first failure) and `PAM N more authentication failures` (the others). Alone, they are
//! attempts too: OpenSSH ≥ 7 logs only the first two when a scanner disconnects before
//! sending a password, and old Red Hat syslog (`sshd(pam_unix)[pid]:`) only the PAM ones.
//! So a connection counts max(`Failed` lines, `Invalid user` lines, invalid-user closes, PAM
//! failures) attempts: its `Failed` lines, plus the excess of the largest other count over
//! them. The usual pairs (`Invalid user` + `Failed password for invalid user`,
//! `pam_unix(sshd:auth): authentication failure` + `Failed password`) have no excess, so
//! nothing is counted twice. Lines without a pid or a client IP cannot be joined: only
//! their `Failed` lines count, as before.
//!
//! A connection is the lines of one file with one (client IP, pid), each at most [`GAP`]
//! lines after the one before (sshd drops a client that has not logged in after two minutes;
//! a pid used again much later by the same client is another connection, and one used again
//! within [`GAP`] lines is taken as the same, which can only undercount).
//!
//! Chunks of a file are folded in separate states merged in order, so a connection may
//! straddle two states. A state settles a connection (adds its excess) only once it can
//! no longer grow, its last line more than [`GAP`] lines behind the state's last line or in a
//! file the state has left, and only if it did not start within [`GAP`] lines of the
//! state's first line: such a *head* may continue lines of the state before, and waits for
//! the merge, which joins it to that state's connection of the same key when the gap allows.
//! So what is counted does not depend on where the chunks are cut. Memory: the connections
//! of a state's first and last [`GAP`] lines.
//!
//! PAM names the client as sshd resolved it: a host name when the reverse lookup succeeded
//! (`rhost=host.example.net`), while sshd's own lines always give the address. PAM lines
//! with a host name make connections of their own, per (file, pid, name), joined by the same
//! [`GAP`] rule; such a connection counts its PAM failures for the host name only when its
//! process logged no line with an address within [`GAP`] lines of it: otherwise those lines
//! (`Failed password … from A`, `Invalid user … from A`) are the same attempts, counted for
//! the address (which can only undercount, when the lines with the address stand for fewer
//! attempts than the PAM ones). The same head rule keeps this independent of the cuts: a
//! state remembers the first line with an address of each process in its first [`GAP`]
//! lines and the last one of each process, for the merge to look across.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use ecir_model::Evidence;

/// Most lines between two lines of one connection.
pub const GAP: u64 = 10_000;

/// Lines between two sweeps for connections that can no longer grow.
const SWEEP_EVERY: u32 = 4096;

/// What a line says of its connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `Failed …` (already counted as a failure).
    Failed,
    /// `Invalid user X from A`.
    Invalid,
    /// `Connection closed by invalid user X A port N [preauth]` (or `Disconnected from …`).
    InvalidClosed,
    /// A PAM authentication failure, or `PAM N more authentication failures`.
    Pam,
}

/// The first line of a connection that is not a `Failed` line: what its excess attempts
/// are cited by.
#[derive(Clone, Debug)]
pub struct Marker {
    pub user: Option<String>,
    pub ev: Evidence,
}

/// Who a settled connection's attempts are counted for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    Ip(IpAddr),
    /// A host name, when no line of the connection gave an address.
    Name(Arc<str>),
}

/// Attempts a settled connection adds to its client's failures.
#[derive(Debug)]
pub struct Excess {
    pub subject: Subject,
    pub n: u64,
    pub marker: Marker,
}

type Key = (Arc<str>, IpAddr, u32);

/// A process of a file: (file, pid).
type Proc = (Arc<str>, u32);

/// The PAM failures of one process that named its client by a host name only.
#[derive(Debug)]
struct NameConn {
    name: Arc<str>,
    first_line: u64,
    last_line: u64,
    head: bool,
    pam: u64,
    marker: Marker,
    /// The process logged a line with an address within [`GAP`] lines: the attempts are
    /// counted for the address.
    shadowed: bool,
}

impl NameConn {
    fn settle(self, out: &mut Vec<Excess>) {
        if !self.shadowed && self.pam > 0 {
            out.push(Excess {
                subject: Subject::Name(self.name),
                n: self.pam,
                marker: self.marker,
            });
        }
    }
}

/// Whether a line at `later` is within [`GAP`] lines after one at `earlier`, or before it.
fn near(earlier: u64, later: u64) -> bool {
    later.saturating_sub(earlier) <= GAP
}

#[derive(Debug)]
struct Conn {
    first_line: u64,
    last_line: u64,
    /// Started within [`GAP`] lines of the state's first line (see the module doc).
    head: bool,
    failed: u64,
    invalid: u64,
    closed: u64,
    pam: u64,
    marker: Option<Marker>,
}

impl Conn {
    fn add(&mut self, kind: Kind, n: u64, marker: impl FnOnce() -> Marker) {
        let c = match kind {
            Kind::Failed => &mut self.failed,
            Kind::Invalid => &mut self.invalid,
            Kind::InvalidClosed => &mut self.closed,
            Kind::Pam => &mut self.pam,
        };
        *c = c.saturating_add(n);
        if kind != Kind::Failed && self.marker.is_none() {
            self.marker = Some(marker());
        }
    }

    /// Appends `later`, the lines of the same connection that came after.
    fn absorb(&mut self, later: Conn) {
        self.last_line = later.last_line;
        self.failed = self.failed.saturating_add(later.failed);
        self.invalid = self.invalid.saturating_add(later.invalid);
        self.closed = self.closed.saturating_add(later.closed);
        self.pam = self.pam.saturating_add(later.pam);
        if self.marker.is_none() {
            self.marker = later.marker;
        }
    }

    /// The attempts the connection logged without a `Failed` line.
    fn settle(self, ip: IpAddr, out: &mut Vec<Excess>) {
        let n = self
            .invalid
            .max(self.closed)
            .max(self.pam)
            .saturating_sub(self.failed);
        if let (true, Some(marker)) = (n > 0, self.marker) {
            out.push(Excess {
                subject: Subject::Ip(ip),
                n,
                marker,
            });
        }
    }
}

/// The connections of a state that may still grow (see the module doc).
#[derive(Default)]
pub struct Conns {
    /// The state's first line (file, line) and its last.
    start: Option<(Arc<str>, u64)>,
    at: Option<(Arc<str>, u64)>,
    open: HashMap<Key, Conn>,
    /// Heads that can no longer grow on the right: they wait for the state before.
    done_heads: Vec<(Key, Conn)>,
    since_sweep: u32,
    /// Connections known by a host name only, one per process, and their heads that can
    /// no longer grow.
    names: HashMap<Proc, NameConn>,
    done_name_heads: Vec<(Proc, NameConn)>,
    /// Per process, its last line with an address (dropped once [`GAP`] lines behind), and
    /// its first one within [`GAP`] lines of the state's first line.
    last_ip: HashMap<Proc, u64>,
    head_ips: HashMap<Proc, u64>,
}

impl Conns {
    /// One line of connection (`ip`, `pid`) at `file`:`line`, standing for `n` lines;
    /// `marker` describes it when it is the connection's first line that is not `Failed`.
    /// Connections that can no longer grow are settled into `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        kind: Kind,
        ip: IpAddr,
        pid: u32,
        n: u64,
        file: &Arc<str>,
        line: u64,
        marker: impl FnOnce() -> Marker,
        out: &mut Vec<Excess>,
    ) {
        let head = self.enter(file, line, out);
        let proc = (Arc::clone(file), pid);
        if let Some(c) = self.names.get_mut(&proc) {
            c.shadowed |= near(c.last_line, line);
        }
        if head {
            self.head_ips.entry(proc.clone()).or_insert(line);
        }
        self.last_ip.insert(proc, line);
        let key = (Arc::clone(file), ip, pid);
        if let Some(c) = self.open.get_mut(&key) {
            if line.saturating_sub(c.last_line) <= GAP {
                c.last_line = line;
                c.add(kind, n, marker);
                return self.maybe_sweep(out);
            }
            if let Some(c) = self.open.remove(&key) {
                retire(key.clone(), c, &mut self.done_heads, out);
            }
        }
        let mut c = Conn {
            first_line: line,
            last_line: line,
            head,
            failed: 0,
            invalid: 0,
            closed: 0,
            pam: 0,
            marker: None,
        };
        c.add(kind, n, marker);
        self.open.insert(key, c);
        self.maybe_sweep(out);
    }

    /// Moves the state to `file`:`line`; whether that line is within the state's head.
    fn enter(&mut self, file: &Arc<str>, line: u64, out: &mut Vec<Excess>) -> bool {
        let start = self.start.get_or_insert_with(|| (Arc::clone(file), line));
        let head = *start.0 == **file && line.saturating_sub(start.1) < GAP;
        if self.at.as_ref().is_some_and(|(f, _)| **f != **file) {
            // The file before is over: none of its connections can grow.
            self.retire_all(out);
        }
        match &mut self.at {
            Some((f, l)) if **f == **file => *l = line,
            at => *at = Some((Arc::clone(file), line)),
        }
        head
    }

    fn retire_all(&mut self, out: &mut Vec<Excess>) {
        for (k, c) in std::mem::take(&mut self.open) {
            retire(k, c, &mut self.done_heads, out);
        }
        for (k, c) in std::mem::take(&mut self.names) {
            retire_name(k, c, &mut self.done_name_heads, out);
        }
        self.last_ip.clear();
    }

    /// One PAM failure line (standing for `n`) of process `pid` naming its client by the host
    /// name `name` only, at `file`:`line`.
    #[allow(clippy::too_many_arguments)]
    pub fn observe_name(
        &mut self,
        name: &str,
        pid: u32,
        n: u64,
        file: &Arc<str>,
        line: u64,
        marker: impl FnOnce() -> Marker,
        out: &mut Vec<Excess>,
    ) {
        let head = self.enter(file, line, out);
        let proc = (Arc::clone(file), pid);
        let after_ip = self.last_ip.get(&proc).is_some_and(|&l| near(l, line));
        if let Some(c) = self.names.get_mut(&proc) {
            if &*c.name == name && near(c.last_line, line) {
                c.last_line = line;
                c.pam = c.pam.saturating_add(n);
                c.shadowed |= after_ip;
                return self.maybe_sweep(out);
            }
            if let Some(c) = self.names.remove(&proc) {
                retire_name(proc.clone(), c, &mut self.done_name_heads, out);
            }
        }
        self.names.insert(
            proc,
            NameConn {
                name: Arc::from(name),
                first_line: line,
                last_line: line,
                head,
                pam: n,
                marker: marker(),
                shadowed: after_ip,
            },
        );
        self.maybe_sweep(out);
    }

    fn maybe_sweep(&mut self, out: &mut Vec<Excess>) {
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY {
            self.since_sweep = 0;
            self.sweep(out);
        }
    }

    /// Settles (or sets aside, for heads) the connections more than [`GAP`] lines behind
    /// the last line.
    fn sweep(&mut self, out: &mut Vec<Excess>) {
        let Some((file, line)) = &self.at else { return };
        let ended: Vec<Key> = self
            .open
            .iter()
            .filter(|(k, c)| *k.0 != **file || c.last_line.saturating_add(GAP) < *line)
            .map(|(k, _)| k.clone())
            .collect();
        for k in ended {
            if let Some(c) = self.open.remove(&k) {
                retire(k, c, &mut self.done_heads, out);
            }
        }
        let ended: Vec<Proc> = self
            .names
            .iter()
            .filter(|(k, c)| *k.0 != **file || c.last_line.saturating_add(GAP) < *line)
            .map(|(k, _)| k.clone())
            .collect();
        for k in ended {
            if let Some(c) = self.names.remove(&k) {
                retire_name(k, c, &mut self.done_name_heads, out);
            }
        }
        self.last_ip
            .retain(|k, l| *k.0 == **file && l.saturating_add(GAP) >= *line);
    }

    /// Absorbs `right`, the state of the lines just after this one's.
    pub fn merge(&mut self, mut right: Conns, out: &mut Vec<Excess>) {
        let Some(right_start) = right.start.clone() else {
            return;
        };
        let Some(start) = self.start.clone() else {
            *self = right;
            return;
        };
        let same_file = self.at.as_ref().is_some_and(|(f, _)| *f == right_start.0);
        if !same_file {
            self.retire_all(out);
        }
        self.merge_names(&mut right, &start, out);
        let heads = take_heads(&mut right.done_heads, &mut right.open, |c| c.head);
        for (k, h, growing) in heads {
            if let Some(mut c) = self.open.remove(&k) {
                if h.first_line.saturating_sub(c.last_line) <= GAP {
                    c.absorb(h);
                    if growing {
                        self.open.insert(k, c);
                    } else {
                        retire(k, c, &mut self.done_heads, out);
                    }
                    continue;
                }
                retire(k.clone(), c, &mut self.done_heads, out);
            }
            let mut h = h;
            h.head = *k.0 == *start.0 && h.first_line.saturating_sub(start.1) < GAP;
            if growing {
                self.open.insert(k, h);
            } else {
                retire(k, h, &mut self.done_heads, out);
            }
        }
        for (k, c) in right.open {
            // A connection of the left state with this key ended more than GAP lines before.
            if let Some(old) = self.open.remove(&k) {
                retire(k.clone(), old, &mut self.done_heads, out);
            }
            self.open.insert(k, c);
        }
        self.at = right.at.or(self.at.take());
        self.sweep(out);
    }

    /// The host-name connections of `right` (the state of the lines just after): its heads
    /// join this state's open ones or are shadowed by this state's last lines with an
    /// address, and this state's open ones are shadowed by `right`'s first such lines.
    fn merge_names(&mut self, right: &mut Conns, start: &(Arc<str>, u64), out: &mut Vec<Excess>) {
        let heads = take_heads(&mut right.done_name_heads, &mut right.names, |c| c.head);
        // This state's open connection is still its process's at right's first line with an
        // address only if no host-name line of that process came before it in `right` (one
        // that joins it was judged with it there).
        let mut first_head: HashMap<&Proc, u64> = HashMap::new();
        for (k, h, _) in &heads {
            let e = first_head.entry(k).or_insert(h.first_line);
            *e = (*e).min(h.first_line);
        }
        for (k, c) in self.names.iter_mut() {
            if let Some(&l) = right.head_ips.get(k) {
                let current = first_head.get(k).is_none_or(|&f| f > l);
                c.shadowed |= current && near(c.last_line, l);
            }
        }
        drop(first_head);
        for (k, mut h, growing) in heads {
            h.shadowed |= self.last_ip.get(&k).is_some_and(|&l| near(l, h.first_line));
            if let Some(mut c) = self.names.remove(&k) {
                if c.name == h.name && near(c.last_line, h.first_line) {
                    c.last_line = h.last_line;
                    c.pam = c.pam.saturating_add(h.pam);
                    c.shadowed |= h.shadowed;
                    if growing {
                        self.names.insert(k, c);
                    } else {
                        retire_name(k, c, &mut self.done_name_heads, out);
                    }
                    continue;
                }
                retire_name(k.clone(), c, &mut self.done_name_heads, out);
            }
            h.head = *k.0 == *start.0 && h.first_line.saturating_sub(start.1) < GAP;
            if growing {
                self.names.insert(k, h);
            } else {
                retire_name(k, h, &mut self.done_name_heads, out);
            }
        }
        for (k, c) in right.names.drain() {
            if let Some(old) = self.names.remove(&k) {
                retire_name(k.clone(), old, &mut self.done_name_heads, out);
            }
            self.names.insert(k, c);
        }
        // Right's first lines with an address are this state's too when near its start.
        for (k, l) in right.head_ips.drain() {
            if *k.0 == *start.0 && l.saturating_sub(start.1) < GAP {
                self.head_ips.entry(k).or_insert(l);
            }
        }
        self.last_ip.extend(right.last_ip.drain());
    }

    /// Settles every connection: no state comes before or after.
    pub fn finish(&mut self, out: &mut Vec<Excess>) {
        for ((_, ip, _), c) in self.open.drain().chain(self.done_heads.drain(..)) {
            c.settle(ip, out);
        }
        for (_, c) in self.names.drain().chain(self.done_name_heads.drain(..)) {
            c.settle(out);
        }
    }
}

/// A host-name connection that can no longer grow: settled, or set aside if it is a head.
fn retire_name(
    k: Proc,
    c: NameConn,
    done_heads: &mut Vec<(Proc, NameConn)>,
    out: &mut Vec<Excess>,
) {
    if c.head {
        done_heads.push((k, c));
    } else {
        c.settle(out);
    }
}

/// A connection that can no longer grow: settled, or set aside if it is a head.
/// A right state's heads (connections that began at its first lines), taken out of it:
/// the finished ones, then the open ones, each with whether it can still grow.
fn take_heads<K: Clone + Eq + std::hash::Hash, C>(
    done: &mut Vec<(K, C)>,
    open: &mut HashMap<K, C>,
    is_head: impl Fn(&C) -> bool,
) -> Vec<(K, C, bool)> {
    let mut heads: Vec<(K, C, bool)> = done.drain(..).map(|(k, c)| (k, c, false)).collect();
    let open_heads: Vec<K> = open
        .iter()
        .filter(|(_, c)| is_head(c))
        .map(|(k, _)| k.clone())
        .collect();
    for k in open_heads {
        if let Some(c) = open.remove(&k) {
            heads.push((k, c, true));
        }
    }
    heads
}

fn retire(k: Key, c: Conn, done_heads: &mut Vec<(Key, Conn)>, out: &mut Vec<Excess>) {
    if c.head {
        done_heads.push((k, c));
    } else {
        c.settle(k.1, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(kind, ip, pid, line)` folded in states cut at `cuts` and merged in order: the
    /// excess attempts per IP. A `Pam` line whose `ip` is no address names the host.
    fn excess(lines: &[(Kind, &str, u32, u64)], cuts: &[usize]) -> Vec<(String, u64)> {
        let file: Arc<str> = Arc::from("secure");
        let mut out = Vec::new();
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(lines.len());
        let mut states: Vec<Conns> = Vec::new();
        for w in bounds.windows(2) {
            let mut c = Conns::default();
            for &(kind, ip, pid, line) in &lines[w[0]..w[1]] {
                let marker = || Marker {
                    user: None,
                    ev: Evidence {
                        file: Arc::clone(&file),
                        line,
                        ts: None,
                        text: String::new(),
                        weight: 10,
                    },
                };
                match ip.parse() {
                    Ok(ip) => c.observe(kind, ip, pid, 1, &file, line, marker, &mut out),
                    Err(_) => {
                        assert_eq!(kind, Kind::Pam);
                        c.observe_name(ip, pid, 1, &file, line, marker, &mut out);
                    }
                }
            }
            states.push(c);
        }
        let mut it = states.into_iter();
        let mut all = it.next().unwrap();
        for s in it {
            all.merge(s, &mut out);
        }
        all.finish(&mut out);
        let mut per: std::collections::BTreeMap<String, u64> = Default::default();
        for e in out {
            let who = match e.subject {
                Subject::Ip(ip) => ip.to_string(),
                Subject::Name(n) => n.to_string(),
            };
            *per.entry(who).or_default() += e.n;
        }
        per.into_iter().collect()
    }

    #[test]
    fn a_connection_counts_once_however_the_lines_are_cut() {
        use Kind::*;
        let (a, b) = ("192.0.2.1", "198.51.100.2");
        let lines = [
            // a, pid 7: the usual pair, then its close: no excess.
            (Invalid, a, 7, 1),
            (Pam, a, 7, 2),
            (Failed, a, 7, 3),
            (InvalidClosed, a, 7, 4),
            // b, pid 8: a scanner that sent no password: one attempt.
            (Invalid, b, 8, 5),
            (InvalidClosed, b, 8, 9_000),
            // a, pid 7 again, long after: another connection, without a Failed line.
            (Invalid, a, 7, 20_000),
            // b, pid 9: PAM alone, three failures; a Failed line of another pid.
            (Pam, b, 9, 20_001),
            (Failed, b, 10, 20_002),
            (Pam, b, 9, 29_000),
            // a, pid 7, within GAP of the one before: the same connection.
            (Failed, a, 7, 29_999),
            (Pam, b, 9, 39_000),
            (Invalid, a, 11, 45_000),
        ];
        let want = vec![(a.to_string(), 1), (b.to_string(), 4)];
        assert_eq!(excess(&lines, &[]), want);
        for i in 1..lines.len() {
            assert_eq!(excess(&lines, &[i]), want, "cut at {i}");
            for j in i + 1..lines.len() {
                assert_eq!(excess(&lines, &[i, j]), want, "cuts at {i}, {j}");
            }
        }
    }

    #[test]
    fn host_name_pam_lines_count_only_where_no_line_gives_the_address() {
        use Kind::*;
        let (a, h, g) = ("192.0.2.1", "host.example.net", "gw.example.org");
        let lines = [
            // OpenSSH with UseDNS: PAM names the host, sshd's own lines the address: one
            // attempt, counted for the address (a `Failed` line: no excess).
            (Pam, h, 7, 1),
            (Failed, a, 7, 2),
            // The same with the address first.
            (Invalid, a, 8, 3),
            (Pam, h, 8, 4),
            (Failed, a, 8, 5),
            // Old Red Hat (`sshd(pam_unix)[pid]`): PAM lines only, by name: three attempts.
            (Pam, g, 9, 10),
            (Pam, g, 9, 11),
            (Pam, g, 10, 12),
            // The same pid long after, the address far behind: counted for the name.
            (Pam, h, 7, 30_000),
        ];
        let want = vec![(a.to_string(), 0), (g.to_string(), 3), (h.to_string(), 1)];
        let want: Vec<(String, u64)> = want.into_iter().filter(|w| w.1 > 0).collect();
        assert_eq!(reference(&lines), want);
        assert_eq!(excess(&lines, &[]), want);
        for i in 1..lines.len() {
            assert_eq!(excess(&lines, &[i]), want, "cut at {i}");
            for j in i + 1..lines.len() {
                assert_eq!(excess(&lines, &[i, j]), want, "cuts at {i}, {j}");
            }
        }
    }

    /// A reference count: every connection of the whole sequence, then its excess; a
    /// host-name connection (the current one of its pid) counts unless a line with an address
    /// of its pid came within GAP lines before one of its lines or after its last.
    fn reference(lines: &[(Kind, &str, u32, u64)]) -> Vec<(String, u64)> {
        let mut conns: Vec<(String, u32, u64, [u64; 4])> = Vec::new();
        let mut per: std::collections::BTreeMap<String, u64> = Default::default();
        // (name, last line, PAM lines, shadowed), the current one per pid.
        let mut names: Vec<(String, u64, u64, bool)> = Vec::new();
        let mut current: std::collections::HashMap<u32, usize> = Default::default();
        let mut last_ip: std::collections::HashMap<u32, u64> = Default::default();
        for &(kind, ip, pid, line) in lines {
            if ip.parse::<IpAddr>().is_err() {
                let after_ip = last_ip.get(&pid).is_some_and(|&l| line - l <= GAP);
                match current.get(&pid).map(|&i| &mut names[i]) {
                    Some(n) if n.0 == ip && line - n.1 <= GAP => {
                        n.1 = line;
                        n.2 += 1;
                        n.3 |= after_ip;
                    }
                    _ => {
                        names.push((ip.to_string(), line, 1, after_ip));
                        current.insert(pid, names.len() - 1);
                    }
                }
                continue;
            }
            if let Some(n) = current.get(&pid).map(|&i| &mut names[i]) {
                n.3 |= line - n.1 <= GAP;
            }
            last_ip.insert(pid, line);
            let i = match conns
                .iter()
                .rposition(|c| c.0 == ip && c.1 == pid)
                .filter(|&i| line - conns[i].2 <= GAP)
            {
                Some(i) => i,
                None => {
                    conns.push((ip.to_string(), pid, line, [0; 4]));
                    conns.len() - 1
                }
            };
            conns[i].2 = line;
            conns[i].3[kind as usize] += 1;
        }
        for (ip, _, _, [f, i, c, p]) in conns {
            let n = i.max(c).max(p).saturating_sub(f);
            if n > 0 {
                *per.entry(ip).or_default() += n;
            }
        }
        for (name, _, pam, shadowed) in names {
            if !shadowed {
                *per.entry(name).or_default() += pam;
            }
        }
        per.into_iter().collect()
    }

    #[test]
    fn pseudo_random_sequences_agree_with_the_reference_at_every_cut() {
        use Kind::*;
        let ips = ["192.0.2.1", "192.0.2.2", "198.51.100.3"];
        let hosts = ["a.example.net", "b.example.org"];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for round in 0..20 {
            let mut line = 0;
            let lines: Vec<(Kind, &str, u32, u64)> = (0..40)
                .map(|_| {
                    line += 1 + next(if round % 2 == 0 { 4000 } else { 50 });
                    let kind = [Failed, Invalid, InvalidClosed, Pam, Pam][next(5) as usize];
                    // Every other round, one PAM line in three names a host.
                    let who = if round % 4 < 2 && kind == Pam && next(3) == 0 {
                        hosts[next(2) as usize]
                    } else {
                        ips[next(3) as usize]
                    };
                    (kind, who, next(3) as u32, line)
                })
                .collect();
            let want = reference(&lines);
            for i in 0..lines.len() {
                for j in (i + 1..lines.len()).step_by(7) {
                    assert_eq!(
                        excess(&lines, &[i, j]),
                        want,
                        "round {round}, cuts {i}, {j}"
                    );
                }
            }
        }
    }
}
