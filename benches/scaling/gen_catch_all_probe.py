"""A scanner against a shop that answers every path with its top page (200, 8412 bytes):
N distinct web-shell names under upload directories (every other one with `cmd=id`) and N
distinct file names in writable directories, from 50 addresses. Every name once held state
(web-shell groups, card harvest candidates) and made a high finding. N = names of each kind."""
import sys
from common import clf, outdir

n = int(sys.argv[1])
d = outdir("gen_catch_all_probe", n)
with open(f"{d}/access_log", "w") as f:
    for i in range(n):
        ip = f"203.0.113.{i % 50 + 1}"
        q = "?cmd=id" if i % 2 == 0 else ""
        f.write(clf(ip, i, "GET", f"/html/user_data/x{i}.php{q}", 200, 8412))
        f.write(clf(ip, i, "GET", f"/upload/save_image/d{i}.txt", 200, 8412))
