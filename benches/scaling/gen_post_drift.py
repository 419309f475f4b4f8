"""post::link_drift: N asset-drift findings (as gen_card_drift) and N admin.brute_force
findings (N IPs, 6 failed logins each in dtb_login_history) in the six hours before the
change. Every drift finding is linked to every admin finding: `related` and the summary's
note list grow as drifts x admin findings. N = assets = brute-forcing IPs."""
import sys
from common import LOGIN_HISTORY_HEADER, clf, ip4, login_row, outdir
n = int(sys.argv[1])
d = outdir("gen_post_drift", n)
with open(f"{d}/access_log", "w") as f:
    for phase, size in ((0, 1200), (1, 1350)):
        for k in range(5):
            for i in range(n):
                t = 4 * 3600 + phase * 7200 + k * 600 + (i * 600 // n)
                f.write(clf(ip4(i * 5 + k), t, "GET", f"/html/template/default/assets/js/m{i}.js", 200, 1200 + phase * 150,
                            ref="https://shop.example.jp/products/list"))
with open(f"{d}/login_history.csv", "w") as f:
    f.write(LOGIN_HISTORY_HEADER)
    rows = []
    for i in range(n):
        for k in range(6):
            rows.append((3 * 3600 + 3600 + k * 60 + i * 60 // n, ip4(i, (100, 0, 0, 0))))
    rows.sort()
    for t, ip in rows:
        f.write(login_row(t, "admin", ip, 0))
