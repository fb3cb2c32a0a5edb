"""The comparison flow and CLI: datasets, Ray fan-out of train-and-evaluate jobs, metrics, report.

    python -m flows.compare                   # the notebook's grid (preset 'seed') on a local Ray + Prefect API
    python -m flows.compare --preset smoke    # every arch x problem at tiny sizes (about a minute)
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from prefect_ray.context import remote_options
from pydantic import ValidationError as PydanticValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flows import cli, runtime
from rnnbench import results, scheduling, storage, sweep
from rnnbench.config import PRESETS, CompareConfig, ModelOptions, from_preset
from rnnbench.rows import failed_row
from schemas.errors import ValidationError as SchemaValidationError
from tasks.datasets import build_datasets
from tasks.report import write_metrics, write_report
from tasks.train import train_jobs

# Ray re-runs a task whose worker process died this many times (same task-run id; the job is idempotent)
RAY_MAX_RETRIES = 3
DEFAULT_GPU_SHARE = 0.25


@flow(name="compare", task_runner=runtime.RnnbenchRayTaskRunner(init_kwargs={"include_dashboard": False}))
def compare(config: CompareConfig, regenerate: bool = False) -> dict:
    """Build every dataset, train every (arch, problem, seq_len, seed) job on Ray, write metrics and report.

    Re-running on the same `out` skips finished jobs. `regenerate` rebuilds dataset files even when an
    existing one is valid (an invalid one is otherwise refused, never trained on)."""
    logger = get_run_logger()
    start = time.perf_counter()
    config = with_date(config)
    specs = config.runs()
    root, out = config.dataset_root, config.out
    stale = sweep.remove_stale_temporaries(out)
    if stale:
        logger.info("removed %d half-written file(s) left by an interrupted sweep", stale)
    changed = sweep.config_changes(out, config.model_dump(mode="json"))
    if changed:
        logger.info("config differs from the last sweep on %s in %s: matching finished jobs are reused, the "
                    "rest run, and the report covers this config", out, ", ".join(changed))

    import ray

    cpus = ray.cluster_resources().get("CPU", 1)
    workers = max(1, int(cpus // config.cpus_per_job))
    built = [build_datasets.submit(chunk, root, regenerate, len(chunk))
             for chunk in scheduling.chunk_datasets(config.datasets(), workers)]
    for future in built:
        future.result()  # a dataset that cannot be built valid stops the sweep before any training

    rows: dict[str, dict] = {}
    curves: list[dict] = []
    todo = []
    for spec in specs:
        stored = results.load(out, spec)
        if stored is None:
            todo.append(spec)
        else:
            rows[spec.run_id] = stored.row
            curves.extend(stored.curve)
    logger.info("%d jobs: %d already finished in %s, %d to run", len(specs), len(rows), out, len(todo))

    resources = {"num_cpus": config.cpus_per_job, "max_retries": RAY_MAX_RETRIES}
    gpus = config.gpus_per_job
    if gpus is None:
        # small recurrent models: four jobs share a GPU unless told otherwise
        gpus = DEFAULT_GPU_SHARE if ray.cluster_resources().get("GPU") else 0.0
    if gpus:
        resources["num_gpus"] = gpus
        workers = max(1, int(ray.cluster_resources()["GPU"] // gpus))
        logger.info("each job asks for %.2f GPU", gpus)
    chunks = scheduling.chunk_jobs(todo, workers)
    if len(chunks) < len(todo):
        logger.info("packed %d small jobs into %d tasks (longest first)", len(todo), len(chunks))
    with remote_options(**resources):
        futures = {train_jobs.submit(chunk, root, out, config.max_retries, len(chunk) - 1): chunk
                   for chunk in chunks}

    artifact = create_progress_artifact(progress=0.0, key="rnnbench-progress", description="jobs finished")
    columns = (TextColumn("[bold]jobs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    last_update = 0.0
    with Progress(*columns, transient=False, disable=not sys.stderr.isatty()) as bar:
        task_bar = bar.add_task("jobs", total=len(specs), completed=len(rows))
        for future in as_completed(list(futures)):
            chunk = futures[future]
            try:
                for row in future.result():
                    rows[row["run_id"]] = row
            except Exception as exc:  # noqa: BLE001 - one failure never aborts the sweep
                logger.error("a task of %d jobs failed: %s", len(chunk), exc)
                for spec in chunk:
                    rows.setdefault(spec.run_id, failed_row(spec, f"{type(exc).__name__}: {exc}"))
            bar.advance(task_bar, len(chunk))
            # one API call per second at most: the artifact is for people, not a log
            if time.monotonic() - last_update > 1.0 or len(rows) == len(specs):
                update_progress_artifact(artifact, progress=100.0 * len(rows) / len(specs))
                last_update = time.monotonic()

    for spec in todo:  # the jobs run now; the others' curves were read above
        stored = results.load(out, spec)
        if stored is not None:
            curves.extend(stored.curve)
    ordered = [rows[spec.run_id] for spec in specs]
    paths = write_metrics(ordered, curves, out)
    report = write_report(paths["metrics"], paths["curves"], out, config.model_dump(mode="json"),
                          time.perf_counter() - start)
    statuses = {s: sum(1 for r in ordered if r["status"] == s) for s in ("ok", "diverged", "failed")}
    logger.info("done: %s; report at %s", statuses, report["report_html"])
    return {**paths, **report, "statuses": statuses}


def with_date(config: CompareConfig) -> CompareConfig:
    """Expand '{date}' (UTC, YYYY-MM-DD) in out and data_root: a scheduled sweep gets a fresh output each day
    instead of finding yesterday's finished jobs and reusing them."""
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    update = {k: v.replace("{date}", today) for k in ("out", "data_root")
              if isinstance(v := getattr(config, k), str) and "{date}" in v}
    return config.model_copy(update=update) if update else config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flows.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--preset", default="seed", help=f"starting grid: {', '.join(sorted(PRESETS))} (default: seed, the "
        "notebook's grid and budgets)")
    add("--problems", type=cli.names, help="comma-separated problems to keep from the preset's grid")
    add("--archs", type=cli.names, help="comma-separated architectures (default: rnn_tanh,gru,lstm)")
    add("--seq-lens", type=cli.ints, help="comma-separated sequence lengths, replacing every problem's")
    add("--min-len", type=int, help="variable-length sequences: each length ~ U{MIN_LEN..T}, padded to T and "
        "packed in training (adding only; default: fixed length T)")
    add("--seeds", type=int, help="number of seeds (0..N-1); each seed is a new init and new data")
    add("--hidden-size", type=int, help="hidden units, replacing every problem's")
    add("--steps", type=int, help="parameter updates per job, replacing every problem's")
    add("--lr", type=float, help="Adam learning rate (default 1e-3)")
    add("--batch-size", type=int, help="sequences per update (default 64)")
    add("--n-test", type=int, help="stored test sequences per (problem, seq_len, seed) (default 1000)")
    add("--out", default="results", help="output root (path or pyarrow/fsspec URI); datasets go to OUT/data")
    add("--data-root", help="dataset root shared by all nodes (default OUT/data)")
    add("--ray-address", help="join this Ray cluster (HOST:PORT, ray://HOST:PORT or auto) instead of a local one")
    add("--cpus-per-job", type=float, help="CPUs Ray reserves per job (default 1; a job uses that many threads)")
    add("--gpus-per-job", type=float, help="GPU share per job, e.g. 0.25 packs four jobs on a GPU (default: 0.25 "
        "where the cluster has GPUs, else 0); a job runs on CUDA when it holds a GPU share")
    add("--regenerate", action="store_true", help="rebuild dataset files, e.g. after one was refused as invalid")
    g = parser.add_argument_group("model options (recorded in every metrics row)")
    g.add_argument("--num-layers", type=int, help="stacked recurrent layers (default 1)")
    g.add_argument("--bidirectional", action="store_true", default=None, help="classic cells, end-of-sequence "
                   "problems only")
    g.add_argument("--dropout", type=float, help="dropout between layers (needs --num-layers > 1)")
    g.add_argument("--no-bias", dest="bias", action="store_false", default=None, help="no bias vectors")
    g.add_argument("--proj-size", type=int, help="LSTM projection size (< hidden size)")
    g.add_argument("--forget-bias", type=float, help="LSTM forget-gate bias, e.g. 1.0")
    g.add_argument("--recurrent-init", help="default, orthogonal, or identity (IRNN, rnn_relu only)")
    return parser


def config_from_args(args: argparse.Namespace) -> CompareConfig:
    """Preset + flags -> a validated config; raises ValueError naming the bad value."""
    if args.preset not in PRESETS:
        raise ValueError(f"unknown preset {args.preset!r}; valid presets: {', '.join(sorted(PRESETS))}")
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds {args.seeds}: the number of seeds must be at least 1")
    for flag in ("steps", "hidden_size", "batch_size", "n_test"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} {value}: must be a positive integer")
    if args.lr is not None and not args.lr > 0:
        raise ValueError(f"--lr {args.lr}: must be positive")
    base = PRESETS[args.preset]()
    grids = base["grids"]
    if args.problems:
        from rnnbench.problems import get_problem

        for name in args.problems:
            get_problem(name)
        known = {g.problem for g in grids}
        defaults = {g.problem: g for g in PRESETS["seed"]()["grids"]}
        grids = [g for g in grids if g.problem in args.problems] + [
            defaults[p] for p in args.problems if p not in known and p in defaults]
    overrides = {k: v for k, v in (("seq_lens", args.seq_lens), ("hidden_size", args.hidden_size),
                                   ("steps", args.steps), ("min_len", args.min_len)) if v is not None}
    grids = [g.model_copy(update=overrides) for g in grids]
    model = {k: getattr(args, k) for k in ("num_layers", "bidirectional", "dropout", "bias", "proj_size",
                                           "forget_bias", "recurrent_init") if getattr(args, k) is not None}
    try:
        config = from_preset(
            args.preset, grids=grids, archs=args.archs, seeds=args.seeds, lr=args.lr, batch_size=args.batch_size,
            n_test=args.n_test, out=args.out, data_root=args.data_root, ray_address=args.ray_address,
            cpus_per_job=args.cpus_per_job, gpus_per_job=args.gpus_per_job,
            model=ModelOptions(**model) if model else None,
        )
    except PydanticValidationError as exc:
        raise ValueError(_pydantic_message(exc)) from None
    config.runs()  # every combination checked before any work
    return config


def _pydantic_message(exc: PydanticValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        parts.append(f"{where}={err.get('input')!r}: {err['msg']}")
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        if args.ray_address:
            runtime.check_ray_address(args.ray_address)
        storage.check_writable(config.out)
    except (ValueError, runtime.RuntimeStartError) as exc:
        runtime.fail(str(exc))
    try:
        with sweep.exclusive(config.out), runtime.embedded(config.ray_address):
            result = compare(config, regenerate=args.regenerate)
    except (sweep.SweepBusy, runtime.RuntimeStartError) as exc:
        runtime.fail(str(exc))
    except SchemaValidationError as exc:
        runtime.fail(f"{exc}\nrefused: no job trains on invalid data; rerun with --regenerate to rebuild it", code=1)
    except OSError as exc:
        runtime.fail(f"cannot write results under {config.out!r}: {exc}", code=1)
    print(f"statuses: {result['statuses']}")
    print(f"metrics:  {result['metrics']}")
    print(f"report:   {result['report_html']}")
    return 0 if result["statuses"]["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
