"""How jobs are packed into Ray tasks and dataset files spread over workers: every item exactly once, balanced."""

from __future__ import annotations

from collections import Counter

import pytest

from rnnbench import scheduling
from rnnbench.config import from_preset


def _specs(preset: str, **overrides) -> list:
    return from_preset(preset, out="/tmp/unused", **overrides).runs()


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_every_job_lands_in_exactly_one_chunk(workers):
    specs = _specs("seed", seeds=3)
    chunks = scheduling.chunk_jobs(specs, workers)
    placed = Counter(s.run_id for chunk in chunks for s in chunk)
    assert placed == Counter(s.run_id for s in specs)
    assert all(chunks)


def test_tiny_jobs_are_packed_but_keep_every_worker_busy_twice_over():
    specs = _specs("smoke", seeds=10)  # 90 jobs of well under a second each
    total = sum(scheduling.estimated_seconds(s) for s in specs)
    assert total < scheduling.CHUNK_TARGET_S * 4  # the premise: the whole grid is a few seconds of work
    chunks = scheduling.chunk_jobs(specs, workers=2)
    assert len(chunks) == 4
    loads = [sum(scheduling.estimated_seconds(s) for s in c) for c in chunks]
    longest = max(scheduling.estimated_seconds(s) for s in specs)
    assert max(loads) - min(loads) <= longest  # longest-first packing: within one job of each other


def test_long_jobs_get_a_task_each_longest_first():
    specs = _specs("seed")  # the notebook's grid: seconds to a minute per job
    chunks = scheduling.chunk_jobs(specs, workers=2)
    assert len(chunks) == len(specs)
    estimates = [scheduling.estimated_seconds(c[0]) for c in chunks]
    assert estimates == sorted(estimates, reverse=True)


def test_no_jobs_no_chunks():
    assert scheduling.chunk_jobs([], 4) == []
    assert scheduling.chunk_datasets([], 4) == []


@pytest.mark.parametrize("workers", [1, 2, 5, 100])
def test_dataset_files_spread_over_at_most_the_workers(workers):
    datasets = from_preset("seed", out="/tmp/unused", seeds=2).datasets()
    chunks = scheduling.chunk_datasets(datasets, workers)
    assert len(chunks) == min(workers, len(datasets))
    assert Counter(d for chunk in chunks for d in chunk) == Counter(datasets)
