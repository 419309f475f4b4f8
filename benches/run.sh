#!/usr/bin/env bash
# Scan-throughput benchmark for ecir (issue 2). See benches/README.md.
#
#   benches/run.sh            # build, generate data if absent, measure, print a markdown table
#   RUNS=5 benches/run.sh     # best of 5 instead of 3
#   SKIP_4G=1 benches/run.sh  # skip the 4 GiB file (peak-RSS growth check)
#   XL=1 benches/run.sh       # also generate and measure the memory of an 8 GiB file
#   BENCH_DATA=/big/disk benches/run.sh
#   PLAIN_SIZE=16MiB BIG_SIZE=64MiB GZ_SIZE=2MiB BENCH_DATA=/tmp/smoke benches/run.sh  # smoke test
#
# Data (generated once by `loggen`, deterministic, kept in $BENCH_DATA, gitignored):
#   plain-1GiB.log          1 GiB plain combined log (seed 1)
#   plain-4GiB.log          4 GiB plain combined log (seed 4), for peak memory only
#   plain-8GiB.log          8 GiB (seed 8), memory only, with XL=1 (or when present)
#   gz-128MiB/access_log.N.gz  eight gzip files of 128 MiB uncompressed each (seeds 11..18)
#
# Timings are wall clock, warm page cache (one untimed warm-up run first), best of $RUNS.
# Requires: cargo, zcat, pigz, GNU time (/usr/bin/time). Exit status of `ecir scan` is
# ignored only for 1 (findings), anything else aborts.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${BENCH_DATA:-$ROOT/bench-data}
RUNS=${RUNS:-3}
SKIP_4G=${SKIP_4G:-0}
XL=${XL:-0}
# Sizes can be shrunk for a smoke test (the targets refer to the defaults).
PLAIN_SIZE=${PLAIN_SIZE:-1GiB}
BIG_SIZE=${BIG_SIZE:-4GiB}
GZ_SIZE=${GZ_SIZE:-128MiB}
ECIR=$ROOT/target/release/ecir
# The same binary with the `heap-stats` feature (a counting allocator), for the live heap.
HEAPSTATS_TARGET=$ROOT/target/heap-stats
ECIR_HS=$HEAPSTATS_TARGET/release/ecir
LOGGEN=$ROOT/target/release/loggen

need() { command -v "$1" >/dev/null || { echo "run.sh: $1 is required ($2)" >&2; exit 2; }; }
need zcat "gzip package"
need pigz "apt-get install -y pigz"
[ -x /usr/bin/time ] || { echo "run.sh: /usr/bin/time is required (apt-get install -y time)" >&2; exit 2; }

log() { echo "[run.sh] $*" >&2; }

log "building release binaries"
(cd "$ROOT" && cargo build --release -q -p ecir -p loggen)
(cd "$ROOT" && CARGO_TARGET_DIR=$HEAPSTATS_TARGET cargo build --release -q -p ecir --features heap-stats)

mkdir -p "$DATA/gz-$GZ_SIZE"
gen() { # gen FILE ARGS...: generate FILE atomically if absent
    local f=$1; shift
    if [ ! -s "$f" ]; then
        log "generating $f"
        "$LOGGEN" "$@" --out "$f.tmp" && mv "$f.tmp" "$f"
    fi
}
gen "$DATA/plain-$PLAIN_SIZE.log" --size "$PLAIN_SIZE" --seed 1
[ "$SKIP_4G" = 1 ] || gen "$DATA/plain-$BIG_SIZE.log" --size "$BIG_SIZE" --seed 4 --start 2024-06-01
XL_FILE=$DATA/plain-8GiB.log
[ "$XL" = 1 ] && gen "$XL_FILE" --size 8GiB --seed 8 --start 2024-07-01
GZ=()
for i in 1 2 3 4 5 6 7 8; do
    f=$DATA/gz-$GZ_SIZE/access_log.$i.gz
    GZ+=("$f")
    # Two at a time (gzip level 6 is the slow part).
    gen "$f" --size "$GZ_SIZE" --gzip --seed $((10 + i)) --start "2024-05-0$i" &
    if (( i % 2 == 0 )); then wait; fi
done
wait

PLAIN=$DATA/plain-$PLAIN_SIZE.log
plain_bytes=$(stat -c %s "$PLAIN")
cached_count() { # cached_count NAME CMD...: run CMD once, cache its output
    local f=$DATA/.$1
    [ -s "$f" ] || "${@:2}" >"$f"
    cat "$f"
}
plain_lines=$(cached_count "plain-$PLAIN_SIZE.lines" bash -c "wc -l < '$PLAIN'")
gz_bytes=$(cached_count "gz-$GZ_SIZE.bytes" bash -c "zcat ${GZ[*]} | wc -c")
gz_lines=$(cached_count "gz-$GZ_SIZE.lines" bash -c "zcat ${GZ[*]} | wc -l")
gz_compressed=$(cat "${GZ[@]}" | wc -c)

# best_of CMD...: runs CMD once untimed (warm-up) then $RUNS times; prints
# "wall user+sys" in seconds of the run with the best wall time. CMD may be a function.
best_of() {
    local best="" cpu="" r rc out=$DATA/.time wall u sy
    for ((r = 0; r <= RUNS; r++)); do
        set +e
        { TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>&1; } 2>"$out"
        rc=$?
        set -e
        if [ $rc -ne 0 ]; then
            echo "run.sh: command failed ($rc): $*" >&2
            exit 2
        fi
        ((r == 0)) && continue # warm-up
        read -r wall u sy <"$out"
        if [ -z "$best" ] || awk -v a="$wall" -v b="$best" 'BEGIN { exit !(a < b) }'; then
            best=$wall
            cpu=$(awk -v u="$u" -v s="$sy" 'BEGIN { printf "%.2f", u + s }')
        fi
    done
    echo "$best $cpu"
}

scan() { "$ECIR" scan --quiet --fail-on never --json /dev/null "$@"; }
zcat_all() { zcat "${GZ[@]}"; }
pigz_all() { pigz -dc "${GZ[@]}"; }
wc_plain() { wc -l "$PLAIN"; }
# peak_rss_mib CMD...: peak resident set size of one run, in MiB.
peak_rss_mib() {
    local kib out=$DATA/.rss
    /usr/bin/time -o "$out" -f %M "$@" >/dev/null 2>&1
    kib=$(tail -1 "$out")
    awk -v k="$kib" 'BEGIN { printf "%.0f", k / 1024 }'
}

# peak_anon_mib CMD...: peak anonymous (heap, stacks; not file-backed mmap pages) resident
# memory of one run, sampled from /proc/PID/status every 20 ms, in MiB.
peak_anon_mib() {
    local pid peak=0 kib
    "$@" >/dev/null 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        kib=$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        if [ -n "$kib" ] && ((kib > peak)); then peak=$kib; fi
        sleep 0.02
    done
    wait "$pid" || true
    awk -v k="$peak" 'BEGIN { printf "%.0f", k / 1024 }'
}

# live_heap_mib FILE...: the peak live heap (bytes allocated and not yet freed) of one
# scan, in MiB, from the heap-stats build.
live_heap_mib() {
    ECIR_HEAP_STATS=1 "$ECIR_HS" scan --quiet --fail-on never --json /dev/null "$@" 2>&1 >/dev/null |
        awk '/^heap-stats:/ { printf "%.0f", $5 }'
}

load_before=$(uptime | sed 's/.*load average: //')
log "load before: $load_before"

log "wc -l on $PLAIN_SIZE";                 r=$(best_of wc_plain); read -r t_wc c_wc <<<"$r"
log "ecir scan $PLAIN_SIZE";                r=$(best_of scan "$PLAIN"); read -r t_scan c_scan <<<"$r"
log "ecir scan -j 1 $PLAIN_SIZE";           r=$(best_of scan -j 1 "$PLAIN"); read -r t_j1 c_j1 <<<"$r"
log "ecir scan -j 2 $PLAIN_SIZE";           r=$(best_of scan -j 2 "$PLAIN"); read -r t_j2 c_j2 <<<"$r"
log "zcat over 8 gz";                 r=$(best_of zcat_all); read -r t_zcat c_zcat <<<"$r"
log "pigz -dc over 8 gz";             r=$(best_of pigz_all); read -r t_pigz c_pigz <<<"$r"
log "ecir scan 8 gz";                 r=$(best_of scan "${GZ[@]}"); read -r t_gz c_gz <<<"$r"
log "peak anon $PLAIN_SIZE";           anon_1g=$(peak_anon_mib "$ECIR" scan --quiet --fail-on never --json /dev/null "$PLAIN")
log "peak RSS $PLAIN_SIZE";                 rss_1g=$(peak_rss_mib "$ECIR" scan --quiet --fail-on never --json /dev/null "$PLAIN")
log "live heap $PLAIN_SIZE";                heap_1g=$(live_heap_mib "$PLAIN")
# With a WAF log among the inputs, the WAF detector correlates every candidate request.
WAFLOG=$ROOT/tests/fixtures/rules/waf.unblocked_attack/modsec_audit.json
log "peak RSS $PLAIN_SIZE + WAF log";       waf_1g=$(peak_rss_mib "$ECIR" scan --quiet --fail-on never --json /dev/null "$PLAIN" "$WAFLOG")
if [ "$SKIP_4G" = 1 ]; then
    rss_4g=n/a anon_4g=n/a waf_4g=n/a heap_4g=n/a
else
    log "live heap $BIG_SIZE";        heap_4g=$(live_heap_mib "$DATA/plain-$BIG_SIZE.log")
    log "peak anon $BIG_SIZE";        anon_4g=$(peak_anon_mib "$ECIR" scan --quiet --fail-on never --json /dev/null "$DATA/plain-$BIG_SIZE.log")
    log "peak RSS $BIG_SIZE";             rss_4g=$(peak_rss_mib "$ECIR" scan --quiet --fail-on never --json /dev/null "$DATA/plain-$BIG_SIZE.log")
    log "peak RSS $BIG_SIZE + WAF log";   waf_4g=$(peak_rss_mib "$ECIR" scan --quiet --fail-on never --json /dev/null "$DATA/plain-$BIG_SIZE.log" "$WAFLOG")
fi
rss_xl=n/a anon_xl=n/a heap_xl=n/a
if [ -s "$XL_FILE" ]; then
    log "peak anon 8GiB";             anon_xl=$(peak_anon_mib "$ECIR" scan --quiet --fail-on never --json /dev/null "$XL_FILE")
    log "peak RSS 8GiB";              rss_xl=$(peak_rss_mib "$ECIR" scan --quiet --fail-on never --json /dev/null "$XL_FILE")
    log "live heap 8GiB";             heap_xl=$(live_heap_mib "$XL_FILE")
fi
load_after=$(uptime | sed 's/.*load average: //')

# row NAME SECONDS CPU_SECONDS BYTES LINES
row() {
    awk -v n="$1" -v t="$2" -v c="$3" -v b="$4" -v l="$5" 'BEGIN {
        printf "| %s | %.3f | %.0f | %.2f M | %.2f | %s |\n", n, t, b / t / 1e6, l / t / 1e6, c, (c > 0 ? sprintf("%.0f", b / c / 1e6) : "-") }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v v="$1" -v op="$2" -v lim="$3" 'BEGIN {
    ok = (op == "<=") ? (v <= lim) : (op == "<") ? (v < lim) : (v >= lim)
    print ok ? "**met**" : "**not met**" }'; }

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mb_scan=$(awk -v b="$plain_bytes" -v t="$t_scan" 'BEGIN { printf "%.0f", b / t / 1e6 }')
r_wc=$(ratio "$t_scan" "$t_wc")
r_zcat=$(ratio "$t_gz" "$t_zcat")
r_j=$(ratio "$t_j1" "$t_j2")

cat <<EOF

Machine: $(nproc) cores, $cpu; load average before: $load_before, after: $load_after.
Date: $(date -u +%Y-%m-%dT%H:%MZ); ecir $(git -C "$ROOT" rev-parse --short HEAD); best of $RUNS, warm cache.
Plain: $(basename "$PLAIN"), $plain_bytes bytes, $plain_lines lines.
Gzip: 8 files, $gz_compressed bytes compressed, $gz_bytes bytes / $gz_lines lines uncompressed (MB/s below are of uncompressed bytes).

| Run | Wall (s) | MB/s | lines/s | CPU s (user+sys) | MB per CPU-s |
|---|---:|---:|---:|---:|---:|
$(row "\`wc -l\` $PLAIN_SIZE plain" "$t_wc" "$c_wc" "$plain_bytes" "$plain_lines")
$(row "\`ecir scan\` $PLAIN_SIZE plain (default -j)" "$t_scan" "$c_scan" "$plain_bytes" "$plain_lines")
$(row "\`ecir scan -j 1\` $PLAIN_SIZE plain" "$t_j1" "$c_j1" "$plain_bytes" "$plain_lines")
$(row "\`ecir scan -j 2\` $PLAIN_SIZE plain" "$t_j2" "$c_j2" "$plain_bytes" "$plain_lines")
$(row "\`zcat\` 8 × $GZ_SIZE gz, one after another" "$t_zcat" "$c_zcat" "$gz_bytes" "$gz_lines")
$(row "\`pigz -dc\` 8 × $GZ_SIZE gz, one after another" "$t_pigz" "$c_pigz" "$gz_bytes" "$gz_lines")
$(row "\`ecir scan\` 8 × $GZ_SIZE gz (one scan)" "$t_gz" "$c_gz" "$gz_bytes" "$gz_lines")

| Peak memory of \`ecir scan\` | RSS, MiB (\`/usr/bin/time %M\`, includes mmap'd file pages) | anonymous RSS, MiB (heap; sampled every 20 ms) | live heap, MiB (\`heap-stats\` build) |
|---|---:|---:|---:|
| $PLAIN_SIZE plain | $rss_1g | $anon_1g | $heap_1g |
| $BIG_SIZE plain | $rss_4g | $anon_4g | $heap_4g |
| 8GiB plain (\`XL=1\`) | $rss_xl | $anon_xl | $heap_xl |
| $PLAIN_SIZE plain + a WAF log (WAF correlation on) | $waf_1g | — | — |
| $BIG_SIZE plain + a WAF log | $waf_4g | — | — |

| Target (issue 2) | Measured | Verdict |
|---|---|---|
| $PLAIN_SIZE full scan ≥ 500 MB/s | $mb_scan MB/s | $(verdict "$mb_scan" ">=" 500) |
| $PLAIN_SIZE full scan ≤ 8 × \`wc -l\` | $r_wc × | $(verdict "$r_wc" "<=" 8) |
| 8 × $GZ_SIZE gz files < 0.6 × \`zcat\` one after another | $r_zcat × | $(verdict "$r_zcat" "<" 0.6) |
| Peak RSS does not grow with input ($PLAIN_SIZE → $BIG_SIZE): within 1.25 × | $rss_1g → $rss_4g MiB ($( [ "$rss_4g" = n/a ] && echo n/a || ratio "$rss_4g" "$rss_1g") ×) | $( [ "$rss_4g" = n/a ] && echo n/a || verdict "$(ratio "$rss_4g" "$rss_1g")" "<=" 1.25) |
| …with a WAF log in the run: within 1.25 × | $waf_1g → $waf_4g MiB | $( [ "$waf_4g" = n/a ] && echo n/a || verdict "$(ratio "$waf_4g" "$waf_1g")" "<=" 1.25) |
| (live heap, for diagnosis): within 1.25 × | $heap_1g → $heap_4g MiB | $( [ "$heap_4g" = n/a ] && echo n/a || verdict "$(ratio "$heap_4g" "$heap_1g")" "<=" 1.25) |

\`-j 1\` / \`-j 2\` time: $r_j × (speed-up from the second core).
EOF
