"""Published reference points (PROBLEMS.md) and what a sweep found for each: agrees, disagrees or not run."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Reference:
    """One published claim about one (problem, T, arch) cell, checkable from its verdict and updates to solve."""

    problem: str
    seq_len: int
    arch: str
    claim: str
    source: str
    expect_solved: bool
    within_updates: int | None = None  # solved within this many updates (median over seeds)


REFERENCES = (
    Reference("adding", 100, "lstm", "solves adding at T=100 within ~4k updates", "batzner/indrnn reproduction of "
              "Li et al. 2018 (PROBLEMS.md)", True, 4_000),
    Reference("adding", 500, "lstm", "solves adding at T=500 within ~10k updates", "batzner/indrnn reproduction",
              True, 10_000),
    Reference("adding", 1000, "lstm", "stays at the 0.167 baseline at T=1000 for 20k updates",
              "batzner/indrnn reproduction", False),
    Reference("adding", 1000, "indrnn", "solves adding at T=1000 (and up to 5000)", "Li et al. 2018, IndRNN", True),
    Reference("copy_sequence", 500, "lstm", "stays at the copy baseline at long delays", "Arjovsky et al. 2016", False),
    Reference("copy_sequence", 1000, "lstm", "stays at the copy baseline at long delays", "Arjovsky et al. 2016",
              False),
)
# a claim "within N updates" holds when the median updates-to-solve is within this factor of N (the published
# numbers are read off single curves)
SLACK = 1.5
# a claim that a cell stays at the baseline holds only for verdicts that learned nothing: a cell that beats the
# baseline (or solved it, in some seeds or most) learned something, which the claim says it does not
STAYS_AT_BASELINE = ("at baseline", "worse than baseline", "diverged")


def reproduction_table(summary: pl.DataFrame) -> list[dict]:
    """One row per reference point: what the sweep found (the chosen cell's verdict) and agrees / disagrees /
    not run / no result (every run of the cell failed). A 'stays at baseline' claim agrees only with at
    baseline, worse than baseline or diverged (STAYS_AT_BASELINE)."""
    rows = []
    chosen = summary.filter(pl.col("chosen")) if "chosen" in summary.columns else summary
    for ref in REFERENCES:
        cell = chosen.filter((pl.col("problem") == ref.problem) & (pl.col("seq_len") == ref.seq_len)
                             & (pl.col("arch") == ref.arch))
        if not cell.height:
            rows.append({**ref.__dict__, "found": "–", "result": "not run"})
            continue
        c = cell.row(0, named=True)
        steps = c["median_steps_to_solve"]
        found = c["verdict_text"] + (f", median {steps:,.0f} updates to solve" if steps is not None else "")
        if c["verdict"] == "no result":
            rows.append({**ref.__dict__, "found": found, "result": "no result"})
            continue
        if ref.expect_solved:
            agrees = c["verdict"] == "solved" and (ref.within_updates is None or steps is None
                                                     or steps <= SLACK * ref.within_updates)
        else:
            agrees = c["verdict"] in STAYS_AT_BASELINE
        rows.append({**ref.__dict__, "found": found, "result": "agrees" if agrees else "disagrees"})
    return rows
