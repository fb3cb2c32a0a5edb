"""Prefect task that runs one train-and-evaluate job on a worker (thin wrapper over rnnbench.train)."""

from __future__ import annotations

from prefect import get_run_logger, task

from rnnbench import results
from rnnbench.config import RunSpec
from tasks import dataset_store
from tasks.stored import load_checked


@task(name="train-evaluate", task_run_name="{spec.arch} {spec.problem} T={spec.seq_len} seed={spec.seed}")
def train_job(spec: RunSpec, data_root: str, out: str, device: str | None = None) -> dict:
    """Idempotent: a job whose result is already stored returns it, so Ray's re-run after a lost worker
    and Prefect's retry after an exception are both safe. Returns the metrics row."""
    logger = get_run_logger()
    # imported here: torch is for the workers; the driver only submits (and starts 2-3 s sooner)
    from rnnbench.kernels import prepare
    from rnnbench.train import pick_device, train_and_evaluate, worker_device, worker_threads

    device = device or worker_device()
    device_type = pick_device(device).type
    # builds the C++ extension (once per machine) before any clock starts, and says whether it loaded: a stored
    # result from another kernel than this worker's is trained again
    compiled = prepare(spec.arch, device_type)
    stored = load_checked(out, spec, logger, device_type=device_type, compiled=compiled)
    if stored is not None:
        logger.info("result already stored for %s; not training again", spec.run_id)
        return stored.row
    result = train_and_evaluate(spec, dataset_store.loader(data_root), device=device, threads=worker_threads())
    results.save(out, spec, result)
    row = result.row
    nan = float("nan")
    logger.info("%s: %s after %d updates, test %s %.4g (baseline %.4g, score %.3f), %.1f s on %s",
                spec.run_id, row["outcome"], row["steps_done"], row["metric_name"],
                row["test_metric"] if row["test_metric"] is not None else nan, row["baseline"],
                row["score"] if row["score"] is not None else nan,
                row["train_seconds"] or 0.0, row["device"])
    return row


class JobsFailed(RuntimeError):
    """Some jobs of a chunk raised (the others finished and are stored): raised after every job was tried, so
    that Prefect retries the chunk, and the retry skips what is stored."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{run_id}: {error}" for run_id, error in errors.items()))

    def __reduce__(self):
        # it crosses from the Ray worker to the driver by pickle, which would otherwise pass the message as `errors`
        return (JobsFailed, (self.errors,))


def _chunk_name() -> str:
    from prefect.runtime import task_run

    specs = task_run.parameters["specs"]
    return specs[0].run_id if len(specs) == 1 else f"{specs[0].run_id} and {len(specs) - 1} more"


@task(name="train-evaluate-chunk", task_run_name=_chunk_name)
def train_jobs(specs: list[RunSpec], data_root: str, out: str) -> list[dict]:
    """Several small jobs in one task (one Prefect task costs ~0.25 s; a tiny job trains in less).

    Each job is stored the moment it ends, exactly as train_job does, so a re-run of the chunk (Prefect's retry
    after an exception, Ray's after a lost worker) skips the finished ones. A job that raises never stops the
    others: every job is tried, then JobsFailed names the ones that raised. Retries are the task's own
    (`retries` in its options, set by the flow)."""
    logger = get_run_logger()
    rows, errors = [], {}
    for spec in specs:
        try:
            rows.append(train_job.fn(spec, data_root, out))
        except Exception as exc:  # noqa: BLE001 - reported per job below, never lost
            logger.warning("%s raised %s: %s", spec.run_id, type(exc).__name__, exc)
            errors[spec.run_id] = f"{type(exc).__name__}: {exc}"
    if errors:
        raise JobsFailed(errors)
    return rows
