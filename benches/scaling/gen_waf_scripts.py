"""waf.unblocked_attack first-seen-script escalation: N clients each send one SQLi the WAF
only logs (MONITOR) and the shop answers 200, and N distinct .php paths (a legacy PHP shop:
/lp/campaign_N.php) are answered 200. For every unblocked group (one per IP) `unblocked`
scans every kept script path. N = attacking IPs = script paths."""
import sys
from common import clf, outdir, siteguard, ip4
n = int(sys.argv[1])
d = outdir("gen_waf_scripts", n)
q = "/products/list?category_id=1%27%20UNION%20SELECT%20NULL--"
with open(f"{d}/detect.log", "w") as f:
    for i in range(n):
        f.write(siteguard(ip4(i, (100, 0, 0, 0)), i, "GET", q, sig="sqli-union-1", sid="00201001", detect="union"))
with open(f"{d}/access_log", "w") as f:
    for i in range(n):
        f.write(clf(ip4(i, (100, 0, 0, 0)), i, "GET", q, 200))
        f.write(clf(ip4(i, (20, 0, 0, 0)), i, "GET", f"/lp/campaign_{i}.php", 200))
