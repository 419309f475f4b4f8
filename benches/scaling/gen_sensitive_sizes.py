"""A catch-all page whose size varies: `/.env` answered 200 to 250 IPs, each time with another
size. The soft-404 check once kept path strings per size. N = lines."""
import sys
from common import clf, outdir

n = int(sys.argv[1])
d = outdir("gen_sensitive_sizes", n)
with open(f"{d}/access_log", "w") as f:
    for i in range(n):
        f.write(clf(f"203.0.113.{i % 250}", i, "GET", "/.env", 200, 1000 + i))
