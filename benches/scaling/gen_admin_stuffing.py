"""admin.success_after_failures after credential stuffing: N IPs each fail once as 'admin'
and then log in as 'admin' (the campaign found the password and every bot uses it), within
one hour, in dtb_login_history. Each success gets a finding whose group takes every earlier
failure of the user in the hour: Group.ips has no cap, so findings x IPs grows as N^2
 1052), and the `before`
filter scans all of the user's failures per success. N = IPs."""
import sys
from common import LOGIN_HISTORY_HEADER, ip4, login_row, outdir
n = int(sys.argv[1])
d = outdir("gen_admin_stuffing", n)
with open(f"{d}/login_history.csv", "w") as f:
    f.write(LOGIN_HISTORY_HEADER)
    rows = []
    for i in range(n):
        ip = ip4(i, (100, 0, 0, 0))
        base = i * 3000 // n
        rows.append((base, ip, 0))
        rows.append((base + 20, ip, 1))
    rows.sort()
    for t, ip, s in rows:
        f.write(login_row(t, "admin", ip, s))
