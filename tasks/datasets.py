"""Prefect tasks that build and validate dataset files (thin wrappers over tasks.dataset_store)."""

from __future__ import annotations

from prefect import get_run_logger, task

from rnnbench.datasets import DatasetSpec
from tasks import dataset_store


@task(name="build-dataset", task_run_name="build {spec.problem} T={spec.seq_len} {spec.split} seed={spec.seed}")
def build_dataset(spec: DatasetSpec, root: str, regenerate: bool = False) -> dict:
    result = dataset_store.build(spec, root, regenerate=regenerate)
    verb = "reused valid" if result.reused else "wrote"
    get_run_logger().info("%s %s (%d rows, %.2f s)", verb, result.path, spec.n_rows, result.seconds)
    return {"path": result.path, "reused": result.reused, "seconds": result.seconds}


@task(name="build-datasets", task_run_name="build {n} dataset files")
def build_datasets(specs: list[DatasetSpec], root: str, regenerate: bool = False, n: int = 0) -> list[dict]:
    """Several files in one task: a task per tiny file would cost more in orchestration than in work."""
    return [build_dataset.fn(spec, root, regenerate) for spec in specs]


@task(name="validate-dataset", task_run_name="validate {path}")
def validate_dataset(path: str) -> str | None:
    """None when valid, else the full message naming file, column, check and failed rows."""
    valid, message = dataset_store.check(path)
    if valid:
        get_run_logger().info("%s", message)
        return None
    get_run_logger().error("%s", message)
    return message
