"""recon.404_burst per-minute buckets fed out of time order: an uptime checker hitting a
missing URL once a minute, logs rotated with dateext. Files are scanned in name order, so
the current `access_log` (newest minutes) comes before the rotated `access_log-YYYYMMDD`
(older minutes): every older minute is inserted at the front of the Vec.
N = minutes per file (2 files)."""
import sys
from common import clf, outdir
n = int(sys.argv[1])
d = outdir("gen_recon_rotated", n)
with open(f"{d}/access_log-20240601", "w") as f:   # older half
    for m in range(n):
        f.write(clf("198.51.100.7", m * 60, "GET", "/favicon.ico", 404, 196, ua="UptimeChecker/1.0"))
with open(f"{d}/access_log", "w") as f:            # newer half, scanned first
    for m in range(n, 2 * n):
        f.write(clf("198.51.100.7", m * 60, "GET", "/favicon.ico", 404, 196, ua="UptimeChecker/1.0"))
