"""A sweep's plan before any work: jobs, CPU-hours, dataset bytes on disk and epochs per cell, as text or JSON."""

from __future__ import annotations

from collections import defaultdict

from rnnbench import sizing
from rnnbench.scheduling import cpu_hours, plan_text


def _file_bytes(spec) -> int:
    return spec.n_rows * sizing.row_bytes(spec.problem, spec.seq_len, spec.variable, dict(spec.options))


def plan_numbers(config, cpus: int) -> dict:
    """The plan as numbers: what `--dry-run --json` prints and the text of `plan_lines` says. Epochs per
    (problem, T) cell: min and max over its runs of updates x batch size / stored training sequences."""
    runs = config.every_stage()
    datasets = config.datasets()
    cells: dict[tuple[str, int], list] = defaultdict(list)
    for run in runs:
        cells[(run.problem, run.seq_len)].append(run)
    train_bytes = {(d.problem, d.seq_len): 0 for d in datasets}
    for d in datasets:
        if d.split == "train":
            train_bytes[(d.problem, d.seq_len)] = max(train_bytes[(d.problem, d.seq_len)], _file_bytes(d))
    per_cell = []
    for (problem, seq_len), group in sorted(cells.items()):
        epochs = [sizing.epochs(r.steps, r.batch_size, r.n_train) for r in group]
        per_cell.append({
            "problem": problem, "seq_len": seq_len, "jobs": len(group),
            "n_train": sorted({r.n_train for r in group}), "min_epochs": min(epochs), "max_epochs": max(epochs),
            "data_limited": sizing.data_limited(max(epochs)), "train_file_bytes": train_bytes.get((problem, seq_len)),
        })
    return {
        "preset": config.preset, "jobs": len(runs), "cells": len(per_cell), "cpus": cpus,
        "cpu_hours": cpu_hours(runs),
        "dataset_files": len(datasets), "dataset_bytes": sum(_file_bytes(d) for d in datasets),
        "largest_train_file_bytes": max((c["train_file_bytes"] or 0 for c in per_cell), default=0),
        "max_epochs_allowed": sizing.MAX_EPOCHS,
        "max_epochs": max((c["max_epochs"] for c in per_cell), default=None),
        "data_limited_cells": sum(c["data_limited"] for c in per_cell),
        "epochs": per_cell,
    }


def plan_lines(config, cpus: int, numbers: dict | None = None) -> str:
    """The plan paragraph (scheduling.plan_text) and a data line: files, bytes, epochs min-max per problem."""
    numbers = numbers or plan_numbers(config, cpus)
    by_problem: dict[str, list[float]] = defaultdict(list)
    for cell in numbers["epochs"]:
        by_problem[cell["problem"]] += [cell["min_epochs"], cell["max_epochs"]]
    ranges = ", ".join(f"{p} {min(e):.2g}-{max(e):.2g}" for p, e in by_problem.items())
    limited = numbers["data_limited_cells"]
    data = (f"data: {numbers['dataset_files']} dataset files, {sizing.size_text(numbers['dataset_bytes'])} on disk "
            f"(largest training file {sizing.size_text(numbers['largest_train_file_bytes'])}); epochs per run "
            f"(updates x batch size / stored training sequences), min-max per problem: {ranges}; "
            + (f"{limited} cell(s) read more than {sizing.MAX_EPOCHS} epochs and will be marked data-limited"
               if limited else f"every cell at most {sizing.MAX_EPOCHS}"))
    return f"{plan_text(config, cpus)}\n{data}"
