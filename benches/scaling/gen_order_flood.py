"""A flood of forged order-completion hits, one per client address (IPv6, so the addresses
are as cheap to the sender as the requests), after a web shell was used: the shell makes
the exposure window, which counts every completion hit in it. Before the hits spilled,
the card detector held 40 bytes per hit (up to 5 million per state, then the count was
cut) and the exposure count every customer IP. N = completion hits."""
import sys
from common import clf, outdir

n = int(sys.argv[1])
d = outdir("gen_order_flood", n)
confirm = "https://shop.example.jp/shopping/confirm"
with open(f"{d}/access_log", "w") as f:
    f.write(clf("198.51.100.9", 0, "GET", "/html/user_data/up.php?cmd=id", 200, 120))
    for i in range(n):
        ip = f"2001:db8:{(i >> 32) & 0xffff:x}:{(i >> 16) & 0xffff:x}::{i & 0xffff:x}"
        f.write(clf(ip, 1 + i // 50, "GET", "/shopping/complete", 200, 7000, ref=confirm))
