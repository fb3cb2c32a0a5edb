"""Dataset pipeline speed on one core: generate, validate, write and read back the adding problem.

Measures, in one process pinned to one CPU (when the OS allows it), the stages that
`rnnbench.dataset_store.build` and `load` run for 1,000,000 adding sequences at T = 100
(2 input channels: 2e8 input values, 800 MB of float32):

  generate   rnnbench.datasets.generate (seeded numpy generation)
  to_table   rnnbench.datasets.to_table (sha256 content hash + zero-copy Arrow table)
  validate   schemas.dataset.validate_table (in memory: structure, ranges, problem semantics)
  write      rnnbench.datasets.write_table (atomic Parquet write to a temporary directory)
  load       rnnbench.dataset_store.load (read back + full validation, incl. the hash)

and compares generate + to_table + validate + write (everything `build` does) with the 30 s goal.
Values/s counts input values (n x T x 2).

    .venv/bin/python benchmarks/datasets_speed.py [--n 1000000] [--seq-len 100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time


def pin_to_one_core() -> str:
    """Pin before numpy, pyarrow and polars start their thread pools, so that they size them for one core."""
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError) as exc:  # not Linux, or not allowed
        return f"not pinned ({type(exc).__name__}); {os.cpu_count()} CPUs visible"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/datasets_speed.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="number of sequences (default 1,000,000)")
    parser.add_argument("--seq-len", type=int, default=100, help="sequence length T (default 100)")
    parser.add_argument("--goal", type=float, default=30.0, help="seconds allowed for generate+write+validate")
    args = parser.parse_args(argv)

    pinning = pin_to_one_core()

    from rnnbench import dataset_store, datasets
    from rnnbench.datasets import DatasetSpec
    from schemas.dataset import validate_table

    spec = DatasetSpec("adding", args.seq_len, "train", 0, args.n)
    spec.check()
    values = args.n * args.seq_len * 2
    print(f"adding: n={args.n:,} T={args.seq_len} -> {values:.3g} input values; {pinning}")

    times: dict[str, float] = {}

    def stage(name: str, fn, *fn_args, **fn_kwargs):
        start = time.perf_counter()
        result = fn(*fn_args, **fn_kwargs)
        times[name] = time.perf_counter() - start
        print(f"  {name:<9} {times[name]:7.2f} s  {values / times[name] / 1e6:8.1f} M values/s", flush=True)
        return result

    tmp = tempfile.mkdtemp(prefix="rnnbench-speed-")
    try:
        x, y = stage("generate", datasets.generate, spec)
        table = stage("to_table", datasets.to_table, spec, x, y)
        stage("validate", validate_table, table, source="benchmark (in memory)", expected=spec)
        path = stage("write", datasets.write_table, table, spec.path(tmp))
        size = os.path.getsize(path)
        del table, x, y  # free 1.6 GB before reading the file back
        loaded = stage("load", dataset_store.load, path, expected=spec)
        assert loaded.x.shape == (args.n, args.seq_len, 2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    build = sum(times[k] for k in ("generate", "to_table", "validate", "write"))
    verdict = "PASS" if build <= args.goal else "FAIL"
    print(f"  file size {size / 1e6:.0f} MB")
    print(f"generate+write+validate: {build:.2f} s ({values / build / 1e6:.1f} M values/s) "
          f"vs goal {args.goal:g} s: {verdict}")
    print(f"read back + validate: {times['load']:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
