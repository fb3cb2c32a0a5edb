"""Schema of reproduction.parquet: one row per reproduction card with what the sweep found and the result."""

from __future__ import annotations

import pandera.polars as pap
import polars as pl

from rnnbench.reproduction import RESULTS

TIERS = ["cpu", "gpu"]


class Reproduction(pap.DataFrameModel):
    """Written by tasks/report.py from rnnbench.reproduction.reproduction_frame; the report's reproduction section."""

    card_id: str = pap.Field(unique=True)
    problem: str
    seq_len: int = pap.Field(ge=1)
    arch: str
    tier: str = pap.Field(isin=TIERS)
    source: str
    where: str
    url: str = pap.Field(str_startswith="http")
    claim: str
    source_n: str  # the source's own n in words: "1 curve", "3 seeds", "best of 10 seeds x 3 rates"
    n: int = pap.Field(ge=1, nullable=True)  # the same as a number where the source gives one
    tolerance: float = pap.Field(gt=0, nullable=True)  # null for a claim without a number (stays at baseline, ...)
    differences: str
    verified: str
    found: str
    result: str = pap.Field(isin=list(RESULTS))

    class Config:
        strict = True

    @pap.dataframe_check(name="not_run_found_nothing")
    def not_run_says_why(cls, data) -> pl.LazyFrame:
        # a card that was not run says so (or that its runs failed): never a verdict under "not run"
        return data.lazyframe.select((pl.col("result") != "not run")
                                     | pl.col("found").str.contains("not run|failed|no run"))


__all__ = ["Reproduction"]
