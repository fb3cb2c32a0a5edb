"""Generating and validating every dataset file: `python -m flows.datasets --help`.

With a Prefect API configured (PREFECT_API_URL), the build is a flow run recorded there (flows/dataset_flows.py);
without one, it runs here in this process, with the same generation, validation and atomic writes
(tasks.dataset_store.build), and nothing is started: Prefect's own fallback for a missing URL, its ephemeral mode,
starts a server subprocess (seconds) for a record nobody would read.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from flows import cli, prefect_api
from rnnbench import storage
from rnnbench.datasets import SPLITS, DatasetSpec
from rnnbench.problems import get_problem
from rnnbench.problems.options import check_problem_options, given_for, parse_assignments
from tasks import dataset_store


def plan(problems: list[str], seq_lens: list[int], n_train: int, n_test: int, seed: int,
         n_val: int | None = None, problem_options: dict | None = None) -> list[DatasetSpec]:
    """Every (problem, seq_len, split) file for one data seed, each problem at its settings (`problem_options`,
    PROBLEM.KEY -> value; the rest at their defaults); raises ValueError before any work."""
    for name in problems:
        get_problem(name)
    options = check_problem_options(problem_options)
    unused = sorted({key.split(".")[0] for key in options} - set(problems))
    if unused:
        raise ValueError(f"--problem-option for {', '.join(unused)}, which --problems does not name "
                         f"({', '.join(problems)})")
    cli.positive_int(n_train, "--n-train")
    cli.positive_int(n_test, "--n-test")
    n_val = n_test if n_val is None else n_val
    cli.positive_int(n_val, "--n-val")
    rows = {"train": n_train, "val": n_val, "test": n_test}
    # dict.fromkeys: a name or length given twice must not build the same file twice at once
    specs = [
        DatasetSpec(p, t, split, seed, rows[split], options=given_for(p, options))
        for p in dict.fromkeys(problems) for t in dict.fromkeys(seq_lens) for split in SPLITS
    ]
    for spec in specs:
        spec.check()
    return specs


def build_all(specs: list[DatasetSpec], out: str, regenerate: bool = False) -> list[dict]:
    """Make sure a valid file exists for each spec (tasks.dataset_store.build): {path, reused, seconds} each."""
    if prefect_api.configured():
        from flows.dataset_flows import datasets_flow

        with prefect_api.prefect_api():
            return datasets_flow(specs, out, regenerate)
    with ThreadPoolExecutor(max_workers=dataset_store.BUILD_THREADS) as pool:
        return list(pool.map(lambda spec: asdict(dataset_store.build(spec, out, regenerate=regenerate)), specs))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flows.datasets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=cli.names, default=["copy_memory", "sequential_xor", "adding"],
                        help="comma-separated problem names (default: all three)")
    parser.add_argument("--seq-lens", type=cli.ints, default=[20, 50], help="comma-separated sequence lengths")
    parser.add_argument("--n-train", type=int, default=10_000, help="rows in each train file")
    parser.add_argument("--n-test", type=int, default=1_000, help="rows in each test file")
    parser.add_argument("--n-val", type=int, help="rows in each validation file (default: as --n-test)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (train and test streams are disjoint)")
    parser.add_argument("--out", default="data", help="dataset root: a directory or a pyarrow filesystem URI")
    parser.add_argument("--regenerate", action="store_true", help="rebuild files even if a valid one exists")
    parser.add_argument("--problem-option", action="append", metavar="PROBLEM.KEY=VALUE",
                        help="a problem's own setting, as for flows.compare, e.g. group_word.group=a5 or "
                        "mqar.pairs=16; repeatable or comma-separated; the files go under PROBLEM/KEY=VALUE/")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        options = parse_assignments(args.problem_option) if args.problem_option else None
        specs = plan(args.problems, args.seq_lens, args.n_train, args.n_test, args.seed, args.n_val, options)
        storage.check_writable(args.out)
    except ValueError as exc:
        cli.fail(str(exc))
    results = build_all(specs, args.out, args.regenerate)
    for result in results:
        print(f"{'reused' if result['reused'] else 'wrote '} {result['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
