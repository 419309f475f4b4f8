"""card.asset_drift: N first-party JS files each served 5x at one size, then 5x at another
(a theme rebuild that touched every file). For every change `together` counts over all
changes. N = asset paths (10 lines each)."""
import sys
from common import clf, outdir, ip4
n = int(sys.argv[1])
d = outdir("gen_card_drift", n)
lines = []
with open(f"{d}/access_log", "w") as f:
    for phase, size in ((0, 1200), (1, 1350)):
        for k in range(5):
            for i in range(n):
                t = phase * 7200 + k * 600 + (i * 600 // n)
                f.write(clf(ip4(i * 5 + k), t, "GET", f"/html/template/default/assets/js/m{i}.js", 200, size,
                            ref="https://shop.example.jp/products/list"))
