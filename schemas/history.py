"""Schema of history.parquet: one row per run and cell of the runs under a root (rnnbench.history)."""

from __future__ import annotations

import pandera.polars as pap
import polars as pl

from schemas.summary import VERDICT_NAMES


class History(pap.DataFrameModel):
    """A cell's verdict at one run, what that run ran it on, and whether it changed since the run before."""

    run: str = pap.Field(str_length={"min_value": 1})  # the run's folder under ROOT: its date for a scheduled run
    problem: str
    seq_len: int = pap.Field(ge=2)
    arch: str
    metric_name: str = pap.Field(isin=["mse", "accuracy", "cross_entropy"])
    verdict: str = pap.Field(isin=VERDICT_NAMES)
    median: float = pap.Field(ge=0, nullable=True)
    n_seeds: int = pap.Field(ge=1)
    median_train_seconds: float = pap.Field(ge=0, nullable=True)
    device: str = pap.Field(nullable=True)
    kernel: str = pap.Field(nullable=True)
    torch_version: str = pap.Field(nullable=True)
    numerics: str = pap.Field(nullable=True)
    code_version: str
    previous_run: str = pap.Field(nullable=True)
    previous_verdict: str = pap.Field(nullable=True, isin=VERDICT_NAMES)
    changed: bool

    class Config:
        strict = True
        unique = ["run", "problem", "seq_len", "arch"]

    @pap.dataframe_check(name="changed_means_the_verdict_differs_from_the_run_before")
    def changed_consistent(cls, data) -> pl.LazyFrame:
        differs = pl.col("previous_verdict").is_not_null() & (pl.col("previous_verdict") != pl.col("verdict"))
        return data.lazyframe.select(pl.col("changed") == differs)

    @pap.dataframe_check(name="previous_run_sorts_before_run")
    def previous_before(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("previous_run").is_null() | (pl.col("previous_run") < pl.col("run")))


__all__ = ["History"]
