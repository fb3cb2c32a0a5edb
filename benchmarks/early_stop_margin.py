"""Early stopping with and without its margin, over real small runs: how often a run stopped as solved on
validation is not solved on test.

    python benchmarks/early_stop_margin.py                      # adding T=10, 20; gru, lstm, mingru; 6 seeds
    python benchmarks/early_stop_margin.py --seeds 3 --archs gru

Each run trains twice on the same data and seed: once with the old rule (stop when validation meets the solved
rule itself at two evaluations in a row: EARLY_STOP_Z = 0) and once with the margin (rnnbench.train.stop_margin).
A small validation split (128 sequences) makes validation noise matter, as at long T where a run's validation
metric wanders near the threshold. Prints, per rule, the runs that stopped early and how many of them failed the
rule on test, and PASS when the margin leaves at most 5% of its early stops unsolved on test.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import rnnbench.train as train
from rnnbench.config import ProblemGrid, from_preset
from tasks import dataset_store


def sweep(z: float, specs, root: str) -> list[dict]:
    train.EARLY_STOP_Z = z
    return [train.train_and_evaluate(spec, lambda d: dataset_store.load(d.path(root), expected=d)).row
            for spec in specs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--archs", default="gru,lstm,mingru")
    parser.add_argument("--seq-lens", default="10,20")
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="early_stop_margin_")
    grid = ProblemGrid(problem="adding", seq_lens=[int(t) for t in args.seq_lens.split(",")], hidden_size=16,
                       steps=args.steps, n_val=128, n_test=512)
    config = from_preset("smoke", archs=args.archs.split(","), grids=[grid], seeds=args.seeds, data_root=root,
                         eval_points=30)
    for dataset in config.datasets():
        dataset_store.build(dataset, root)
    specs = config.runs()
    default_z = train.EARLY_STOP_Z
    print(f"{len(specs)} runs per rule (adding, T={args.seq_lens}, {args.archs}, {args.seeds} seeds)")
    failures = {}
    for name, z in (("no margin (old)", 0.0), (f"margin z={default_z}", default_z)):
        start = time.perf_counter()
        rows = sweep(z, specs, root)
        stopped = [r for r in rows if r["stopped_early"]]
        missed = [r for r in stopped if not r["solved"]]
        failures[name] = (len(missed), len(stopped))
        named = ", ".join(f"{r['run_id']} test {r['test_metric']:.5f}" for r in missed) or "none"
        print(f"{name}: {len(stopped)} stopped early, {len(missed)} of them not solved on test ({named}); "
              f"{sum(r['solved'] for r in rows)} of {len(rows)} solved on test, {time.perf_counter() - start:.0f} s")
    missed, stopped = failures[f"margin z={default_z}"]
    ok = missed <= 0.05 * max(stopped, 1)
    print("PASS" if ok else "FAIL", f"with the margin {missed} of {stopped} early stops missed the rule on test")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
