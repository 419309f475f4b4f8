"""recon.404_burst per-minute buckets fed newest-first: one file exported newest line first
(a SIEM/CloudWatch export), one IP drawing a 404 every minute. Each older minute is a
Vec::insert at the front of per_minute. N = minutes."""
import sys
from common import clf, outdir
n = int(sys.argv[1])
d = outdir("gen_recon_desc", n)
with open(f"{d}/access_log", "w") as f:
    for m in range(n - 1, -1, -1):
        f.write(clf("198.51.100.7", m * 60, "GET", "/favicon.ico", 404, 196, ua="UptimeChecker/1.0"))
