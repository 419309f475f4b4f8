"""post::compromise_chain: N admin takeovers (N IPs, each 5 failed logins then a success, in
dtb_login_history -> admin.success_after_failures) and N scripts run in an upload folder
(/html/user_data/sN.php answered 200 -> webshell.upload_dir_script). The chain pairs every
takeover with every web-shell finding. N = takeover IPs = scripts."""
import sys
from common import LOGIN_HISTORY_HEADER, clf, ip4, login_row, outdir
n = int(sys.argv[1])
SHARED = len(sys.argv) > 2 and sys.argv[2] == "shared"  # one user name for all (stuffing)
d = outdir("gen_post_chain" + ("_shared" if SHARED else ""), n)
with open(f"{d}/login_history.csv", "w") as f:
    f.write(LOGIN_HISTORY_HEADER)
    rows = []
    for i in range(n):
        ip = ip4(i, (100, 0, 0, 0))
        base = i * 3600 // n
        for k in range(5):
            rows.append((base + k * 10, ip, 0))
        rows.append((base + 60, ip, 1))
    rows.sort()
    for t, ip, s in rows:
        user = "admin" if SHARED else "staff_" + ip.replace(".", "_")
        f.write(login_row(t, user, ip, s))
with open(f"{d}/access_log", "w") as f:
    for i in range(n):
        f.write(clf(ip4(i, (20, 0, 0, 0)), 7200 + i * 3600 // n, "GET", f"/html/user_data/s{i}.php", 200, 40))
