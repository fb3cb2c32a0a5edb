"""Training data that scales: disk per (problem, seq_len, seed) and one job's peak memory at the published regime.

    python benchmarks/data_scale.py                 # adding, T=1000, 20,000 updates x B=64, H=64 (LSTM)
    python benchmarks/data_scale.py --train-steps 200

The config is the one issue 11 names (adding at T=1000 with 20,000 updates of 64 sequences: 1.28 M sequences,
~10 GB had every update read fresh ones). Its datasets are built exactly as a sweep builds them, their bytes
on disk are summed, and one job of that config trains in a fresh process whose peak resident memory
(ru_maxrss) is read when it ends. Memory does not grow with updates after the first evaluation (the data is
read once, batches are gathered per update), so the job trains `--train-steps` updates of the 20,000-update
spec's data: a full 20,000 would take hours on a 2-core CPU and measure the same peak. Prints PASS/FAIL
against the goals: <= 1 GiB of disk per (problem, seq_len, seed), <= 2 GiB peak memory per job.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISK_GOAL, MEMORY_GOAL = 2**30, 2 * 2**30


def job(root: str, steps: int, train_steps: int) -> None:
    """In a fresh process: train one LSTM job of the big config for `train_steps` updates; print its row."""
    sys.path.insert(0, str(ROOT))
    from rnnbench.config import ProblemGrid, from_preset
    from rnnbench.train import train_and_evaluate
    from tasks import dataset_store

    grid = ProblemGrid(problem="adding", seq_lens=[1000], hidden_size=64, steps=steps)
    config = from_preset("seed", grids=[grid], archs=["lstm"], seeds=1, data_root=root, n_test=1000)
    (spec,) = config.runs()
    short = spec.model_copy(update={"steps": train_steps, "eval_every": max(1, train_steps // 2)})
    start = time.perf_counter()
    row = train_and_evaluate(short, dataset_store.loader(root), device="cpu", threads=1).row
    print(json.dumps({"n_train": row["n_train"], "steps_done": row["steps_done"], "status": row["status"],
                      "seconds": time.perf_counter() - start,
                      "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000, help="the config's updates (sizes its data)")
    parser.add_argument("--train-steps", type=int, default=100, help="updates the measured job trains")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        job(args.job, args.steps, args.train_steps)
        return 0
    sys.path.insert(0, str(ROOT))
    from rnnbench.config import ProblemGrid, from_preset
    from tasks import dataset_store

    grid = ProblemGrid(problem="adding", seq_lens=[1000], hidden_size=64, steps=args.steps)
    with tempfile.TemporaryDirectory() as root:
        config = from_preset("seed", grids=[grid], archs=["lstm"], seeds=1, data_root=root, n_test=1000)
        start = time.perf_counter()
        for dataset in config.datasets():
            dataset_store.build(dataset, root)
        build_seconds = time.perf_counter() - start
        files = {p.name: p.stat().st_size for p in Path(root).rglob("*.parquet")}
        disk = sum(files.values())
        out = subprocess.run([sys.executable, __file__, "--job", root, "--steps", str(args.steps),
                              "--train-steps", str(args.train_steps)], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        result = json.loads(out.stdout.strip().splitlines()[-1])
    rows_fresh = args.steps * 64
    print(f"config: adding T=1000, {args.steps:,} updates x B=64, H=64, lstm; fresh sequences would be "
          f"{rows_fresh:,} ({rows_fresh * 8012 / 2**30:.1f} GiB)")
    print(f"stored: n_train={result['n_train']:,} distinct sequences, "
          + ", ".join(f"{name} {size / 2**20:.1f} MiB" for name, size in sorted(files.items()))
          + f"; built and validated in {build_seconds:.1f} s")
    print(f"disk per (problem, seq_len, seed): {disk / 2**20:.1f} MiB (goal <= 1024 MiB) "
          f"{'PASS' if disk <= DISK_GOAL else 'FAIL'}")
    print(f"one job: {result['steps_done']} updates ({result['status']}) in {result['seconds']:.1f} s, "
          f"epochs over the whole run {args.steps * 64 / result['n_train']:.1f}; peak memory "
          f"{result['peak_rss'] / 2**20:.0f} MiB (goal <= 2048 MiB) "
          f"{'PASS' if result['peak_rss'] <= MEMORY_GOAL else 'FAIL'}")
    return 0 if disk <= DISK_GOAL and result["peak_rss"] <= MEMORY_GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
