"""waf.unblocked_attack / waf.blocked_then_through matching: one client sends N SQLi
requests to one path; the WAF logs each (MONITOR, or BLOCK when argv[2]=block) and the
access log has each line (200, or 403 when blocked). `nearest` filters every web request
of the same (ip, path) for each WAF record; `bypass` walks them from the
start, skipping the earlier ones. N = records = access lines."""
import sys
from common import clf, outdir, siteguard
n = int(sys.argv[1])
block = len(sys.argv) > 2 and sys.argv[2] == "block"
d = outdir("gen_waf_nearest" + ("_block" if block else ""), n)
q = "/products/list?category_id=1%27%20UNION%20SELECT%20NULL,login_id%20FROM%20dtb_member--"
with open(f"{d}/detect.log", "w") as f:
    for i in range(n):
        f.write(siteguard("203.0.113.45", i, "GET", q, action="BLOCK" if block else "MONITOR",
                          sig="sqli-union-1", sid="00201001", detect="union"))
with open(f"{d}/access_log", "w") as f:
    for i in range(n):
        f.write(clf("203.0.113.45", i, "GET", q, 403 if block else 200))
