"""Five months of an exposed SSH server (syslog times carry no year: June to October): N failed logins from 5,000 addresses trying 2,000 user
names, and at the end one address that failed 50 times gets in. Failures past the records
kept (1,000,000) once went uncounted; every failure is now summed per address and the
records are compact. N = failed logins."""
import sys
from common import T0, outdir
import datetime as _dt

n = int(sys.argv[1])
d = outdir("gen_host_flood", n)
step = max(1, 150 * 86400 // max(n, 1))
with open(f"{d}/secure", "w") as f:
    for i in range(n):
        t = (T0 + _dt.timedelta(seconds=i * step)).strftime("%b %d %H:%M:%S")
        ip = f"198.51.{(i * 7) % 5000 // 250}.{(i * 7) % 250 + 1}"
        f.write(f"{t} web1 sshd[{1000 + i % 30000}]: Failed password for invalid user u{i % 2000} from {ip} port {20000 + i % 40000} ssh2\n")
    end = T0 + _dt.timedelta(seconds=n * step)
    for k in range(50):
        t = (end + _dt.timedelta(seconds=k)).strftime("%b %d %H:%M:%S")
        f.write(f"{t} web1 sshd[999]: Failed password for root from 203.0.113.99 port 4{k:04d} ssh2\n")
    t = (end + _dt.timedelta(seconds=60)).strftime("%b %d %H:%M:%S")
    f.write(f"{t} web1 sshd[999]: Accepted password for root from 203.0.113.99 port 45000 ssh2\n")
