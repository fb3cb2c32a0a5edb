"""The tuning stage of a --lrs sweep: each cell's learning rate, chosen on its tuning runs' validation metric."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from statistics import median

from rnnbench.config import RunSpec


def choose_rates(specs: Sequence[RunSpec], rows: Mapping[str, dict]) -> dict[str, float]:
    """{RunSpec.cell_key(): rate} from the tuning runs `specs` and their metrics rows (by run id).

    Per cell, each rate's median validation metric (the best-on-validation checkpoint's, `val_metric_best`) over
    its tuning seeds; the rate with the best median wins, the first given on a tie. A diverged run, or one with no
    validation metric, counts as the worst value, never as missing (a rate where 2 of 3 runs diverged must not win
    on its one survivor); a failed job (infrastructure) is left out. A cell whose runs all failed gets no rate:
    ValueError naming it (its reported runs could not be chosen honestly)."""
    values: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    names: dict[str, str] = {}
    for spec in specs:
        if spec.role != "tune":
            raise ValueError(f"{spec.run_id} is a {spec.role!r} run: rates are chosen on tuning runs only")
        key = spec.cell_key()
        names[key] = f"{spec.problem}/{spec.arch}/T={spec.seq_len}"
        values[key][spec.lr]  # every rate tried is a candidate, even if all its runs failed
        row = rows.get(spec.run_id)
        if row is None or row.get("status") == "failed":
            continue
        metric = row.get("val_metric_best")
        higher = bool(row["higher_is_better"])
        if row.get("status") != "ok" or metric is None or not math.isfinite(metric):
            metric = -math.inf if higher else math.inf
        values[key][spec.lr].append(metric if higher else -metric)  # larger is better from here on
    chosen = {}
    for key, by_rate in values.items():
        medians = {lr: median(v) for lr, v in by_rate.items() if v}
        if not medians:
            raise ValueError(f"{names[key]}: every tuning run failed, so no learning rate can be chosen for it")
        chosen[key] = max(medians, key=lambda lr: medians[lr])  # max keeps the first of equal medians
    return chosen


__all__ = ["choose_rates"]
