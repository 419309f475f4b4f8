"""admin.success_after_failures: one IP and one user alternating failed and successful admin
logins (a scripted integration re-logging in, or a tester), as a dtb_login_history export.
For each success `before` filters every failure of that IP and of that user
. N = login rows."""
import sys
from common import LOGIN_HISTORY_HEADER, login_row, outdir
n = int(sys.argv[1])
d = outdir("gen_admin_saf", n)
with open(f"{d}/login_history.csv", "w") as f:
    f.write(LOGIN_HISTORY_HEADER)
    for i in range(n):
        f.write(login_row(i * 2, "admin", "203.0.113.7", i % 2))
