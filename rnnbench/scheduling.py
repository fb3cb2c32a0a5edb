"""How jobs are packed into Ray tasks: a cost estimate per job, and longest-first chunks for tiny jobs."""

from __future__ import annotations

import math

from rnnbench.config import RunSpec
from rnnbench.datasets import DatasetSpec
from rnnbench.sizing import run_memory_bytes

# One training step (forward, backward, Adam) per time step of a batch: the LSTM's per-step overhead plus its
# four gate products (forward and backward on one core), times each arch's cost relative to that LSTM at equal
# width. Relative costs from benchmarks/cell_speed.py (one thread, B=64, H=64, the adding problem, T=50 and
# T=200, 2026-11-29, freed memory kept as a job's process keeps it: rnnbench/memory.py), against the classic cells'
# CPU fast path (rnnbench/archs/fastpath.py: 5.2 ms a step for lstm at T=50) and the modern cells' compiled
# recurrent form. LRU read at every step (per-step problems) costs 1.9-2.5x the LSTM's (read at the last step it
# computes its top block at that step only: StackedCore.forward_last). Checked against whole presets end to end by
# benchmarks/preset_time.py (the plan it prints is this model's).
STEP_OVERHEAD_S = 48e-6
MAC_S = 5.4e-11
RELATIVE_COST = {"lstm": 1.0, "gru": 0.8, "rnn_tanh": 0.4, "rnn_relu": 0.4, "indrnn": 0.8, "mingru": 1.2,
                 "minlstm": 1.5, "lru": 1.3}
PER_STEP_COST = {"lru": 2.2}  # where reading every step's output costs an arch more than RELATIVE_COST says
# each evaluation scores the validation split: forward passes only, about a third of a training step each
EVAL_FRACTION = 1 / 3
# values (rows x length) generated, written and validated per dataset task: ~2 s of work at the ~4 M values/s one
# core does here (tasks/dataset_store.build on the quick preset's largest file, 4.8 M values in 0.9-1.4 s,
# 2026-12-04, noisy 2-core machine), against a task's own cost of a fraction of a second
DATASET_CHUNK_VALUES = 8_000_000
# a sweep's own start and end: Prefect API, Ray, datasets, metrics and report (measured: ~25-30 s on 2 cores)
STARTUP_S = 30.0
# what a job costs beyond its training and validation steps: loading its data, building the model, scoring the
# test split twice (best and last checkpoints), its Ray task (measured with benchmarks/compare_speed.py (a): the
# seed preset's 15 jobs of one seed spent 10.5 s of the job phase's 39.7 s beyond their 29.2 s of training on 2
# cores, ~1.4 CPU-s a job with validation included); in the plan only, not in packing or time limits
JOB_OVERHEAD_S = 1.0
# a Prefect task on Ray costs ~0.25 s of orchestration: pack jobs so each task carries at least this much work
CHUNK_TARGET_S = 2.0
# a GPU chunk's target (estimated CPU-seconds of its jobs): a job on a GPU share runs several times faster than on
# one core, so the same orchestration cost needs more jobs per task to stay small beside the work
GPU_CHUNK_TARGET_S = 20.0


def estimated_seconds(spec: RunSpec) -> float:
    """Training time of a job on one CPU core at its full budget (early stop only shortens it): updates plus
    validation passes, times time steps, times the per-step cost. Orders and packs jobs, sets task timeouts and
    makes the plan printed before a sweep."""
    problem = spec.problem_def()
    h = spec.hidden_size
    macs = spec.batch_size * 4 * h * (problem.input_size + h) * spec.model.num_layers
    relative = RELATIVE_COST.get(spec.arch, 1.0)
    if problem.target_kind == "per_step":
        relative = PER_STEP_COST.get(spec.arch, relative)
    per_step = relative * (STEP_OVERHEAD_S + macs * MAC_S)
    evaluations = spec.steps // spec.eval_every * math.ceil(spec.n_val / spec.batch_size) * EVAL_FRACTION
    return (spec.steps + evaluations) * problem.input_steps(spec.seq_len) * per_step


def timeout_seconds(specs: list[RunSpec]) -> float:
    """A Prefect task's time limit for a chunk of jobs: ten times the cost model's estimate, and never under
    ten minutes (the model is rough; the limit is there so that one hung job cannot hold a nightly run, and
    with it every later one, forever)."""
    return max(600.0, 10 * sum(estimated_seconds(s) for s in specs))


def cpu_hours(specs) -> float:
    """CPU-hours of these jobs by the cost model, each job's overhead included."""
    return sum(estimated_seconds(s) + JOB_OVERHEAD_S for s in specs) / 3600


def plan_text(config, cpus: int) -> str:
    """One paragraph printed before any work: how many jobs, how much compute by the cost model, and what that
    means on `cpus` cores here; for a subset, also what the whole sweep would take."""
    hours = cpu_hours

    def wall(h: float) -> str:
        seconds = h * 3600 / max(1, cpus) + STARTUP_S
        return f"{seconds / 60:.1f} min" if seconds < 2 * 3600 else f"{seconds / 3600:.1f} h"

    runs = config.every_stage()
    cells = {(s.problem, s.seq_len) for s in runs}
    text = (f"plan: {len(runs)} jobs ({len(cells)} problem x length cells, {len({s.arch for s in runs})} archs, "
            f"{len(config.learning_rates())} learning rate(s), {config.seeds} seeds), about {hours(runs):.2f} "
            f"CPU-hours by the cost model: ~{wall(hours(runs))} on {cpus} cores here, less where runs stop early "
            f"(a GPU share runs a job several times faster than one core)")
    if config.tunes():
        tune, seeds = config.runs(), config.tune_seed_numbers()
        text += (f"; in two stages: {len(tune)} tuning jobs (every rate on seeds {seeds[0]}..{seeds[-1]}, which "
                 f"are never reported), then {len(runs) - len(tune)} reported jobs (seeds 0..{config.seeds - 1}, "
                 f"each cell at the rate its tuning runs chose on validation)")
    if config.subset:
        whole = config.all_runs() + (config.all_runs(config.learning_rates()[0]) if config.tunes() else [])
        text += (f"; subset {config.subset} of {len(whole)} jobs in all, which would take about "
                 f"{hours(whole):.1f} CPU-hours: ~{wall(hours(whole))} on {cpus} cores here")
    return text


def chunk_jobs(specs: list[RunSpec], workers: int, target_s: float = CHUNK_TARGET_S) -> list[list[RunSpec]]:
    """Longest-processing-time-first packing: as many chunks as keeps every worker busy twice over, fewer when
    the jobs are so small that a task per job would cost more in orchestration than in training. Jobs of
    seconds or more each get their own task; the longest start first (a shorter makespan)."""
    if not specs:
        return []
    ordered = sorted(specs, key=estimated_seconds, reverse=True)
    total = sum(estimated_seconds(s) for s in ordered)
    n = min(len(ordered), max(2 * max(1, workers), math.ceil(total / target_s)))
    chunks: list[list[RunSpec]] = [[] for _ in range(n)]
    loads = [0.0] * n
    for spec in ordered:
        i = loads.index(min(loads))
        chunks[i].append(spec)
        loads[i] += estimated_seconds(spec)
    return [c for c in chunks if c]


def chunk_datasets(specs: list[DatasetSpec], budget: int = DATASET_CHUNK_VALUES) -> list[list[DatasetSpec]]:
    """Dataset files grouped into tasks of at most `budget` values (rows x length) each, largest first; a file
    over the budget is a task of its own. The number of tasks follows from the work alone, never from the CPUs a
    cluster shows at the start: an autoscaler sees every task's demand and adds nodes for it."""
    chunks: list[list[DatasetSpec]] = []
    loads: list[int] = []
    for spec in sorted(specs, key=lambda s: s.n_rows * s.seq_len, reverse=True):
        size = spec.n_rows * spec.seq_len
        i = next((i for i, load in enumerate(loads) if load + size <= budget), None)
        if i is None:
            chunks.append([])
            loads.append(0)
            i = len(chunks) - 1
        chunks[i].append(spec)
        loads[i] += size
    return chunks


def chunk_target_s(resources: dict) -> float:
    """The packing target for tasks asking Ray for `resources` (job_resources' options): larger on a GPU."""
    return GPU_CHUNK_TARGET_S if resources.get("num_gpus") else CHUNK_TARGET_S


def task_options(resources: dict, chunk: list[RunSpec]) -> dict:
    """The Ray options of one chunk's task: the job's `resources` (num_cpus, num_gpus, resources), `memory` (bytes,
    the largest of its jobs by rnnbench.sizing.run_memory_bytes: they run one after another), and for a GPU task
    `max_calls=0`: Ray otherwise gives a task with num_gpus > 0 max_calls=1, a fresh worker process (and CUDA
    context, seconds) per task; the jobs free their GPU memory as they end, so a worker is safe to reuse."""
    options = {**resources, "memory": max(run_memory_bytes(spec) for spec in chunk)}
    if resources.get("num_gpus"):
        options["max_calls"] = 0
    return options
