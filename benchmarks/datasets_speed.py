"""Dataset pipeline speed on one core: generate, validate, write and read back every problem's files.

Measures, in one process pinned to one CPU (when the OS allows it), the stages that
`tasks.dataset_store.build` and `load` run, for each problem in turn, on a file of about `--values`
input values (default 2e8: 800 MB of float32; rows = values / (input steps x input width), so one-hot
problems get fewer, wider rows):

  generate   rnnbench.datasets.generate (seeded numpy generation)
  to_table   rnnbench.datasets.to_table (sha256 content hash + zero-copy Arrow table)
  validate   schemas.dataset.validate_table (in memory: structure, ranges, problem semantics)
  write      rnnbench.datasets.write_table (atomic Parquet write to a temporary directory)
  load       tasks.dataset_store.load (read back + full validation, incl. the hash; the arrays as stored)
  expand     Dataset.x and .y: the whole split as float32 (evaluation does this; training expands one batch)

and compares generate + to_table + validate + write (everything `build` does) with the goal of 30 s per
2e8 values; a run on fewer values is judged on its time scaled linearly to 2e8 (the stages are linear in
the data). Values/s counts input values. sequential_digits files are train splits (the held-out splits
hold at most 360 images); every problem is timed at its default T below.

    .venv/bin/python benchmarks/datasets_speed.py [--values 2e8] [--problems adding,parity] [--seq-len 100]
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import shutil
import tempfile
import time

GOAL_VALUES = 2e8  # the goal's size: 30 s for 2e8 values
# T per problem: 100 as in the adding benchmark before it; the digits are always read in 64 steps
DEFAULT_SEQ_LEN = {"sequential_digits": 64, "sequential_digits_permuted": 64}


def pin_to_one_core() -> str:
    """Pin before numpy, pyarrow and polars start their thread pools, so that they size them for one core."""
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError) as exc:  # not Linux, or not allowed
        return f"not pinned ({type(exc).__name__}); {os.cpu_count()} CPUs visible"


def bench_problem(name: str, seq_len: int, values: float, tmp: str) -> dict:
    """Time every stage for one problem's file; returns the row of the summary table."""
    from rnnbench import datasets
    from rnnbench.datasets import DatasetSpec
    from rnnbench.problems import get_problem
    from schemas.dataset import validate_table
    from tasks import dataset_store

    problem = get_problem(name)
    per_row = problem.input_steps(seq_len) * problem.input_size
    n = max(1, math.ceil(values / per_row))
    spec = DatasetSpec(name, seq_len, "train", 0, n)
    spec.check()
    actual = n * per_row
    print(f"{name}: n={n:,} T={seq_len} x ({problem.input_steps(seq_len)}, {problem.input_size}) "
          f"-> {actual:.3g} input values", flush=True)

    # warm-up on one row: first-use costs (scikit-learn's import and the digits file, ~1 s) are paid once per
    # process, not per file, so they stay out of the per-value timing
    datasets.generate(DatasetSpec(name, seq_len, "train", 0, 1))
    times: dict[str, float] = {}

    def stage(label: str, fn, *fn_args, **fn_kwargs):
        start = time.perf_counter()
        result = fn(*fn_args, **fn_kwargs)
        times[label] = time.perf_counter() - start
        print(f"  {label:<9} {times[label]:7.2f} s  {actual / times[label] / 1e6:8.1f} M values/s", flush=True)
        return result

    x, y = stage("generate", datasets.generate, spec)
    table = stage("to_table", datasets.to_table, spec, x, y)
    stage("validate", validate_table, table, source="benchmark (in memory)", expected=spec)
    path = stage("write", datasets.write_table, table, spec.path(tmp))
    size = os.path.getsize(path)
    del table, x, y  # free the arrays before reading the file back
    gc.collect()
    loaded = stage("load", dataset_store.load, path, expected=spec)
    expanded = stage("expand", lambda data: (data.x, data.y), loaded)
    assert expanded[0].shape == (n, problem.input_steps(seq_len), problem.input_size)
    del loaded, expanded
    os.remove(path)
    gc.collect()

    build = sum(times[k] for k in ("generate", "to_table", "validate", "write"))
    return {"problem": name, "T": seq_len, "rows": n, "values": actual, "build": build, "load": times["load"],
            "expand": times["expand"],
            "size": size, "projected": build * GOAL_VALUES / actual}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/datasets_speed.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--values", type=float, default=GOAL_VALUES,
                        help="input values per problem's file (default 2e8)")
    parser.add_argument("--problems", default="", help="comma-separated problem names (default: all registered)")
    parser.add_argument("--seq-len", type=int, default=100,
                        help="T for every problem that allows it (default 100; the digits always use 64)")
    parser.add_argument("--goal", type=float, default=30.0, help="seconds allowed for generate+write+validate "
                        "of 2e8 values")
    args = parser.parse_args(argv)

    pinning = pin_to_one_core()

    from rnnbench.problems import PROBLEMS

    names = [p.strip() for p in args.problems.split(",") if p.strip()] or list(PROBLEMS)
    unknown = [p for p in names if p not in PROBLEMS]
    if unknown:
        parser.error(f"unknown problems {', '.join(unknown)}; valid: {', '.join(PROBLEMS)}")
    print(f"{len(names)} problems, ~{args.values:.3g} input values each; {pinning}")

    rows = []
    tmp = tempfile.mkdtemp(prefix="rnnbench-speed-")
    try:
        for name in names:
            rows.append(bench_problem(name, DEFAULT_SEQ_LEN.get(name, args.seq_len), args.values, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{'problem':<27} {'T':>4} {'rows':>10} {'values':>8} {'build s':>8} {'M val/s':>8} "
          f"{'s per 2e8':>9} {'load s':>7} {'expand':>7} {'MB':>6}  verdict (goal {args.goal:g} s per 2e8)")
    failed = 0
    for r in rows:
        verdict = "PASS" if r["projected"] <= args.goal else "FAIL"
        failed += verdict == "FAIL"
        print(f"{r['problem']:<27} {r['T']:>4} {r['rows']:>10,} {r['values']:>8.3g} {r['build']:>8.2f} "
              f"{r['values'] / r['build'] / 1e6:>8.1f} {r['projected']:>9.2f} {r['load']:>7.2f} {r['expand']:>7.2f} "
              f"{r['size'] / 1e6:>6.0f}  {verdict}")
    print(f"generate+write+validate: {len(rows) - failed} of {len(rows)} problems within {args.goal:g} s per 2e8 "
          "values on one core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
