"""admin.success_after_failures: one IP and one user alternating failed and successful admin
logins (a scripted integration re-logging in, or a tester), as a dtb_login_history export.
For each success `before` filters every failure of that IP and of that user
. N = login rows."""
import sys
from common import outdir, utc_str
n = int(sys.argv[1])
d = outdir("gen_admin_saf", n)
with open(f"{d}/login_history.csv", "w") as f:
    f.write("create_date,user_name,client_ip,login_history_status_id,member_id\n")
    for i in range(n):
        f.write(f"{utc_str(i * 2)},admin,203.0.113.7,{i % 2},\n")
