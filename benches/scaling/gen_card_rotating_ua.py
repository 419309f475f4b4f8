"""A card tester rotating its user agent on every request: N checkout submissions from one
IP, refused (429). Checkout sessions (IP + agent) once kept an entry per line. N = lines."""
import sys
from common import clf, outdir

n = int(sys.argv[1])
d = outdir("gen_card_rotating_ua", n)
with open(f"{d}/access_log", "w") as f:
    for i in range(n):
        f.write(clf("198.51.100.10", i, "POST", "/shopping/checkout", 429, 0,
                    ref="https://shop.example.jp/shopping/confirm", ua=f"Mozilla/5.0 (X11; bot {i})"))
