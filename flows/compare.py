"""The comparison flow and CLI: datasets, Ray fan-out of train-and-evaluate jobs, metrics, report.

    python -m flows.compare                   # preset 'quick' on a local Ray + Prefect API (~10 min, 2 cores)
    python -m flows.compare --preset smoke    # every arch x problem at tiny sizes (about a minute)
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    # `python -m flows.compare`: check the flags and start the Prefect API before the imports below, which take
    # seconds; the API's own start-up (seconds more, in its process) then overlaps them
    from flows import compare_args

    _PREFLIGHT = compare_args.preflight(sys.argv[1:])

import time  # noqa: E402 - after the early start above, on purpose
from datetime import UTC, datetime  # noqa: E402

from prefect import flow, get_run_logger  # noqa: E402
from prefect.artifacts import create_progress_artifact, update_progress_artifact  # noqa: E402
from prefect.futures import as_completed  # noqa: E402
from prefect.states import Failed  # noqa: E402
from prefect_ray.context import remote_options  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

from flows import cli, compare_args, runtime  # noqa: E402
from rnnbench import scheduling, sweep  # noqa: E402
from rnnbench.config import CompareConfig, from_preset  # noqa: E402
from rnnbench.rows import failed_row  # noqa: E402
from schemas.errors import ValidationError as SchemaValidationError  # noqa: E402
from tasks.datasets import build_datasets  # noqa: E402
from tasks.report import write_metrics, write_report  # noqa: E402
from tasks.stored import load_checked  # noqa: E402
from tasks.train import JobsFailed, train_jobs  # noqa: E402

# Ray re-runs a task whose worker process died this many times (same task-run id; the job is idempotent)
RAY_MAX_RETRIES = 3
DEFAULT_GPU_SHARE = 0.25


@flow(name="compare", task_runner=runtime.RnnbenchRayTaskRunner(init_kwargs={"include_dashboard": False}))
def compare(config: CompareConfig | None = None, regenerate: bool = False, preset: str | None = None,
            overrides: dict | None = None) -> dict:
    """Build every dataset, train every (arch, problem, seq_len, seed) job on Ray, write metrics and report.

    Either a whole `config` (the CLI) or a `preset` by name with `overrides` of some of its fields (scheduled
    deployments: the grid stays in rnnbench/config.py). Re-running on the same `out` skips finished jobs.
    `regenerate` rebuilds dataset files even when an existing one is valid (an invalid one is otherwise
    refused, never trained on)."""
    logger = get_run_logger()
    start = time.perf_counter()
    if config is None:
        config = from_preset(preset or "quick", **(overrides or {}))
    elif preset is not None or overrides:
        raise ValueError("give either a config or a preset with overrides, not both")
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
    at_other_lengths: list[dict] = []  # --eval-lens rows, read from each stored result
    todo = []
    for spec in specs:
        stored = load_checked(out, spec, logger)
        if stored is None:
            todo.append(spec)
        else:
            rows[spec.run_id] = stored.row
            curves.extend(stored.curve)
            at_other_lengths.extend(stored.eval_rows)
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
    attempts = config.max_retries + 1
    with remote_options(**resources):
        futures = {train_jobs.with_options(retries=config.max_retries, retry_delay_seconds=1,
                                           timeout_seconds=scheduling.timeout_seconds(chunk))
                   .submit(chunk, root, out): chunk for chunk in chunks}

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
                # each job's result is its own: what a job stored stands, only the others are failed
                errors = exc.errors if isinstance(exc, JobsFailed) else {}
                for spec in chunk:
                    stored = load_checked(out, spec, logger)
                    if stored is not None:
                        rows[spec.run_id] = stored.row
                        continue
                    error = errors.get(spec.run_id, f"{type(exc).__name__}: {exc}")
                    rows[spec.run_id] = failed_row(spec, f"after {attempts} attempts: {error}")
                    logger.error("%s failed after %d attempts: %s", spec.run_id, attempts, error)
            bar.advance(task_bar, len(chunk))
            # one API call per second at most: the artifact is for people, not a log
            if time.monotonic() - last_update > 1.0 or len(rows) == len(specs):
                update_progress_artifact(artifact, progress=100.0 * len(rows) / len(specs))
                last_update = time.monotonic()

    runtime.remote_results_received()
    for spec in todo:  # the jobs run now; the others' curves were read above
        stored = load_checked(out, spec, logger)
        if stored is not None:
            curves.extend(stored.curve)
            at_other_lengths.extend(stored.eval_rows)
    ordered = [rows[spec.run_id] for spec in specs]
    paths = write_metrics(ordered + at_other_lengths, curves, out)
    written = write_report(paths["metrics"], paths["curves"], out, config.model_dump(mode="json"),
                           time.perf_counter() - start)
    statuses = {s: sum(1 for r in ordered if r["status"] == s) for s in ("ok", "diverged", "failed")}
    logger.info("done: %s; report at %s", statuses, written["report_html"])
    result = {**paths, **written, "statuses": statuses}
    if statuses["failed"]:
        # the run's state says so (alerts, automations), and still carries the paths of what was written
        return Failed(message=f"{statuses['failed']} of {len(ordered)} jobs failed; report at "
                              f"{written['report_html']}", data=result)
    return result


def with_date(config: CompareConfig) -> CompareConfig:
    """Expand '{date}' (UTC, YYYY-MM-DD) in out and data_root: a scheduled sweep gets a fresh output each day
    instead of finding yesterday's finished jobs and reusing them. The date is the flow run's scheduled start
    (a run that starts late, or is retried the next morning, still writes to its own night's folder); the wall
    clock only outside a flow run."""
    from prefect.runtime import flow_run

    when = flow_run.scheduled_start_time or datetime.now(UTC)
    today = when.astimezone(UTC).strftime("%Y-%m-%d")
    update = {k: v.replace("{date}", today) for k in ("out", "data_root")
              if isinstance(v := getattr(config, k), str) and "{date}" in v}
    return config.model_copy(update=update) if update else config


def main(argv: list[str] | None = None, checked: compare_args.Preflight | None = None) -> int:
    """The CLI. `checked`: the flags already checked and the API already started (`python -m flows.compare`
    does both before its heavy imports); otherwise both happen here."""
    checked = checked or compare_args.preflight(argv)
    config = checked.config
    try:
        with sweep.exclusive(config.out), runtime.embedded(config.ray_address, api=checked.api):
            state = compare(config, regenerate=checked.args.regenerate, return_state=True)
            result = state.result(raise_on_failure=False)
            if isinstance(result, BaseException):
                raise result
    except (sweep.SweepBusy, runtime.RuntimeStartError) as exc:
        runtime.fail(str(exc))
    except SchemaValidationError as exc:
        runtime.fail(f"{exc}\nrefused: no job trains on invalid data; rerun with --regenerate to rebuild it", code=1)
    except OSError as exc:
        runtime.fail(f"cannot write results under {config.out!r}: {exc}", code=1)
    finally:
        if checked.api is not None:
            checked.api.stop()  # already stopped unless the sweep never began (e.g. another holds its lock)
    print(f"statuses: {result['statuses']}")
    print(f"metrics:  {result['metrics']}")
    print(f"report:   {result['report_html']}")
    return 0 if result["statuses"]["failed"] == 0 else 1


if __name__ == "__main__":
    cli.exit_now(main(checked=_PREFLIGHT))
