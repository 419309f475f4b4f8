"""A botnet probing a shop from N distinct addresses: each sends one SQL-injection probe
(refused, 404) and one XSS probe to the product search, which answers 200 as search pages
do. Every answered client once made its own finding, all held in memory until the report
was written. N = addresses."""
import sys
from common import clf, ip4, outdir

n = int(sys.argv[1])
d = outdir("gen_botnet_probe", n)
with open(f"{d}/access_log", "w") as f:
    for i in range(n):
        ip = ip4(i, (45, 0, 0, 0))
        f.write(clf(ip, i // 10, "GET", f"/products/detail/{i}?id=1%27%20UNION%20SELECT%20NULL,{i}--", 404, 300))
        f.write(clf(ip, i // 10, "GET", f"/products/list?name=%3Cscript%3Ealert({i})%3C/script%3E", 200, 8412))
