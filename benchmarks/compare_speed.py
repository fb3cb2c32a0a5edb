"""Pipeline speed, side by side in one run: against the notebook, against a bare PyTorch loop, and its own overhead.

The machine is small and shared, so every comparison is measured in the same run, one after the other
(never concurrently), and each subprocess's own CPU seconds and the other load meanwhile are printed too.

  (a) end to end   `python -m flows.compare --preset seed --seeds N --out TMP` (a subprocess with no
                   PREFECT_API_URL, so starting the embedded Prefect API and Ray is included) versus the
                   notebook's own code (benchmarks/notebook_baseline.py) for the same grid and the same N seeds
                   (`--seeds`, default 1: the notebook's code runs once per seed, 42 + seed), run sequentially in
                   one process (`--notebook-only`, also a subprocess): its model classes, per-batch generators,
                   training loops, prints and test evaluations, with torch's default threads. Goal: pipeline /
                   notebook wall time <= 0.5.
  (b) throughput   rnnbench.train.train_and_evaluate (its steps_per_second, which excludes evaluation) versus
                   a bare loop over the same model (build_model), data, Adam and clip_grad_norm_ (the pipeline
                   steps with rnnbench.optim.Adam, the bare loop with torch.optim.Adam: the same update, bit for
                   bit, tests/test_optim.py): LSTM H=64, adding T=100, batch 64, 1 thread, flushed denormals;
                   after an untimed warm-up of both (so neither pays a first-use import in the timing),
                   3 repetitions each, interleaved A B, B A, A B. Goal: median pipeline / median bare >= 0.95.
  (c) overhead     the compare flow on a grid of 50 tiny jobs (subprocess, no PREFECT_API_URL, fresh --out):
                   overhead = wall - sum(train_seconds) / CPUs. Goals: <= 20 s in all (start-up included) and
                   <= 0.2 s per job in the job phase (between the flow's "N jobs" and "wrote metrics" log lines).
                   Run 3 times, each from nothing (a new API, Ray and --out); the verdict is on the medians.

    .venv/bin/python benchmarks/compare_speed.py [--skip-a] [--skip-b] [--skip-c] [--steps 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
sys.path.insert(0, str(ROOT))  # `python benchmarks/compare_speed.py` puts only benchmarks/ on the path

from benchmarks.notebook_baseline import run_notebook  # noqa: E402
from benchmarks.timing import Timed, run_timed  # noqa: E402

GOAL_E2E_RATIO = 0.5
GOAL_THROUGHPUT_RATIO = 0.95
GOAL_OVERHEAD_S = 25.0
GOAL_OVERHEAD_PER_JOB_S = 0.2

# 5 archs x 10 seeds = 50 jobs of 20 updates each on XOR T=10 (the smoke preset's batch 32 and 5 eval points)
TINY_GRID_ARGS = ["--preset", "smoke", "--problems", "sequential_xor", "--seq-lens", "10",
                  "--archs", "rnn_tanh,gru,lstm,mingru,minlstm", "--seeds", "10", "--steps", "20",
                  "--hidden-size", "8"]
TINY_GRID_JOBS = 50

# log lines of the flow subprocess that mark its phases (Prefect's console handler prints the driver's logs);
# a line marks a phase when it contains every one of the strings
MILESTONES = {
    "api_starting": ("local Prefect API starting",),
    "ray_started": ("Started a local Ray instance",),
    "flow_begins": ("Beginning flow run",),
    "datasets_built": ("Flow run", " jobs: "),
    "metrics_written": ("write-metrics", "wrote "),
    "flow_finished": ("Flow run", "Finished in state"),
}


def flow_env() -> dict[str, str]:
    """The caller's environment without an API or cluster to join, so the flow starts its own (start-up counted)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # line-by-line output, so the time stamps are true
    for key in ("PREFECT_API_URL", "RAY_ADDRESS"):
        env.pop(key, None)
    return env


def run_flow(args: list[str], out: str, timeout: float) -> Timed:
    timed = run_timed([sys.executable, "-m", "flows.compare", *args, "--out", out], flow_env(), timeout)
    if timed.returncode != 0:
        raise RuntimeError(f"flows.compare {' '.join(args)} exited {timed.returncode}:\n{timed.tail()}")
    return timed


def train_seconds(out: str) -> list[float]:
    import pyarrow.parquet as pq

    table = pq.read_table(os.path.join(out, "metrics.parquet"), columns=["train_seconds"])
    return [s for s in table.column("train_seconds").to_pylist() if s is not None]


def phases(timed: Timed) -> dict[str, float]:
    """Seconds from launch to each milestone that appeared in the flow's log, then to process exit."""
    found = {name: timed.first(needles) for name, needles in MILESTONES.items()}
    marks = {name: t for name, t in found.items() if t is not None}
    marks["exit"] = timed.seconds
    return dict(sorted(marks.items(), key=lambda item: item[1]))


def print_phases(timed: Timed) -> dict[str, float]:
    marks = phases(timed)
    print("  phases (from the time each log line arrived):")
    previous, label = 0.0, "launch"
    for name, t in marks.items():
        print(f"    {label:>15} -> {name:<15} {t - previous:7.1f} s")
        previous, label = t, name
    roles = sorted(timed.cpu.items(), key=lambda kv: -kv[1][0])
    print("  CPU seconds by process role (sampled from /proc every 0.5 s): "
          + ", ".join(f"{role} {sec:.1f} ({n} proc)" for role, (sec, n) in roles))
    return marks


# ---------------------------------------------------------------------------------------------------------------
# (a) End to end: the seed grid through the pipeline versus the notebook's own code
# ---------------------------------------------------------------------------------------------------------------

def measure_end_to_end(workers: int, seeds: int) -> dict:
    print(f"\n(a) end to end: notebook's code (one process, {seeds} seed(s)) vs python -m flows.compare --preset "
          f"seed --seeds {seeds}", flush=True)
    notebook = run_timed([sys.executable, str(SCRIPT), "--notebook-only", "--seeds", str(seeds)],
                         dict(os.environ, PYTHONUNBUFFERED="1"), timeout=3600)
    if notebook.returncode != 0:
        raise RuntimeError(f"notebook baseline exited {notebook.returncode}:\n{notebook.tail()}")
    print(f"  notebook: {notebook.seconds:7.1f} s wall; {notebook.contention()}", flush=True)
    out = tempfile.mkdtemp(prefix="rnnbench-e2e-")
    try:
        pipeline = run_flow(["--preset", "seed", "--seeds", str(seeds)], out, timeout=3600)
        trained = train_seconds(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"  pipeline: {pipeline.seconds:7.1f} s wall; {pipeline.contention()}")
    print(f"  pipeline jobs: {len(trained)}, training {sum(trained):.1f} s in all (/{workers} CPUs = "
          f"{sum(trained) / workers:.1f} s, longest job {max(trained):.1f} s)")
    print_phases(pipeline)
    # CPU time is less sensitive than wall time to what else runs on the machine
    print(f"  for reference, CPU seconds pipeline / notebook = {pipeline.own_cpu / notebook.own_cpu:.3f}")
    ratio = pipeline.seconds / notebook.seconds
    return {"measured": ratio, "detail": f"{pipeline.seconds:.0f} s / {notebook.seconds:.0f} s"}


# ---------------------------------------------------------------------------------------------------------------
# (b) Training throughput: train_and_evaluate versus a bare loop, interleaved
# ---------------------------------------------------------------------------------------------------------------

def throughput_spec(steps: int):
    from rnnbench.config import RunSpec

    # one evaluation, at the end: train_and_evaluate's steps_per_second excludes it anyway
    return RunSpec(problem="adding", arch="lstm", seq_len=100, seed=0, hidden_size=64, steps=steps, lr=1e-3,
                   batch_size=64, eval_every=steps, n_train=steps * 64, n_val=256, n_test=256)


def single_thread_flushed() -> None:
    import torch

    from rnnbench.memory import keep_freed_memory

    # what train_and_evaluate's configure_cpu does, so both sides run the same arithmetic on the same allocator
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    keep_freed_memory()


def pipeline_steps_per_second(spec, root: str) -> float:
    from rnnbench.train import train_and_evaluate
    from tasks import dataset_store

    row = train_and_evaluate(spec, dataset_store.loader(root), device="cpu", threads=1).row
    assert row["status"] == "ok", row
    return row["steps_per_second"]


def bare_steps_per_second(spec, root: str) -> float:
    """The minimal loop: same model, same batches in the same order, Adam, clipping, nothing else."""
    import torch
    import torch.nn.functional as F

    from rnnbench.model import build_model
    from rnnbench.problems import get_problem
    from rnnbench.train import Batches
    from tasks import dataset_store

    single_thread_flushed()
    problem = get_problem(spec.problem)
    train_spec = spec.datasets()[0]
    batches = Batches(dataset_store.load(train_spec.path(root), expected=train_spec), spec.batch_size, spec.seed)
    torch.manual_seed(spec.seed)
    model = build_model(spec.arch, problem.input_size, problem.output_size, problem.target_kind, spec.hidden_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr)
    start = time.perf_counter()
    for step in range(1, spec.steps + 1):
        x, y, _, _ = batches.get(step, "cpu")
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.clip_norm)
        optimizer.step()
    return spec.steps / (time.perf_counter() - start)


def measure_throughput(steps: int, repeats: int) -> dict:
    from tasks import dataset_store

    spec, warm_up = throughput_spec(steps), throughput_spec(10)
    print(f"\n(b) training throughput: LSTM H=64, adding T=100, batch 64, {steps} steps, 1 thread, "
          f"{repeats} x (pipeline, bare) interleaved", flush=True)
    sides = {"pipeline": pipeline_steps_per_second, "bare": bare_steps_per_second}
    root = tempfile.mkdtemp(prefix="rnnbench-throughput-")
    try:
        for dataset in (*spec.datasets(), *warm_up.datasets()):
            dataset_store.build(dataset, root)
        for fn in sides.values():  # untimed: first-call imports and allocator warm-up would land on one side
            fn(warm_up, root)
        runs = {"pipeline": [], "bare": []}
        for i in range(repeats):
            # A B, B A, A B, ...: a load that rises or falls during the run then hits both sides alike
            for name in (sides if i % 2 == 0 else reversed(sides)):
                runs[name].append(sides[name](spec, root))
                print(f"  rep {i + 1} {name:<8} {runs[name][-1]:6.2f} steps/s", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    pipeline, bare = statistics.median(runs["pipeline"]), statistics.median(runs["bare"])
    print(f"  medians: pipeline {pipeline:.2f} steps/s ({1000 / pipeline:.1f} ms/step), "
          f"bare {bare:.2f} steps/s ({1000 / bare:.1f} ms/step)")
    return {"measured": pipeline / bare, "detail": f"{pipeline:.1f} / {bare:.1f} steps/s"}


# ---------------------------------------------------------------------------------------------------------------
# (c) Orchestration overhead on 50 tiny jobs
# ---------------------------------------------------------------------------------------------------------------

def measure_overhead(workers: int, repeats: int) -> tuple[dict, dict]:
    """The tiny grid `repeats` times, each from nothing (fresh --out, a new API and Ray); the medians are the
    verdict, since one run on this shared 2-core machine varies by several seconds."""
    print(f"\n(c) orchestration overhead: python -m flows.compare {' '.join(TINY_GRID_ARGS)}", flush=True)
    runs = []
    for i in range(repeats):
        print(f"  run {i + 1} of {repeats}", flush=True)
        runs.append(_overhead_once(workers))
    overhead = statistics.median(r["overhead"] for r in runs)
    per_job = statistics.median(r["per_job"] for r in runs)
    each = ", ".join(f"{r['overhead']:.1f}" for r in runs)
    print(f"  median overhead {overhead:.1f} s (runs: {each}); median per job {per_job:.3f} s")
    middle = min(runs, key=lambda r: abs(r["overhead"] - overhead))
    return ({"measured": overhead, "detail": f"median of {each}; e.g. {middle['detail']}"},
            {"measured": per_job, "detail": f"median of {repeats}; e.g. {middle['how']}"})


def _overhead_once(workers: int) -> dict:
    out = tempfile.mkdtemp(prefix="rnnbench-overhead-")
    try:
        timed = run_flow(TINY_GRID_ARGS, out, timeout=1800)
        trained = train_seconds(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if len(trained) != TINY_GRID_JOBS:
        raise RuntimeError(f"expected {TINY_GRID_JOBS} finished jobs, metrics.parquet has {len(trained)}")
    ideal = sum(trained) / workers
    overhead = timed.seconds - ideal
    print(f"  wall {timed.seconds:.1f} s; {timed.contention()}")
    print(f"  {len(trained)} jobs, training {sum(trained):.2f} s in all (/{workers} CPUs = {ideal:.2f} s) "
          f"-> overhead {overhead:.1f} s")
    marks = print_phases(timed)
    if "datasets_built" in marks and "metrics_written" in marks:
        # the job phase: submission, Ray scheduling, Prefect task runs, loading data, evaluation, collection
        job_phase = marks["metrics_written"] - marks["datasets_built"]
        per_job = (job_phase - ideal) / len(trained)
        how = f"job phase {job_phase:.1f} s - {ideal:.1f} s training, / {len(trained)}"
    else:
        per_job = overhead / len(trained)
        how = f"{overhead:.1f} s / {len(trained)} (no phase marks in the log)"
    print(f"  per job: {per_job:.3f} s ({how})")
    return {"overhead": overhead, "per_job": per_job, "detail": f"{timed.seconds:.1f} s wall - {ideal:.1f} s",
            "how": how}


# ---------------------------------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------------------------------

def verdict_rows(results: dict[str, dict]) -> list[tuple[str, str, str, str, str]]:
    goals = {  # name -> (goal, higher is better, unit format)
        "a end-to-end time pipeline/notebook": (GOAL_E2E_RATIO, False, "{:.3f}"),
        "b steps/s pipeline/bare": (GOAL_THROUGHPUT_RATIO, True, "{:.3f}"),
        "c overhead, 50 jobs (s)": (GOAL_OVERHEAD_S, False, "{:.1f}"),
        "c overhead per job (s)": (GOAL_OVERHEAD_PER_JOB_S, False, "{:.3f}"),
    }
    rows = []
    for name, result in results.items():
        goal, higher, fmt = goals[name]
        value = result["measured"]
        ok = value >= goal if higher else value <= goal
        measured = f"{fmt.format(value)} ({result['detail']})"
        rows.append((name, measured, f"{'>=' if higher else '<='} {goal:g}", f"{value / goal:.2f}",
                     "PASS" if ok else "FAIL"))
    return rows


def print_table(rows: list[tuple[str, ...]]) -> None:
    header = ("name", "measured", "goal", "ratio", "verdict")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print("(ratio = measured / goal)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/compare_speed.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-a", action="store_true", help="skip the end-to-end comparison with the notebook")
    parser.add_argument("--skip-b", action="store_true", help="skip the training-throughput comparison")
    parser.add_argument("--skip-c", action="store_true", help="skip the orchestration-overhead measurement")
    parser.add_argument("--steps", type=int, default=200, help="training steps per throughput repetition")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of (b)'s each side and of (c)")
    parser.add_argument("--seeds", type=int, default=1, help="(a): seeds on each side (the seed preset has 3)")
    parser.add_argument("--notebook-only", action="store_true", help=argparse.SUPPRESS)  # (a)'s baseline process
    args = parser.parse_args(argv)
    if args.notebook_only:
        for seed in range(args.seeds):
            run_notebook(42 + seed)
        return 0

    workers = os.cpu_count() or 1
    print(f"{workers} CPUs; load average at start {os.getloadavg()[0]:.2f}", flush=True)
    results: dict[str, dict] = {}
    if not args.skip_b:  # in this process: it sets 1 thread, which the subprocesses of (a) and (c) do not inherit
        results["b steps/s pipeline/bare"] = measure_throughput(args.steps, args.repeats)
    if not args.skip_c:
        total, per_job = measure_overhead(workers, args.repeats)
        results["c overhead, 50 jobs (s)"] = total
        results["c overhead per job (s)"] = per_job
    if not args.skip_a:
        results["a end-to-end time pipeline/notebook"] = measure_end_to_end(workers, args.seeds)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}\n")
    ordered = dict(sorted(results.items()))
    rows = verdict_rows(ordered)
    print_table(rows)
    return 0 if all(r[-1] == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
