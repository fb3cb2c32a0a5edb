"""Prefect task that runs one train-and-evaluate job on a worker (thin wrapper over rnnbench.train)."""

from __future__ import annotations

import os

from prefect import get_run_logger, task

from rnnbench import results
from rnnbench.config import RunSpec
from rnnbench.train import train_and_evaluate, worker_device, worker_threads


@task(name="train-evaluate", task_run_name="{spec.arch} {spec.problem} T={spec.seq_len} seed={spec.seed}")
def train_job(spec: RunSpec, data_root: str, out: str, device: str | None = None) -> dict:
    """Idempotent: a job whose result is already stored returns it, so Ray's re-run after a lost worker
    and Prefect's retry after an exception are both safe. Returns the metrics row."""
    logger = get_run_logger()
    stored = results.load(out, spec)
    if stored is not None:
        logger.info("result already stored for %s; not training again", spec.run_id)
        return stored.row
    _injected_fault(spec.run_id)
    result = train_and_evaluate(spec, data_root, device=device or worker_device(), threads=worker_threads())
    results.save(out, spec, result)
    row = result.row
    logger.info("%s: %s, test %s %.4g (baseline %.4g, score %.3f, solved %s), %.1f s on %s",
                spec.run_id, row["status"], row["metric_name"], row["test_metric"] or float("nan"), row["baseline"],
                row["score"] if row["score"] is not None else float("nan"), row["solved"],
                row["train_seconds"] or 0.0, row["device"])
    _flush_logs()
    return row


def _injected_fault(run_id: str) -> None:
    """Fault injection for the reliability tests: RNNBENCH_FAIL_RUNS lists run-id prefixes that raise."""
    prefixes = [p for p in os.environ.get("RNNBENCH_FAIL_RUNS", "").split(",") if p]
    if any(run_id.startswith(p) for p in prefixes):
        raise RuntimeError(f"injected fault for {run_id} (RNNBENCH_FAIL_RUNS)")


def _flush_logs() -> None:
    # a Ray worker may be torn down right after the task: send its logs to the API now
    from flows.runtime import flush_logs

    flush_logs()
