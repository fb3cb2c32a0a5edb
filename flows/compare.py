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

import os  # noqa: E402 - after the early start above, on purpose
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from contextlib import nullcontext  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from prefect import flow, get_run_logger  # noqa: E402
from prefect.artifacts import create_progress_artifact, update_progress_artifact  # noqa: E402
from prefect.states import Failed  # noqa: E402
from prefect_ray.context import remote_options  # noqa: E402

from flows import cli, compare_args, liveness, ray_start, runtime, shared_storage  # noqa: E402
from flows.api_server import RuntimeStartError  # noqa: E402
from flows.progress import StageProgress, wait_each  # noqa: E402
from flows.task_runner import RnnbenchRayTaskRunner  # noqa: E402
from rnnbench import scheduling, sweep  # noqa: E402
from rnnbench.config import CompareConfig, datasets_of, defined_at, from_preset  # noqa: E402
from rnnbench.horizon import next_round, solved_so_far  # noqa: E402
from rnnbench.rows import failed_row  # noqa: E402
from rnnbench.sizing import run_memory_bytes  # noqa: E402
from rnnbench.tuning import choose_rates  # noqa: E402
from schemas.errors import ValidationError as SchemaValidationError  # noqa: E402
from schemas.metrics import metrics_frame  # noqa: E402
from tasks.artifacts import artifact_key  # noqa: E402
from tasks.datasets import build_datasets  # noqa: E402
from tasks.report import write_horizons, write_metrics, write_report  # noqa: E402
from tasks.stored import load_checked, load_checked_all  # noqa: E402
from tasks.train import JobsFailed, train_jobs  # noqa: E402

# Ray re-runs a task whose worker process died this many times (same task-run id; the job is idempotent)
RAY_MAX_RETRIES = 3
DEFAULT_GPU_SHARE = 0.25


def run_name() -> str:
    """The flow run's name in Prefect's UI: preset and (scheduled) date, e.g. 'quick-2026-12-04-0300'."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters or {}
    config = parameters.get("config")
    preset = parameters.get("preset") or (config.get("preset") if isinstance(config, dict)
                                          else getattr(config, "preset", None)) or "quick"
    when = (flow_run.scheduled_start_time or datetime.now(UTC)).astimezone(UTC)
    return f"{preset}-{when:%Y-%m-%d-%H%M}"


@flow(name="compare", flow_run_name=run_name,
      task_runner=RnnbenchRayTaskRunner(init_kwargs={"include_dashboard": False}))
def compare(config: CompareConfig | None = None, regenerate: bool = False, preset: str | None = None,
            overrides: dict | None = None) -> dict:
    """Build every dataset, train every (arch, problem, seq_len, seed) job on Ray, write metrics and report.

    Either a whole `config` (the CLI) or a `preset` by name with `overrides` of some of its fields (scheduled
    deployments: the grid stays in rnnbench/config.py). Re-running on the same `out` skips finished jobs.
    `regenerate` rebuilds dataset files even when an existing one is valid (an invalid one is otherwise
    refused, never trained on). What each job asks Ray for is in the config (cpus_per_job, gpus_per_job,
    resources_per_job), so it is recorded in OUT/config.json with the rest.

    One sweep per output, whoever starts it: the run holds `out` (rnnbench.sweep.exclusive: a lock file for a
    path, a Prefect global concurrency limit for a URI) from before it touches anything there until it ends;
    a second run on the same output ends Failed at once, saying so."""
    logger = get_run_logger()
    if config is None:
        config = from_preset(preset or "quick", **(overrides or {}))
    elif preset is not None or overrides:
        raise ValueError("give either a config or a preset with overrides, not both")
    config = shared_storage.absolute(with_date(config))
    watch = liveness.RayWatch()
    try:
        # storage every node reads, checked on the Ray the task runner started or joined, before any work
        if note := shared_storage.check_shared(config, shared_storage.alive_nodes(), not ray_start.is_private_ray()):
            logger.warning("%s", note)
        with sweep.exclusive(config.out):
            return _sweep(config, regenerate, logger, watch)
    except (sweep.SweepBusy, RuntimeStartError) as exc:
        logger.error("%s", exc)
        return Failed(message=str(exc), data=exc)  # the CLI re-raises it; no traceback for an expected refusal
    except Exception as exc:  # noqa: BLE001 - re-raised unless Ray or the API died under the sweep
        what = liveness.api_death(exc) or _ray_death(watch, exc)
        if what is None:
            raise
        interrupted = sweep.SweepInterrupted(what, sweep.count_stored(config.out, [s.run_id for s in config.runs()]),
                                             len(config.runs()), config.out)
        logger.error("%s", interrupted)
        return Failed(message=str(interrupted), data=interrupted)


class _RayGone(RuntimeError):
    """Ray died while the flow waited for its tasks (found by probing, not by a task's error)."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what} is gone")


def _ray_death(watch: liveness.RayWatch, exc: BaseException) -> str | None:
    if isinstance(exc, _RayGone):
        return exc.what
    try:
        return watch.death(exc)
    except Exception:  # noqa: BLE001 - Ray not importable or not started: not Ray's death
        return None


def _sweep(config: CompareConfig, regenerate: bool, logger, watch: liveness.RayWatch) -> dict:
    start = time.perf_counter()
    specs = config.runs()
    out = config.out
    stale = sweep.remove_stale_temporaries(out)
    if stale:
        logger.info("removed %d half-written file(s) left by an interrupted sweep", stale)
    changed = sweep.config_changes(out, config.model_dump(mode="json"))
    if changed:
        logger.info("config differs from the last sweep on %s in %s: matching finished jobs are reused, the "
                    "rest run, and the report covers this config", out, ", ".join(changed))

    resources, slots = job_resources(config, logger)  # refused here, before any work, if it can never run
    _build_datasets(config, regenerate, logger, watch)

    rows: dict[str, dict] = {}
    curves: list[dict] = []
    at_other_lengths: list[dict] = []  # --eval-lens rows, read from each stored result
    todo = []

    def run_stage(stage: list) -> None:
        # a stored result from another kernel (GPU against CPU, RNNBENCH_FASTPATH) is run again, never reused
        # silently
        finished = load_checked_all(out, stage, logger, device_type="cuda" if resources.get("num_gpus") else "cpu")
        waiting = []
        for spec in stage:
            stored = finished.get(spec.run_id)
            if stored is None:
                waiting.append(spec)
            else:
                rows[spec.run_id] = stored.row
                curves.extend(stored.curve)
                at_other_lengths.extend(stored.eval_rows)
        logger.info("%d jobs: %d already finished in %s, %d to run", len(stage), len(stage) - len(waiting), out,
                    len(waiting))
        _train(config, waiting, rows, resources, slots, logger, watch)
        todo.extend(waiting)

    run_stage(specs)
    if config.tunes():
        # with --lrs, `specs` was the tuning stage (seeds of its own); the reported seeds now run each cell at
        # the rate those runs chose on validation, so no reported number comes from the runs that chose it
        rates = choose_rates(specs, rows)
        reported = config.runs(rates)
        logger.info("tuning stage done: a rate chosen on validation for each of %d cells; %d reported jobs at "
                    "those rates", len(rates), len(reported))
        run_stage(reported)
        specs = specs + reported
    specs = specs + _search_rounds(config, regenerate, specs, rows, run_stage, logger, watch)

    # nothing more is asked of Ray, and no Ray future is left (they lived in _build_datasets and _train): Ray stops
    # while the outputs are written, once its workers' last logs are sent (ray_start.RaySession.release)
    ray_start.release_ray()
    for stored in load_checked_all(out, todo, logger).values():  # the jobs run now; the others' were read above
        curves.extend(stored.curve)
        at_other_lengths.extend(stored.eval_rows)
    ordered = [rows[spec.run_id] for spec in specs]
    paths = write_metrics(ordered + at_other_lengths, curves, out)
    paths["horizons"] = write_horizons(paths["metrics"], out, config.searches())
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


def _search_rounds(config: CompareConfig, regenerate: bool, first: list, rows: dict[str, dict], run_stage, logger,
                   watch: liveness.RayWatch) -> list:
    """The later rounds of the horizon searches (--horizon; the first round, `first`, ran with the grids): each
    round's lengths come from the cell verdicts of every result so far (rnnbench.horizon.next_round), and run like
    any stage, so a rerun finds each round's finished jobs stored, reaches the same verdicts and so asks for the
    same lengths. Returns the jobs of those rounds."""
    searches = config.searches()
    ran: list = []
    round_number = 1
    while searches:
        # each job's row (a failed one's too), with the other lengths it was scored at read back from its stored
        # result: a verdict that reads the longest length (parity) is the same whether the job ran now or before
        stored = load_checked_all(config.out, first + ran, logger)
        scored = [row for result in stored.values() for row in result.eval_rows]
        solved = solved_so_far(metrics_frame(list(rows.values()) + scored))
        lengths = next_round(searches, solved, lambda problem, length: defined_at(config, problem, length))
        if not lengths:
            break
        round_number += 1
        stage = config.round_runs(lengths)
        logger.info("horizon search, round %d: %d (problem, arch) at their next length (%s), %d jobs", round_number,
                    len(lengths), ", ".join(f"{p}/{a} T={ts[0]}" for (p, a), ts in lengths.items()), len(stage))
        _build_datasets(config, regenerate, logger, watch, datasets_of(stage))
        run_stage(stage)
        ran.extend(stage)
    if searches:
        logger.info("horizon search done after %d round(s)", round_number)
    return ran


def _alive(watch: liveness.RayWatch):
    def check_ray() -> None:
        """Raise while waiting when Ray has died (a task's own error usually says so first)."""
        what = watch.death()
        if what is not None:
            raise _RayGone(what)

    return check_ray


def _build_datasets(config: CompareConfig, regenerate: bool, logger, watch: liveness.RayWatch,
                    dataset_specs: list | None = None) -> None:
    """Every dataset file of the sweep (or `dataset_specs`: a search round's), built (or found valid) on Ray; a
    dataset that cannot be built valid stops the sweep before any training."""
    dataset_specs = config.datasets() if dataset_specs is None else dataset_specs
    # tasks sized by the work (scheduling.DATASET_CHUNK_VALUES), not by the CPUs the cluster has now: an
    # autoscaling cluster whose CPU-0 head has not scaled up yet sees every task's demand
    built = [build_datasets.submit(chunk, config.dataset_root, regenerate, len(chunk))
             for chunk in scheduling.chunk_datasets(dataset_specs)]
    with StageProgress("datasets", len(dataset_specs), logger) as shown:
        wait_each(built, lambda future: shown.advance(n=len(future.result())), shown, alive=_alive(watch))


def _train(config: CompareConfig, todo: list, rows: dict[str, dict], resources: dict, slots: int, logger,
           watch: liveness.RayWatch) -> None:
    """Run the jobs `todo` on Ray, packed into chunks; each one's row lands in `rows` (a failed row for a job that
    failed every attempt). Raises only when Ray or the API dies under it."""
    specs_total = len(rows) + len(todo)
    root, out = config.dataset_root, config.out
    chunks = scheduling.chunk_jobs(todo, slots, scheduling.chunk_target_s(resources))
    if len(chunks) < len(todo):
        logger.info("packed %d small jobs into %d tasks (longest first)", len(todo), len(chunks))
    attempts = config.max_retries + 1
    futures = {}
    for chunk in chunks:  # each chunk asks for its own jobs' memory (and a GPU task reuses its worker)
        with remote_options(**scheduling.task_options(resources, chunk), max_retries=RAY_MAX_RETRIES):
            futures[train_jobs.with_options(retries=config.max_retries, retry_delay_seconds=1,
                                            timeout_seconds=scheduling.timeout_seconds(chunk))
                    .submit(chunk, root, out)] = chunk

    artifact = create_progress_artifact(progress=0.0, key=artifact_key("progress"), description="jobs finished")
    last_update = 0.0
    estimates = {spec.run_id: scheduling.estimated_seconds(spec) for spec in todo}
    with StageProgress("jobs", specs_total, logger, done=len(rows), estimates=estimates, slots=slots) as shown:
        def collect(future) -> None:
            nonlocal last_update
            chunk = futures[future]
            failed = 0
            try:
                for row in future.result():
                    rows[row["run_id"]] = row
            except Exception as exc:  # noqa: BLE001 - one failure never aborts the sweep
                if _ray_death(watch, exc):
                    raise  # not the job's fault: the sweep stops, and the same command resumes it
                # each job's result is its own: what a job stored stands, only the others are failed
                errors = exc.errors if isinstance(exc, JobsFailed) else {}
                for spec in chunk:
                    stored = load_checked(out, spec, logger)
                    if stored is not None:
                        rows[spec.run_id] = stored.row
                        continue
                    failed += 1
                    error = errors.get(spec.run_id, f"{type(exc).__name__}: {exc}")
                    rows[spec.run_id] = failed_row(spec, f"after {attempts} attempts: {error}")
                    logger.error("%s failed after %d attempts: %s", spec.run_id, attempts, error)
            shown.advance([spec.run_id for spec in chunk], failed=failed)
            # one API call per second at most: the artifact is for people, not a log
            if time.monotonic() - last_update > 1.0 or len(rows) == specs_total:
                update_progress_artifact(artifact, progress=100.0 * len(rows) / specs_total)
                last_update = time.monotonic()

        wait_each(futures, collect, shown, alive=_alive(watch))


def job_resources(config: CompareConfig, logger) -> tuple[dict, int]:
    """What each job asks Ray for, and how many such jobs the cluster can run side by side now (a lower bound on
    an autoscaling cluster; it only sizes the packing of tiny jobs).

    Demand comes from the config alone, never from what a cluster shows at the start (an autoscaling cluster
    starts its GPU or custom-resource workers only once jobs ask for them): CPUs `cpus_per_job`, custom
    resources `resources_per_job`, and GPUs `gpus_per_job`, whose default (None) is DEFAULT_GPU_SHARE on a private local
    Ray when this machine has a GPU (it never scales: what it has is what it is), else 0 (a cluster: ask with
    --gpus-per-job). A private local Ray that lacks what a job asks for refuses the sweep (it would wait forever);
    a cluster that lacks it now is told so in the log, and the jobs wait for a node that has it."""
    import ray

    private = ray_start.is_private_ray()
    available = ray.cluster_resources()
    gpus = config.gpus_per_job
    if gpus is None:
        gpus = DEFAULT_GPU_SHARE if private and available.get("GPU", 0) > 0 else 0.0
        if not private and available.get("GPU", 0) > 0:
            logger.info("the cluster has %g GPU(s) now; jobs ask for none unless --gpus-per-job (gpus_per_job) "
                        "says how much", available["GPU"])
    custom = config.resources_per_job
    shape = {"CPU": config.cpus_per_job, **({"GPU": gpus} if gpus else {}), **custom}
    # the largest job's memory (each chunk asks for its own: scheduling.task_options): a local Ray with less would
    # hold its task forever
    if memory := max((run_memory_bytes(s) for s in config.every_stage()), default=0):
        shape["memory"] = memory
    missing = {name: amount for name, amount in shape.items() if available.get(name, 0) < amount}
    if missing and private:
        raise RuntimeStartError(
            "each job asks for " + ", ".join(f"{k}={v:g}" for k, v in missing.items()) + " but the local Ray on "
            "this machine has " + ", ".join(f"{k}={available.get(k, 0):g}" for k in missing) + ": it could "
            "never run them (join a cluster that has them with --ray-address, or ask for less)")
    if missing:
        logger.warning("no node offers %s now: the jobs wait until one joins (an autoscaling cluster starts one "
                       "for them)", ", ".join(f"{k}={v:g}" for k, v in missing.items()))
    logger.info("each job asks Ray for %s", ", ".join(f"{k}={v / 2**20:,.0f} MiB" if k == "memory" else f"{k}={v:g}"
                                                     for k, v in shape.items()))
    slots = min(int(available.get(name, 0) // amount) for name, amount in shape.items())
    options = {"num_cpus": config.cpus_per_job}
    if gpus:
        options["num_gpus"] = gpus
    if custom:
        options["resources"] = dict(custom)
    return options, max(1, slots)


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
    config, args, api = checked.config, checked.args, checked.api
    ui = bool(args.ui and api is not None)  # keep our own API and its UI up after the sweep
    serving = False
    state = watching = None
    dated = with_date(config)  # the output the flow will hold: '{date}' expanded
    out = dated.out
    try:
        # a local output's lock is taken here, before Ray and the API start, so that a second sweep is refused at
        # once; the flow takes it again (re-entrant in this process). A URI's lives on the Prefect API: the flow's.
        with (nullcontext() if sweep.is_uri(out) else sweep.exclusive(out)), \
                runtime.embedded(config.ray_address, api=api, keep_api=ui):
            watching = watch_api(api, dated) if api is not None else None  # the API answers by now
            state = compare(config, regenerate=args.regenerate, return_state=True)
            result = state.result(raise_on_failure=False)
            if isinstance(result, BaseException):
                raise result
        serving = ui
    except sweep.SweepInterrupted as exc:
        cli.fail(str(exc), code=1)
    except (sweep.SweepBusy, RuntimeStartError) as exc:
        cli.fail(str(exc))
    except SchemaValidationError as exc:
        cli.fail(f"{exc}\nrefused: no job trains on invalid data; rerun with --regenerate to rebuild it", code=1)
    except OSError as exc:
        cli.fail(f"cannot write results under {config.out!r}: {exc}", code=1)
    except Exception as exc:
        what = liveness.api_death(exc, api.url if api is not None else None)
        if what is None:
            raise
        run_ids = [spec.run_id for spec in config.runs()]
        cli.fail(str(sweep.SweepInterrupted(what, sweep.count_stored(out, run_ids), len(run_ids), out)), code=1)
    finally:
        if watching is not None:
            watching.set()
        if api is not None and not serving:
            api.stop()  # already stopped unless the sweep never began (e.g. another holds its lock) or --ui
    print(f"statuses: {result['statuses']}")
    print(f"metrics:  {result['metrics']}")
    print(f"report:   {result['report_html']}")
    flow_run_id = state.state_details.flow_run_id if state is not None else None
    if serving:
        serve_ui(api, flow_run_id)
    elif api is not None:
        from prefect.settings import PREFECT_HOME

        print(f"history:  this run's record (flow run, task runs, logs, artifacts) stays in Prefect's database "
              f"under {PREFECT_HOME.value()}: `prefect server start` serves it at http://127.0.0.1:4200/runs, "
              "or run with --ui to keep this run's UI up after the sweep")
    return 0 if result["statuses"]["failed"] == 0 else 1


def watch_api(api, config: CompareConfig) -> threading.Event:
    """While the sweep runs, watch the Prefect API this process started: when it dies (it exits other than by
    being asked to stop: kill -9, out of memory), say so in one line (how many jobs are stored, that the same
    command resumes), stop Ray, and exit 1 at once: nothing in this process can record anything any more, and
    Prefect's client would otherwise retry every call for a minute or more before giving up. Returns the event
    that ends the watch."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.5):
            process = api.process
            if process is None:
                return  # stopped on purpose
            code = process.poll()
            if code is None:
                continue
            if code == 0:
                return  # asked to stop (Ctrl-C on the terminal reaches it too): this process handles that itself
            run_ids = [spec.run_id for spec in config.runs()]
            interrupted = sweep.SweepInterrupted(f"the Prefect API at {api.url}", sweep.count_stored(
                config.out, run_ids), len(run_ids), config.out)
            print(f"error: {interrupted}", file=sys.stderr, flush=True)
            sys.stdout.flush()
            # Ray's node processes (the agents among them) outlive an abrupt exit: stop them first, in bounded time
            stopping = threading.Thread(target=_shutdown_ray, daemon=True)
            stopping.start()
            stopping.join(timeout=15)
            os._exit(1)  # not cli.exit_now: its logging.shutdown() would flush logs to the dead API, with retries

    threading.Thread(target=watch, name="rnnbench-api-watch", daemon=True).start()
    return stop


def _shutdown_ray() -> None:
    try:
        import ray

        ray.shutdown()
    except Exception:  # noqa: BLE001 - exiting anyway
        pass


def serve_ui(api, flow_run_id) -> None:
    """Keep the local Prefect API and its UI up, with the run history, until Ctrl-C (or SIGTERM), then stop it.
    Ray is already stopped: only the UI and its database stay."""
    page = f"{api.ui_url}/runs/flow-run/{flow_run_id}" if flow_run_id else f"{api.ui_url}/runs"
    print(f"Prefect UI: {page} (this run and the ones before it); Ctrl-C stops it", flush=True)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            if api.process is None or api.process.poll() is not None:
                break  # it ended by itself (a Ctrl-C on the terminal reaches it too)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        api.stop()
    print("Prefect UI stopped", flush=True)


if __name__ == "__main__":
    cli.exit_now(main(checked=_PREFLIGHT))
