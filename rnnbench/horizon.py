"""The memory-horizon search: from the verdicts so far, which lengths to run next, and the bracket when done.

Pure (no Prefect, Ray or torch): the compare flow asks `next_length` after each round, and `horizon_rows` turns
a sweep's chosen cells into the rows of horizons.parquet (schemas/horizons.py), for a search and a grid alike.

The horizon is the definition of docs/PROBLEMS.md ("Horizon and learning curves"): the longest T such that it
and every shorter T run are solved. A solved T above an unsolved one is flagged, never counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rnnbench import verdicts

GROWTH = 2  # lengths double while the cell is solved
# what horizons.parquet holds for each (problem, arch) besides its settings (schemas/horizons.py checks the values)
HORIZON_COLUMNS = {
    "search": pl.String, "start": pl.Int64, "cap": pl.Int64, "resolution": pl.Int64, "horizon_low": pl.Int64,
    "horizon_high": pl.Int64, "beyond_cap": pl.Boolean, "lengths_tried": pl.List(pl.Int64),
    "solved_lengths": pl.List(pl.Int64), "non_monotone": pl.Boolean, "jobs": pl.Int64, "seconds": pl.Float64,
    "params": pl.Int64, "state_size": pl.Int64, "seconds_per_update": pl.Float64,
}


class HorizonSearch(BaseModel):
    """One problem's search: lengths double from `start` while the cell is solved, up to `cap`; then lengths are
    bisected between the last solved and the first unsolved until they are at most `resolution` apart."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: int = Field(description="the first length run")
    cap: int = Field(description="the longest length run; a cell solved there is 'beyond cap'")
    resolution: int = Field(description="bisection stops once the bracket [low, high] is at most this wide")

    @model_validator(mode="after")
    def _consistent(self):
        check(self.start, self.cap, self.resolution)
        return self

    def ladder(self) -> list[int]:
        """The doubling lengths start, 2 start, ... up to cap (cap included): the longest a search can run."""
        lengths = [self.start]
        while lengths[-1] < self.cap:
            lengths.append(min(lengths[-1] * GROWTH, self.cap))
        return lengths

    def max_rounds(self) -> int:
        """The most rounds a search can take: the doubling ladder, then halving the widest bracket it can leave
        (its last step) down to the resolution."""
        ladder = self.ladder()
        widest = max((b - a for a, b in zip(ladder, ladder[1:], strict=False)), default=0)
        halvings = 0
        while widest > self.resolution:
            widest = (widest + 1) // 2
            halvings += 1
        return len(ladder) + halvings

    def text(self) -> str:
        return f"from T={self.start}, doubling up to T={self.cap}, bisected to {self.resolution}"


def check(start: int, cap: int, resolution: int) -> None:
    """Raise ValueError naming the bad value: a length below 2, a start above the cap, a resolution below 1."""
    if start < 2:
        raise ValueError(f"horizon start={start}: the first length must be at least 2")
    if cap < start:
        raise ValueError(f"horizon cap={cap} is below its start={start}: the cap must be >= the start")
    if resolution < 1:
        raise ValueError(f"horizon resolution={resolution}: must be at least 1 (a length step)")


class Bracket(NamedTuple):
    """Where a cell's horizon lies, from the lengths tried so far."""

    low: int | None  # the longest T solved with every shorter tried T solved (None: the shortest is not)
    high: int | None  # the shortest unsolved T above low (None: none unsolved)
    above_gap: tuple[int, ...]  # solved T above `high`: not counted, flagged
    tried: tuple[int, ...]

    @property
    def non_monotone(self) -> bool:
        return bool(self.above_gap)


def bracket(verdicts: Mapping[int, bool]) -> Bracket:
    """The bracket of {T: solved}: low is the horizon (docs/PROBLEMS.md), high the first unsolved T."""
    low = high = None
    above = []
    for length in sorted(verdicts):
        if not verdicts[length]:
            high = length if high is None else high
        elif high is None:
            low = length
        else:
            above.append(length)
    return Bracket(low, high, tuple(above), tuple(sorted(verdicts)))


def next_length(search: HorizonSearch, verdicts: Mapping[int, bool],
                valid: Callable[[int], bool] = lambda _: True) -> int | None:
    """The length to run next for one cell, or None when its search is done.

    Nothing tried: the start. Every tried length solved: double the longest (at most the cap; done at the cap).
    Else bisect [low, high] (low the horizon, high the first unsolved length above it) while it is wider than
    the resolution, at the valid length nearest the middle (`valid`: the problem is defined there; flip_flop
    wants an even T); done when the start is unsolved or no valid length lies strictly inside."""
    if not verdicts:
        return search.start
    low, high, _, _ = bracket(verdicts)
    if low is None:
        return None  # the shortest length tried is unsolved: the horizon is below the search's start
    if high is None:
        if low >= search.cap:
            return None
        grown = min(low * GROWTH, search.cap)
        return grown if valid(grown) and grown not in verdicts else _inside(low, search.cap + 1, verdicts, valid)
    if high - low <= search.resolution:
        return None
    return _inside(low, high, verdicts, valid)


def _inside(low: int, high: int, verdicts: Mapping[int, bool], valid: Callable[[int], bool]) -> int | None:
    """The untried valid length strictly between low and high nearest their middle (the shorter on a tie)."""
    middle = (low + high) // 2
    candidates = sorted(range(low + 1, high), key=lambda t: (abs(t - middle), t))
    return next((t for t in candidates if valid(t) and t not in verdicts), None)


def horizon_rows(cells: Sequence[dict], searches: Mapping[str, HorizonSearch | None], settings: Sequence[str],
                 spent: Mapping[tuple[str, str], tuple[int, float]]) -> list[dict]:
    """One row per (problem, arch) for horizons.parquet, from the sweep's chosen cells (the summary's rows with
    `chosen`; each a (problem, T, arch) with its verdict, n_seeds, params, state_size, median_train_seconds,
    median_steps_done and `settings`). `searches`: each problem's search (None: a grid, whose cap is its longest
    length). `spent`: (jobs, training seconds) of every run of each (problem, arch), tuning runs included. A
    setting that differs between a (problem, arch)'s lengths (a rate tuned per length) is null."""
    by_key: dict[tuple[str, str], list[dict]] = {}
    for cell in cells:
        by_key.setdefault((cell["problem"], cell["arch"]), []).append(cell)
    rows = []
    for (problem, arch), mine in by_key.items():
        mine.sort(key=lambda c: c["seq_len"])
        found = bracket({c["seq_len"]: c["verdict"] == "solved" for c in mine})
        search = searches.get(problem)
        cap = search.cap if search is not None else mine[-1]["seq_len"]
        at = next((c for c in mine if c["seq_len"] == found.low), mine[0])
        per_update = [c["median_train_seconds"] / c["median_steps_done"] for c in mine
                      if c.get("median_train_seconds") is not None and c.get("median_steps_done")]
        rows.append({
            "problem": problem, "arch": arch,
            **{k: _same(mine, k) for k in settings},
            "search": "search" if search is not None else "grid",
            "start": search.start if search is not None else mine[0]["seq_len"], "cap": cap,
            "resolution": search.resolution if search is not None else None,
            "horizon_low": found.low, "horizon_high": found.high,
            "beyond_cap": found.high is None and found.low is not None and found.low >= cap,
            "lengths_tried": list(found.tried),
            "solved_lengths": [c["seq_len"] for c in mine if c["verdict"] == "solved"],
            "non_monotone": found.non_monotone,
            "jobs": spent.get((problem, arch), (0, 0.0))[0],
            "seconds": float(spent.get((problem, arch), (0, 0.0))[1]),
            "params": at.get("params"), "state_size": at.get("state_size"),
            # the median over lengths of each cell's median seconds per update: what one update costs this arch
            "seconds_per_update": sorted(per_update)[len(per_update) // 2] if per_update else None,
        })
    return sorted(rows, key=lambda r: (r["problem"], r["arch"]))


def solved_so_far(metrics: pl.DataFrame) -> dict[tuple[str, str], dict[int, bool]]:
    """{(problem, arch): {T: whether its cell is solved}} from per-seed metrics rows (the metrics schema's
    columns), by the cell verdicts of rnnbench.verdicts: what the next round of a search is chosen from."""
    solved: dict[tuple[str, str], dict[int, bool]] = {}
    for cell in verdicts.summarize(metrics).filter(pl.col("chosen")).iter_rows(named=True):
        solved.setdefault((cell["problem"], cell["arch"]), {})[cell["seq_len"]] = cell["verdict"] == "solved"
    return solved


def next_round(searches: Mapping[str, HorizonSearch], solved: Mapping[tuple[str, str], Mapping[int, bool]],
               valid: Callable[[str, int], bool]) -> dict[tuple[str, str], list[int]]:
    """{(problem, arch): [T]} to run next, for every (problem, arch) of a searched problem whose search is not
    done; {} when every search is. `valid(problem, T)`: the problem is defined at T."""
    lengths = {}
    for (problem, arch), verdicts_so_far in sorted(solved.items()):
        if problem in searches:
            length = next_length(searches[problem], verdicts_so_far, lambda t, p=problem: valid(p, t))
            if length is not None:
                lengths[(problem, arch)] = [length]
    return lengths


def horizons_from_metrics(metrics: pl.DataFrame, searches: Mapping[str, HorizonSearch]) -> list[dict]:
    """horizon_rows of a sweep's metrics (every row, tuning runs and other lengths included: the verdicts read
    what rnnbench.verdicts reads, jobs and seconds count every run)."""
    summary = verdicts.summarize(metrics)
    chosen = summary.filter(pl.col("chosen")).to_dicts()
    settings = [c for c in summary.columns if c in verdicts.SETTINGS or c.startswith(verdicts.OPTION_PREFIX)]
    # one row per run, in a fixed order: the sums (hence the file's bytes) are the same at every rebuild
    runs = (metrics.filter(pl.col("eval_len") == pl.col("seq_len")).sort("run_id")
            .unique("run_id", keep="first", maintain_order=True))
    spent = {(r["problem"], r["arch"]): (r["jobs"], r["seconds"] or 0.0)
             for r in runs.group_by("problem", "arch", maintain_order=True)
             .agg(pl.len().alias("jobs"), pl.col("train_seconds").sum().alias("seconds")).iter_rows(named=True)}
    return horizon_rows(chosen, searches, settings, spent)


def _same(cells: Sequence[dict], key: str):
    values = {c.get(key) for c in cells}
    return values.pop() if len(values) == 1 else None


__all__ = ["GROWTH", "HORIZON_COLUMNS", "Bracket", "HorizonSearch", "bracket", "check", "horizon_rows",
           "horizons_from_metrics", "next_length", "next_round", "solved_so_far"]
