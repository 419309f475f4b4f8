"""waf.stored_xss_bait: N unblocked (MONITOR) XSS records on /contact from N IPs in a
SiteGuard detect.log, and N admin-route 2xx hits by staff in the same two days. For every
bait record `bait` filters the whole admin_any list. N = records = hits."""
import sys
from common import clf, outdir, siteguard, ip4
n = int(sys.argv[1])
d = outdir("gen_waf_bait", n)
span = 36 * 3600
with open(f"{d}/detect.log", "w") as f:
    for i in range(n):
        f.write(siteguard(ip4(i, (100, 0, 0, 0)), i * span / n, "POST", "/contact?q=%3Cscript%3Ealert(1)%3C/script%3E"))
with open(f"{d}/access_log", "w") as f:
    for i in range(n):
        f.write(clf("10.0.0.2", int(i * span / n) + 1, "GET", f"/admin/order/{i}/edit", 200))
