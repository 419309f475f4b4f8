"""host.ssh_success_after_failures on a busy host: one IP fails N/2 SSH logins, then logs in
N/2 times (a deploy or monitoring job next to a brute force). Each accepted login once
re-scanned all of the IP's failures. N = lines of auth.log."""
import sys
from common import T0, outdir
import datetime as _dt

n = int(sys.argv[1])
d = outdir("gen_host_accepts", n)
with open(f"{d}/secure", "w") as f:
    for i in range(n):
        t = (T0 + _dt.timedelta(seconds=i)).strftime("%b %d %H:%M:%S")
        pid, port = 1000 + i % 30000, 20000 + i % 40000
        if i < n // 2:
            f.write(f"{t} web1 sshd[{pid}]: Failed password for root from 203.0.113.7 port {port} ssh2\n")
        else:
            f.write(f"{t} web1 sshd[{pid}]: Accepted publickey for deploy from 203.0.113.7 port {port} ssh2: RSA SHA256:abcdefabcdef\n")
