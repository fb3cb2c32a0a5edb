"""Schema of comparisons.parquet: one row per pair of archs within a (problem, seq_len), with its seed-level test."""

from __future__ import annotations

import typing

import pandera.polars as pap
import polars as pl

from rnnbench.verdicts import ALPHA, ORDERS, SETTINGS
from schemas.metrics import CellKey

# each side's cell settings (lr_a, lr_b, ...): typed and checked as the metrics' own column; arch options keep one
# column each (an option belongs to one arch, so one of the two sides holds it), nullable as in the metrics
_HINTS = typing.get_type_hints(CellKey)
_CELL = CellKey.to_schema().columns
_OPTIONS = [name for name in _CELL if name.startswith("opt_")]


def _side_field(name: str) -> pap.Field:
    column = _CELL[name]
    checks = {}
    for check in column.checks:  # the metrics' range checks, re-stated (ge, gt, le, lt, isin)
        stats = check.statistics
        if check.name in ("greater_than_or_equal_to", "greater_than", "less_than_or_equal_to", "less_than"):
            key = {"greater_than_or_equal_to": "ge", "greater_than": "gt", "less_than_or_equal_to": "le",
                   "less_than": "lt"}[check.name]
            checks[key] = next(iter(stats.values()))
        elif check.name == "isin":
            checks["isin"] = list(stats["allowed_values"])
    return pap.Field(nullable=column.nullable, **checks)


_SIDES = {f"{name}_{side}": name for name in SETTINGS for side in ("a", "b")}
PairKey = type("PairKey", (pap.DataFrameModel,), {
    "__module__": __name__,
    "__doc__": "What a pair is about: problem, length, the settings of each arch's chosen cell, the archs' options.",
    "__annotations__": {"problem": str, "seq_len": int, **{c: _HINTS[n] for c, n in _SIDES.items()},
                        **{c: _HINTS[c] for c in _OPTIONS}},
    "problem": pap.Field(), "seq_len": pap.Field(ge=2),
    **{c: _side_field(n) for c, n in _SIDES.items()},
    **{c: _side_field(c) for c in _OPTIONS},
})


class Comparisons(PairKey):
    """Derived from metrics.parquet by rnnbench.verdicts.compare_archs; the report's ranking sentences and pair
    tables read it. The order is claimed only where the Holm-adjusted p-value is at most ALPHA."""

    arch_a: str
    arch_b: str
    n_shared: int = pap.Field(ge=0)  # seeds both archs ran without an infrastructure failure
    a_better: int = pap.Field(ge=0)  # of those, seeds on which arch_a's run had the better test metric (a fact)
    b_better: int = pap.Field(ge=0)
    # the share of (arch_a run, arch_b run) pairs over those seeds in which arch_a's is the better (ties: 1/2)
    a_over_b: float = pap.Field(ge=0, le=1)
    p_value: float = pap.Field(gt=0, le=1)  # exact two-sided rank test (Wilcoxon-Mann-Whitney, by permutation)
    p_holm: float = pap.Field(gt=0, le=1)  # Holm's adjustment over every pair of its (problem, seq_len)
    order: str = pap.Field(isin=list(ORDERS))  # arch_a relative to arch_b

    class Config:
        strict = True
        unique = ["problem", "seq_len", "arch_a", "arch_b"]

    @pap.dataframe_check(name="archs_in_name_order")
    def archs_ordered(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("arch_a") < pl.col("arch_b"))

    @pap.dataframe_check(name="better_counts_within_shared_seeds")
    def counts_bounded(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("a_better") + pl.col("b_better") <= pl.col("n_shared"))

    @pap.dataframe_check(name="holm_never_below_raw_p")
    def holm_bound(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("p_holm") >= pl.col("p_value") - 1e-15)

    @pap.dataframe_check(name="order_only_where_the_test_rejects")
    def order_consistent(cls, data) -> pl.LazyFrame:
        rejects = pl.col("p_holm") <= ALPHA
        order, share = pl.col("order"), pl.col("a_over_b")
        return data.lazyframe.select(
            pl.when(order == "above").then(rejects & (share > 0.5))
            .when(order == "below").then(rejects & (share < 0.5))
            .otherwise(~rejects | (share == 0.5))
        )


__all__ = ["Comparisons", "PairKey"]
