"""Prefect task that runs one train-and-evaluate job on a worker (thin wrapper over rnnbench.train)."""

from __future__ import annotations

from prefect import get_run_logger, task

from rnnbench import results
from rnnbench.config import RunSpec
from rnnbench.rows import failed_row
from tasks import dataset_store


@task(name="train-evaluate", task_run_name="{spec.arch} {spec.problem} T={spec.seq_len} seed={spec.seed}")
def train_job(spec: RunSpec, data_root: str, out: str, device: str | None = None) -> dict:
    """Idempotent: a job whose result is already stored returns it, so Ray's re-run after a lost worker
    and Prefect's retry after an exception are both safe. Returns the metrics row."""
    logger = get_run_logger()
    stored = results.load(out, spec)
    if stored is not None:
        logger.info("result already stored for %s; not training again", spec.run_id)
        return stored.row
    # imported here: torch is for the workers; the driver only submits (and starts 2-3 s sooner)
    from rnnbench.train import train_and_evaluate, worker_device, worker_threads

    result = train_and_evaluate(spec, dataset_store.loader(data_root), device=device or worker_device(),
                                threads=worker_threads())
    results.save(out, spec, result)
    row = result.row
    nan = float("nan")
    logger.info("%s: %s after %d updates, test %s %.4g (baseline %.4g, score %.3f), %.1f s on %s",
                spec.run_id, row["outcome"], row["steps_done"], row["metric_name"],
                row["test_metric"] if row["test_metric"] is not None else nan, row["baseline"],
                row["score"] if row["score"] is not None else nan,
                row["train_seconds"] or 0.0, row["device"])
    return row


@task(name="train-evaluate-chunk", task_run_name="{specs[0].run_id} and {n_more} more")
def train_jobs(specs: list[RunSpec], data_root: str, out: str, retries: int, n_more: int = 0) -> list[dict]:
    """Several small jobs in one task (one Prefect task costs ~0.25 s; a tiny job trains in less).

    Each job is stored the moment it ends, exactly as train_job does, so a re-run of the chunk (Ray's, after
    a lost worker) skips the finished ones. A job that raises is tried `retries` more times, then returned as
    a `failed` row (not stored, so a later sweep tries it again); it never stops the other jobs."""
    logger = get_run_logger()
    rows = []
    for spec in specs:
        for attempt in range(1, retries + 2):
            try:
                rows.append(train_job.fn(spec, data_root, out))
                break
            except Exception as exc:  # noqa: BLE001 - recorded as the job's result, never lost
                logger.warning("%s: attempt %d of %d raised %s: %s", spec.run_id, attempt, retries + 1,
                               type(exc).__name__, exc)
                if attempt == retries + 1:
                    rows.append(failed_row(spec, f"after {attempt} attempts: {type(exc).__name__}: {exc}"))
    return rows

