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
    assert scheduling.chunk_datasets([]) == []


@pytest.mark.parametrize("budget", [1, 500_000, 8_000_000, 10**12])
def test_dataset_tasks_follow_the_work_not_the_cluster(budget):
    """Every file in exactly one task; no task over the budget unless it holds one file alone; as few tasks as the
    budget allows for these sizes (one per file at a budget below every file, one in all above their sum)."""
    datasets = from_preset("seed", out="/tmp/unused", seeds=2).datasets()
    chunks = scheduling.chunk_datasets(datasets, budget)
    assert Counter(d for chunk in chunks for d in chunk) == Counter(datasets)
    sizes = [sum(d.n_rows * d.seq_len for d in chunk) for chunk in chunks]
    assert all(size <= budget or len(chunk) == 1 for size, chunk in zip(sizes, chunks, strict=True))
    total = sum(d.n_rows * d.seq_len for d in datasets)
    if budget == 1:
        assert len(chunks) == len(datasets)
    if budget >= total:
        assert len(chunks) == 1
    # as few as the budget allows: no two tasks could have been one
    assert all(a + b > budget for i, a in enumerate(sizes) for b in sizes[i + 1:])


def test_the_full_preset_is_generated_as_many_tasks_whatever_the_cluster_has_now():
    chunks = scheduling.chunk_datasets(from_preset("full", out="/tmp/unused").datasets())
    assert len(chunks) > 100  # an autoscaler sees this demand; a CPU-0 head alone once meant one task
