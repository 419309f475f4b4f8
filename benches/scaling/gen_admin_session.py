"""admin.session_without_login: one staff IP logs in N times on day 1 (EC-CUBE 4:
POST /admin/login 302 then GET /admin/ 200), then on day 3 opens N admin pages. For every
day-3 page `had` scans all of the IP's logins with .any() and finds none in the last 24 h
. N = logins = later pages."""
import sys
from common import clf, outdir
n = int(sys.argv[1])
d = outdir("gen_admin_session", n)
ip = "192.0.2.10"
with open(f"{d}/access_log", "w") as f:
    t = 0
    for i in range(n):
        f.write(clf(ip, t, "POST", "/admin/login", 302))
        f.write(clf(ip, t + 1, "GET", "/admin/", 200))
        t += 2
    t = max(t, 0) + 49 * 3600
    for i in range(n):
        f.write(clf(ip, t + i, "GET", f"/admin/order/{i}/edit", 200))
