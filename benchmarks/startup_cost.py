"""Where the fixed cost of the small commands goes: their phases, side by side for one or more trees, in one run.

    .venv/bin/python benchmarks/startup_cost.py                     # this tree, once
    .venv/bin/python benchmarks/startup_cost.py --tree before=/tmp/ab/before --tree after=/tmp/ab/after --repeats 3
    .venv/bin/python benchmarks/startup_cost.py --tree ... --tree ... --repeats 4 --smoke-only   # the sweep alone

Each command runs in a fresh process with no PREFECT_API_URL and no RAY_ADDRESS, as a newcomer types it:

  python -c pass                 the interpreter alone
  import flows.validate          what `validate` imports before it does anything (likewise flows.compare)
  validate                       `python -m flows.validate FILE`, one 500-row file (goal <= 3 s)
  datasets                       `python -m flows.datasets`, 3 small files (goal <= 3 s)
  smoke                          `python -m flows.compare --preset smoke` on a fresh --out (goal <= 12 s)

and the smoke sweep is split into phases by the time each of its log lines arrived (launch -> plan printed ->
Ray started -> flow begins -> datasets built -> jobs done -> metrics written -> report written -> flow finished
-> exit of its process; then "output closed": what it started, Ray's agents, gone too), each with the cores its
processes kept busy meanwhile (near 2 on this machine: computing; near 0: waiting), and with the CPU seconds of
each kind of process it started (driver, Prefect API, Ray's own processes, Ray workers) and how busy the rest of
the machine was meanwhile. On a shared machine, compare trees within one run, and CPU seconds rather than wall.

A tree is a directory holding the project's packages (flows, tasks, schemas, rnnbench), e.g. the code before a
change and after it on the same library (what the two trees above were made with:
    git archive HEAD flows tasks schemas rnnbench | tar -x -C /tmp/ab/before
    git archive HEAD schemas rnnbench | tar -x -C /tmp/ab/after && cp -r flows tasks /tmp/ab/after/
): its commands run there, with it first on PYTHONPATH (which Ray's workers inherit). With several
trees every command runs once per tree in turn, the order alternating between repetitions (A B, B A, ...), so a
load that comes and goes on this shared machine hits each tree alike; the table shows medians, and the ratio of
the last tree to the first when there are two or more. Prefect's database lives in a PREFECT_HOME of this run's
own, created before anything is timed (a first start on a new home creates it, ~20 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python benchmarks/startup_cost.py` puts only benchmarks/ on the path

from benchmarks.timing import Timed, run_timed  # noqa: E402

GOALS = {"validate": 3.0, "datasets": 3.0, "smoke": 12.0}
DATASETS_ARGS = ["--problems", "adding", "--seq-lens", "20", "--n-train", "500", "--n-test", "100", "--seed", "0"]
# the smoke sweep's phases: (name, strings its first log line contains), in the order they happen
MILESTONES = [
    ("plan printed", ("plan:",)),
    ("Ray started", ("Started a local Ray instance",)),
    ("flow begins", ("Beginning flow run",)),
    ("datasets built", ("datasets:", "done, in")),
    ("jobs done", ("jobs:", "done,", ", in ")),
    ("metrics written", ("write-metrics", "wrote ")),
    ("report written", ("write-report", "Finished in state")),
    ("flow finished", ("Flow run", "Finished in state")),
]
ROLES = ("driver", "prefect api", "ray system", "ray workers", "other")
CORES = "|cores"  # a row's companion: the cores in use during that phase, shown in the same cell


def environment(tree: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "RAY_ADDRESS")}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")])),
               PREFECT_HOME=str(home), PYTHONUNBUFFERED="1")  # unbuffered: each line's time stamp is true
    return env


def run(cmd: list[str], tree: Path, home: Path, timeout: float = 600) -> Timed:
    timed = run_timed(cmd, environment(tree, home), timeout, cwd=tree)
    if timed.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} in {tree} exited {timed.returncode}:\n{timed.tail()}")
    return timed


def smoke_phases(timed: Timed) -> dict[str, tuple[float, float]]:
    """Each phase, from the previous milestone found in the log (launch first) to this one: its seconds, and the
    cores the command's processes kept busy meanwhile."""
    out, previous = {}, 0.0
    for name, needles in [*MILESTONES, ("exit", None)]:
        at = timed.seconds if needles is None else timed.first(needles)
        if at is not None:
            out[name] = (at - previous, timed.cores_used(previous, at))
            previous = at
    return out


def measure(tree: Path, home: Path, scratch: Path, dataset: Path, small: bool = True) -> dict[str, float]:
    """One repetition of every command in `tree` (only the smoke sweep unless `small`): row label -> seconds
    (or CPU seconds, or cores)."""
    python = sys.executable
    rows = {}
    if small:
        rows["python -c pass"] = run([python, "-c", "pass"], tree, home).seconds
        for module in ("flows.validate", "flows.compare"):
            rows[f"import {module}"] = run([python, "-c", f"import {module}"], tree, home).seconds
        rows["validate"] = run([python, "-m", "flows.validate", str(dataset)], tree, home).seconds
        out = Path(tempfile.mkdtemp(prefix="datasets-", dir=scratch))
        rows["datasets"] = run([python, "-m", "flows.datasets", *DATASETS_ARGS, "--out", str(out)], tree,
                               home).seconds
    out = Path(tempfile.mkdtemp(prefix="smoke-", dir=scratch))
    smoke = run([python, "-m", "flows.compare", "--preset", "smoke", "--out", str(out)], tree, home)
    rows["smoke"] = smoke.seconds
    for name, (seconds, cores) in smoke_phases(smoke).items():
        rows[f"  -> {name}"] = seconds
        rows[f"  -> {name}{CORES}"] = cores
    rows["  output closed"] = smoke.drained  # the last of what it started (Ray's agents) gone too
    cpu = smoke.cpu
    rows["smoke CPU-s, all"] = smoke.own_cpu
    rows.update({f"  {role}": cpu[role][0] for role in ROLES if role in cpu})
    rows["others busy (cores)"] = smoke.others_busy()
    return rows


def make_dataset(scratch: Path) -> Path:
    """The one 500-row file `validate` reads, written by this tree's dataset store."""
    from rnnbench.datasets import DatasetSpec
    from tasks import dataset_store

    return Path(dataset_store.build(DatasetSpec("adding", 50, "train", 0, 500), str(scratch / "data")).path)


def create_database(home: Path) -> None:
    from flows.api_server import LocalApi

    os.environ["PREFECT_HOME"] = str(home)
    api = LocalApi().start()
    try:
        api.wait_ready()
    finally:
        api.stop()


def print_table(results: dict[str, list[dict[str, float]]]) -> None:
    names = list(results)
    labels = list(dict.fromkeys(label for runs in results.values() for run in runs for label in run
                                if not label.endswith(CORES)))
    header = ["", *names] + ([f"{names[-1]}/{names[0]}"] if len(names) > 1 else [])
    table = [header]
    def median(name: str, label: str) -> float | None:
        values = [run[label] for run in results[name] if label in run]
        return statistics.median(values) if values else None

    for label in labels:
        medians = [median(name, label) for name in names]
        cells = [label]
        for name, m in zip(names, medians, strict=True):
            cores = median(name, label + CORES)
            cells.append("-" if m is None else f"{m:.2f}" + ("" if cores is None else f" ({cores:.1f})"))
        if len(names) > 1:
            first, last = medians[0], medians[-1]
            cells.append(f"{last / first:.2f}" if first and last is not None else "-")
        table.append(cells)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/startup_cost.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", metavar="NAME=PATH", help="a tree to measure (repeatable; "
                        "default: this one, as 'this')")
    parser.add_argument("--repeats", type=int, default=1, help="repetitions of every command in every tree")
    parser.add_argument("--smoke-only", action="store_true", help="only the smoke sweep (more repetitions for the "
                        "same time)")
    args = parser.parse_args(argv)
    trees = {}
    for item in args.tree or [f"this={ROOT}"]:
        name, _, path = item.partition("=")
        if not path or not (Path(path) / "flows" / "compare.py").is_file():
            parser.error(f"--tree {item!r}: expected NAME=PATH of a directory holding flows/, tasks/, ...")
        trees[name] = Path(path).resolve()

    scratch = Path(tempfile.mkdtemp(prefix="rnnbench-startup-"))
    try:
        home = scratch / "prefect-home"
        create_database(home)
        dataset = make_dataset(scratch)
        print(f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.2f}; trees: "
              + ", ".join(f"{name}={path}" for name, path in trees.items()), flush=True)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for i in range(args.repeats):
            order = list(trees) if i % 2 == 0 else list(reversed(trees))
            for name in order:
                results[name].append(measure(trees[name], home, scratch, dataset, small=not args.smoke_only))
                run = results[name][-1]
                print(f"  rep {i + 1} {name}: " + ", ".join(f"{label} {run[label]:.2f} s" for label in GOALS
                                                           if label in run), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}\n")
    print(f"seconds, median of {args.repeats}; smoke's phases end at the log line named, (n): cores its processes "
          "kept busy meanwhile; goals: " + ", ".join(f"{name} <= {goal:g} s" for name, goal in GOALS.items()))
    print_table(results)
    final = results[list(trees)[-1]]
    verdicts = {label: statistics.median(run[label] for run in final) <= goal for label, goal in GOALS.items()
                if label in final[0]}
    print(f"\n{list(trees)[-1]}: " + ", ".join(f"{label} {'PASS' if ok else 'FAIL'}" for label, ok in verdicts.items()))
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
