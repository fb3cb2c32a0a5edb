"""A preset end to end as a newcomer runs it, against the cost model's estimate, and whether it separates the archs.

    python benchmarks/preset_time.py                  # preset quick: goal <= 10 minutes on this 2-core machine
    python benchmarks/preset_time.py --preset seed

Runs `python -m flows.compare --preset NAME` in a fresh process (local Ray and Prefect API started and stopped
by it, as the README's command does) on a fresh output, and prints: wall time, the plan's estimate and their
ratio (goal: within 30%), and from summary.parquet the problems on which some arch's cell is solved while
another's was solved in no seed (the quick preset's goal: at least two).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"quick": 600.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("extra", nargs="*", help="more flags for flows.compare")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import polars as pl

    from rnnbench.verdicts import separating_problems

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "flows.compare", "--preset", args.preset, *args.extra,
                               "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        plan = next((line for line in proc.stderr.splitlines() if line.startswith("plan:")), "")
        if proc.returncode not in (0, 1):
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            return 2
        summary = pl.read_parquet(out / "summary.parquet")
        separated = separating_problems(summary)
        cells = summary.filter(pl.col("chosen")).select("problem", "seq_len", "arch", "verdict_text")
    match = re.search(r"CPU-hours by the cost model: ~([0-9.]+) min", plan)
    print(f"preset {args.preset} {' '.join(args.extra)}: exit {proc.returncode}, wall {wall:.0f} s "
          f"({wall / 60:.1f} min)")
    print(plan)
    if match:
        estimate_s = float(match.group(1)) * 60
        ratio = wall / estimate_s
        print(f"cost model: {estimate_s:.0f} s of wall estimated on {os.cpu_count()} cores; measured / estimated "
              f"= {ratio:.2f} (goal 0.70-1.30) {'PASS' if 0.7 <= ratio <= 1.3 else 'FAIL'}")
    with pl.Config(tbl_rows=100, tbl_width_chars=140, fmt_str_lengths=60):
        print(cells)
    print(f"separating problems: {', '.join(separated) or 'none'}"
          + (f" (goal: at least 2) {'PASS' if len(separated) >= 2 else 'FAIL'}" if args.preset == "quick" else ""))
    goal = GOALS.get(args.preset)
    if goal:
        print(f"end to end {wall:.0f} s (goal <= {goal:.0f} s) {'PASS' if wall <= goal else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
