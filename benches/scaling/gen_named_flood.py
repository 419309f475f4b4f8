"""Forged requests that each invent a name the card detector keys a table by: an image
with a long base64 query (a beacon candidate), a POST and a page view from a checkout
referer (drop and off-flow candidates) and an order-completion hit from a new referer
host, N of each from 200 addresses. None makes a finding (one client per name); before the
tables spilled, every name stayed in memory with its evidence line. N = names of each kind."""
import sys
from common import clf, outdir

n = int(sys.argv[1])
d = outdir("gen_named_flood", n)
b64 = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkrLw==" * 2
confirm = "https://shop.example.jp/shopping/confirm"
with open(f"{d}/access_log", "w") as f:
    for i in range(n):
        ip = f"203.0.113.{i % 200 + 1}"
        f.write(clf(ip, i, "GET", f"/img/x{i}.png?d={b64}", 200, 43))
        f.write(clf(ip, i, "POST", f"/u{i}.php", 200, 2, ref=confirm))
        f.write(clf(ip, i, "GET", f"/v{i}.php", 200, 2, ref=confirm))
        f.write(clf(ip, i, "GET", "/shopping/complete", 200, 7000, ref=f"https://h{i}.example.org/pay"))
