"""A preset end to end as a newcomer runs it, against the cost model's estimate, and whether it separates the archs.

    python benchmarks/preset_time.py                  # preset quick: goal <= 10 minutes on this 2-core machine
    python benchmarks/preset_time.py --preset seed
    python benchmarks/preset_time.py --fastpath-ratios   # quick with the CPU fast paths on, then off, one run

Runs `python -m flows.compare --preset NAME` in a fresh process (local Ray and Prefect API started and stopped
by it, as the README's command does) on a fresh output, and prints: wall time, the plan's estimate and their
ratio (goal: within 30%), and from summary.parquet the problems on which some arch's cell is solved while
another's was solved in no seed (the quick preset's goal: at least two).

--fastpath-ratios runs the preset three times, one after the other: with both CPU fast paths (the default),
with RNNBENCH_FASTPATH=modern (the classic cells on nn.*) and with RNNBENCH_FASTPATH=0 (also the modern cells in
their parallel-scan form), and prints each wall time and the ratios (goal: quick >= 1.5x faster with the fast
path than without), and whether the verdicts are the same.
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
GOAL_FASTPATH_SPEEDUP = 1.5
# RNNBENCH_FASTPATH value -> what runs
SWITCHES = {"1": "both CPU fast paths (default)", "modern": "classic cells on nn.* (modern recurrent form on)",
            "0": "no CPU fast path (classic on nn.*, modern cells in their parallel-scan form)"}


def run_preset(preset: str, extra: list[str], fastpath: str | None = None) -> dict:
    """One `python -m flows.compare` process on a fresh output: wall time, the plan line, the cells' verdicts and
    the separating problems."""
    import polars as pl

    from rnnbench.verdicts import separating_problems

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        if fastpath is not None:
            env["RNNBENCH_FASTPATH"] = fastpath
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "flows.compare", "--preset", preset, *extra,
                               "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        plan = next((line for line in proc.stderr.splitlines() if line.startswith("plan:")), "")
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"flows.compare exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                               f"{proc.stderr[-3000:]}")
        summary = pl.read_parquet(out / "summary.parquet")
        cells = (summary.filter(pl.col("chosen")).select("problem", "seq_len", "arch", "verdict_text")
                 .sort("problem", "seq_len", "arch"))
        match = re.search(r"CPU-hours by the cost model: ~([0-9.]+) min", plan)
        return {"wall": wall, "returncode": proc.returncode, "plan": plan, "cells": cells,
                "separated": separating_problems(summary),
                "estimate": float(match.group(1)) * 60 if match else None}


def report_one(preset: str, extra: list[str], result: dict) -> None:
    import polars as pl

    wall = result["wall"]
    print(f"preset {preset} {' '.join(extra)}: exit {result['returncode']}, wall {wall:.0f} s ({wall / 60:.1f} min)")
    print(result["plan"])
    if result["estimate"]:
        ratio = wall / result["estimate"]
        print(f"cost model: {result['estimate']:.0f} s of wall estimated on {os.cpu_count()} cores; measured / "
              f"estimated = {ratio:.2f} (goal 0.70-1.30) {'PASS' if 0.7 <= ratio <= 1.3 else 'FAIL'}")
    with pl.Config(tbl_rows=100, tbl_width_chars=140, fmt_str_lengths=60):
        print(result["cells"])
    separated = result["separated"]
    print(f"separating problems: {', '.join(separated) or 'none'}"
          + (f" (goal: at least 2) {'PASS' if len(separated) >= 2 else 'FAIL'}" if preset == "quick" else ""))
    goal = GOALS.get(preset)
    if goal:
        print(f"end to end {wall:.0f} s (goal <= {goal:.0f} s) {'PASS' if wall <= goal else 'FAIL'}")


def fastpath_ratios(preset: str, extra: list[str]) -> int:
    import polars as pl

    results = {}
    for value, what in SWITCHES.items():
        print(f"RNNBENCH_FASTPATH={value}: {what} ...", flush=True)
        results[value] = run_preset(preset, extra, value)
        print(f"  wall {results[value]['wall']:.0f} s; separating: {', '.join(results[value]['separated']) or 'none'}",
              flush=True)
    print()
    report_one(preset, extra, results["1"])
    on = results["1"]["wall"]
    print(f"\n{'RNNBENCH_FASTPATH':<18} {'wall s':>7} {'/ on':>6}  what")
    for value, what in SWITCHES.items():
        print(f"{value:<18} {results[value]['wall']:7.0f} {results[value]['wall'] / on:6.2f}  {what}")
    speedup = results["0"]["wall"] / on
    print(f"speed-up with the fast paths: {speedup:.2f}x (goal >= {GOAL_FASTPATH_SPEEDUP}) "
          f"{'PASS' if speedup >= GOAL_FASTPATH_SPEEDUP else 'FAIL'}; the classic cells' C++ path alone: "
          f"{results['modern']['wall'] / on:.2f}x")
    same = all(r["cells"].equals(results["1"]["cells"]) for r in results.values())
    print(f"verdicts of every cell identical in the three runs: {same}")
    if not same:  # other kernels round differently, so a seed's run may stop earlier or solve where it did not
        for value in ("modern", "0"):
            diff = (results[value]["cells"].join(results["1"]["cells"], on=["problem", "seq_len", "arch"], suffix="_on")
                    .filter(pl.col("verdict_text") != pl.col("verdict_text_on")))
            for r in diff.iter_rows(named=True):
                print(f"  RNNBENCH_FASTPATH={value}: {r['problem']} T={r['seq_len']} {r['arch']}: "
                      f"{r['verdict_text']} (on: {r['verdict_text_on']})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--fastpath-ratios", action="store_true",
                        help="run the preset with the CPU fast paths on, classic off, and both off")
    parser.add_argument("extra", nargs="*", help="more flags for flows.compare")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.fastpath_ratios:
        return fastpath_ratios(args.preset, args.extra)
    report_one(args.preset, args.extra, run_preset(args.preset, args.extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
