#!/usr/bin/env python3
"""Writes a synthetic combined-format access log for timeline/scan benchmarks.

usage: gen_combined.py OUT MEGABYTES [--shuffle]
Lines are in time order unless --shuffle (then blocks of lines are written out of order).
Deterministic (fixed seed)."""
import random, sys, time

out, mb = sys.argv[1], int(sys.argv[2])
shuffle = "--shuffle" in sys.argv
rnd = random.Random(42)
paths = ["/", "/products/list", "/products/detail/%d", "/cart", "/shopping/confirm",
         "/mypage/login", "/html/user_data/%d.css", "/admin/login", "/wp-login.php", "/.env"]
uas = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
       "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
       "curl/8.5.0", "sqlmap/1.7"]
t0 = 1714489200
target = mb << 20
size = 0
blocks = []
block = []
i = 0
while size < target:
    ts = t0 + i // 20
    p = rnd.choice(paths)
    if "%d" in p:
        p = p % rnd.randrange(1000)
    line = '198.51.%d.%d - - [%s] "GET %s HTTP/1.1" %d %d "-" "%s"\n' % (
        rnd.randrange(256), rnd.randrange(256),
        time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(ts)), p,
        rnd.choice((200, 200, 200, 304, 404)), rnd.randrange(50000), rnd.choice(uas))
    block.append(line)
    size += len(line)
    i += 1
    if len(block) == 5000:
        blocks.append("".join(block))
        block = []
blocks.append("".join(block))
if shuffle:
    rnd.shuffle(blocks)
with open(out, "w") as f:
    for b in blocks:
        f.write(b)
