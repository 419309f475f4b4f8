"""Blocked variant of gen_waf_nearest.py (BLOCK records, 403 access lines): exercises
`bypass`."""
import sys, runpy
sys.argv = [sys.argv[0], sys.argv[1], "block"]
import os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen_waf_nearest.py"), run_name="__main__")
