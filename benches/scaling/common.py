"""Shared helpers for the ecir scaling generators."""
import datetime as _dt
import os

JST = _dt.timezone(_dt.timedelta(hours=9))
T0 = _dt.datetime(2024, 6, 1, 0, 0, 0, tzinfo=JST)
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0 Safari/537.36"


def ts(sec):
    """seconds after T0 -> CLF time."""
    return (T0 + _dt.timedelta(seconds=sec)).strftime("%d/%b/%Y:%H:%M:%S %z")


def epoch(sec):
    return (T0 + _dt.timedelta(seconds=sec)).timestamp()


def utc_str(sec):
    return (T0 + _dt.timedelta(seconds=sec)).astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def clf(ip, sec, method, target, status, size=512, ref="-", ua=UA):
    return f'{ip} - - [{ts(sec)}] "{method} {target} HTTP/1.1" {status} {size} "{ref}" "{ua}"\n'


def ip4(i, base=(10, 0, 0, 0)):
    """i-th address in a /8 starting at base (skips .0)."""
    a = base[0]
    i += 1
    return f"{a}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def siteguard(ip, sec, method, url, action="MONITOR", sig="xss-tag-1", sid="00102001",
              detect="%3cscript%3e"):
    e = epoch(sec)
    return (f"{e:.6f}      0 {ip} TCP_MISS/000 0 {method} http://shop.example.jp{url} - DIRECT/10.0.0.5 - "
            f"DETECT-STAT:WAF:RULE_SIG/PART_PARAM_VALUE|PART_GET_PARAM/q/OFFICIAL/{sid}/{sig}::{detect}:{detect}: "
            f"ACTION:{action}: JUDGE:{action}:0: SEARCH-KEY:{e:.6f}.{int(sec) % 100000}:\n")


LOGIN_HISTORY_HEADER = "create_date,user_name,client_ip,login_history_status_id,member_id\n"


def login_row(sec, user, ip, status):
    """One EC-CUBE dtb_login_history row (status 1 = success, 0 = failure)."""
    return f"{utc_str(sec)},{user},{ip},{status},\n"


def outdir(name, n):
    d = os.path.join(os.environ.get("SCALING_DATA", "/tmp/ecir-scaling"), f"{name}-{n}")
    os.makedirs(d, exist_ok=True)
    return d
