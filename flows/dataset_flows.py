"""The dataset commands' Prefect flows, run when a Prefect API is configured so that the run is recorded there."""

from __future__ import annotations

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from rnnbench.datasets import DatasetSpec
from tasks.dataset_store import BUILD_THREADS
from tasks.datasets import build_dataset, validate_dataset


@flow(name="datasets", task_runner=ThreadPoolTaskRunner(max_workers=BUILD_THREADS))
def datasets_flow(specs: list[DatasetSpec], out: str, regenerate: bool = False) -> list[dict]:
    futures = [build_dataset.submit(spec, out, regenerate) for spec in specs]
    return [f.result() for f in futures]


@flow(name="validate-datasets")
def validate_flow(paths: list[str]) -> list[str | None]:
    futures = [validate_dataset.submit(p) for p in paths]
    return [f.result() for f in futures]
