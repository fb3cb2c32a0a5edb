"""Flow and CLI that generate and validate every dataset file: `python -m flows.datasets --help`."""

from __future__ import annotations

import argparse
import sys

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows import cli, runtime
from rnnbench import storage
from rnnbench.datasets import SPLITS, DatasetSpec
from rnnbench.problems import get_problem
from tasks.datasets import build_dataset


def plan(problems: list[str], seq_lens: list[int], n_train: int, n_test: int, seed: int,
         n_val: int | None = None) -> list[DatasetSpec]:
    """Every (problem, seq_len, split) file for one data seed; raises ValueError before any work."""
    for name in problems:
        get_problem(name)
    cli.positive_int(n_train, "--n-train")
    cli.positive_int(n_test, "--n-test")
    n_val = n_test if n_val is None else n_val
    cli.positive_int(n_val, "--n-val")
    rows = {"train": n_train, "val": n_val, "test": n_test}
    # dict.fromkeys: a name or length given twice must not build the same file twice at once
    specs = [
        DatasetSpec(p, t, split, seed, rows[split])
        for p in dict.fromkeys(problems) for t in dict.fromkeys(seq_lens) for split in SPLITS
    ]
    for spec in specs:
        spec.check()
    return specs


# two threads: generation and Parquet encoding release the GIL, and this machine has two cores
@flow(name="datasets", task_runner=ThreadPoolTaskRunner(max_workers=2))
def datasets_flow(specs: list[DatasetSpec], out: str, regenerate: bool = False) -> list[dict]:
    futures = [build_dataset.submit(spec, out, regenerate) for spec in specs]
    return [f.result() for f in futures]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flows.datasets", description=__doc__)
    parser.add_argument("--problems", type=cli.names, default=["copy_memory", "sequential_xor", "adding"],
                        help="comma-separated problem names (default: all three)")
    parser.add_argument("--seq-lens", type=cli.ints, default=[20, 50], help="comma-separated sequence lengths")
    parser.add_argument("--n-train", type=int, default=10_000, help="rows in each train file")
    parser.add_argument("--n-test", type=int, default=1_000, help="rows in each test file")
    parser.add_argument("--n-val", type=int, help="rows in each validation file (default: as --n-test)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (train and test streams are disjoint)")
    parser.add_argument("--out", default="data", help="dataset root: a directory or a pyarrow/fsspec URI")
    parser.add_argument("--regenerate", action="store_true", help="rebuild files even if a valid one exists")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        specs = plan(args.problems, args.seq_lens, args.n_train, args.n_test, args.seed, args.n_val)
        storage.check_writable(args.out)
    except ValueError as exc:
        runtime.fail(str(exc))
    with runtime.prefect_api():
        results = datasets_flow(specs, args.out, args.regenerate)
    for result in results:
        print(f"{'reused' if result['reused'] else 'wrote '} {result['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
