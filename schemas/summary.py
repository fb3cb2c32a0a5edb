"""Schema of summary.parquet: one row per cell (problem, seq_len, arch, settings) with its verdict from counts."""

from __future__ import annotations

import pandera.polars as pap
import polars as pl

from rnnbench.verdicts import order_statistic_rank
from schemas.metrics import CellKey

VERDICT_NAMES = ["solved", "split", "beats baseline", "at baseline", "worse than baseline", "diverged", "no result"]


class Summary(CellKey):
    """Derived from metrics.parquet by rnnbench.verdicts.summarize; the report's tables and sentences read it."""

    metric_name: str
    higher_is_better: bool
    n_seeds: int = pap.Field(ge=1)
    n_ok: int = pap.Field(ge=0)
    n_diverged: int = pap.Field(ge=0)
    n_failed: int = pap.Field(ge=0)
    n_solved: int = pap.Field(ge=0)
    n_beats_baseline: int = pap.Field(ge=0)
    n_at_baseline: int = pap.Field(ge=0)
    n_worse: int = pap.Field(ge=0)
    median: float = pap.Field(ge=0, nullable=True)
    ci_low: float = pap.Field(ge=0, nullable=True)
    ci_high: float = pap.Field(ge=0, nullable=True)
    # the probability that [ci_low, ci_high] covers the median over seeds (exact, binomial): 0.75 for the range
    # over 3 seeds; at least INTERVAL_LEVEL wherever the number of seeds allows it
    ci_level: float = pap.Field(ge=0, le=1, nullable=True)
    baseline: float = pap.Field(gt=0)
    score: float = pap.Field(nullable=True)
    verdict: str = pap.Field(isin=VERDICT_NAMES)
    verdict_text: str
    median_steps_to_solve: float = pap.Field(ge=1, nullable=True)
    median_steps_done: float = pap.Field(ge=0, nullable=True)
    params: int = pap.Field(ge=1, nullable=True)
    state_size: int = pap.Field(ge=1, nullable=True)
    median_train_seconds: float = pap.Field(ge=0, nullable=True)
    solved_rule: str
    val_median: float = pap.Field(ge=0, nullable=True)  # median best validation metric over ok seeds
    chosen: bool  # the cell that represents its (problem, seq_len, arch): best val_median among its settings
    # the most epochs one of its runs read (training sequences seen / stored); over 10 the report marks it
    max_epochs: float = pap.Field(ge=0, nullable=True)

    class Config:
        strict = True

    @pap.dataframe_check(name="counts_add_up")
    def counts_add_up(cls, data) -> pl.LazyFrame:
        parts = ["n_solved", "n_beats_baseline", "n_at_baseline", "n_worse", "n_diverged", "n_failed"]
        return data.lazyframe.select(pl.sum_horizontal(parts) == pl.col("n_seeds"))

    @pap.dataframe_check(name="interval_contains_median")
    def interval_contains_median(cls, data) -> pl.LazyFrame:
        median = pl.col("median")
        return data.lazyframe.select(median.is_null() | ((pl.col("ci_low") <= median) & (median <= pl.col("ci_high"))))

    @pap.dataframe_check(name="interval_states_its_level")
    def interval_has_level(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("median").is_null() == pl.col("ci_level").is_null())

    @pap.dataframe_check(name="level_is_the_order_statistic_coverage")
    def level_matches_seeds(cls, data) -> pl.LazyFrame:
        # the level follows from the number of values alone (the runs with a test metric: n_ok)
        expected = pl.col("n_ok").map_elements(lambda n: order_statistic_rank(n)[1] if n else None,
                                               return_dtype=pl.Float64)
        return data.lazyframe.select(pl.col("ci_level").is_null() | ((pl.col("ci_level") - expected).abs() < 1e-12))

    @pap.dataframe_check(name="accuracy_interval_within_0_1")
    def accuracy_bounded(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col("metric_name") != "accuracy") | pl.col("ci_high").is_null()
                                     | (pl.col("ci_high") <= 1.0))


__all__ = ["Summary"]
