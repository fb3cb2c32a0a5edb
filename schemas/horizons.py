"""Schema of horizons.parquet: one row per (problem, arch, settings) with its memory-horizon bracket."""

from __future__ import annotations

import pandera.polars as pap
import polars as pl

from rnnbench.horizon import HORIZON_COLUMNS
from schemas.metrics import _OPTIONS, _option_field

# the settings columns, typed as in the metrics; lr is null where it differs between a cell's lengths (tuned)
SETTING_TYPES = {"min_len": int, "hidden_size": int, "num_layers": int, "bidirectional": bool, "dropout": float,
                 "bias": bool, "proj_size": int, "forget_bias": float, "recurrent_init": str, "lr": float,
                 "steps": int, "batch_size": int, "clip_norm": float}


class _Horizon(pap.DataFrameModel):
    """What every row holds besides its settings (rnnbench.horizon.horizon_rows)."""

    problem: str
    arch: str
    search: str = pap.Field(isin=["search", "grid"])  # how the lengths were chosen
    start: int = pap.Field(ge=2)
    cap: int = pap.Field(ge=2)
    resolution: int = pap.Field(ge=1, nullable=True)  # null for a grid
    horizon_low: int = pap.Field(ge=2, nullable=True)  # longest T solved with every shorter T solved; null: none
    horizon_high: int = pap.Field(ge=2, nullable=True)  # shortest unsolved T above it; null: none (beyond_cap)
    beyond_cap: bool
    lengths_tried: pl.List(pl.Int64)
    solved_lengths: pl.List(pl.Int64)
    non_monotone: bool  # a solved T above an unsolved one: flagged, never counted
    jobs: int = pap.Field(ge=0)
    seconds: float = pap.Field(ge=0)
    params: int = pap.Field(ge=1, nullable=True)
    state_size: int = pap.Field(ge=1, nullable=True)
    seconds_per_update: float = pap.Field(ge=0, nullable=True)

    class Config:
        strict = True

    @pap.dataframe_check(name="low_below_high")
    def low_below_high(cls, data) -> pl.LazyFrame:
        low, high = pl.col("horizon_low"), pl.col("horizon_high")
        return data.lazyframe.select(low.is_null() | high.is_null() | (low < high))

    @pap.dataframe_check(name="beyond_cap_has_no_high")
    def beyond_cap_has_no_high(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(~pl.col("beyond_cap") | (pl.col("horizon_high").is_null()
                                                              & (pl.col("horizon_low") >= pl.col("cap"))))

    @pap.dataframe_check(name="bracket_lengths_were_tried")
    def bracket_tried(cls, data) -> pl.LazyFrame:
        tried = pl.col("lengths_tried")
        return data.lazyframe.select(
            (pl.col("horizon_low").is_null() | tried.list.contains(pl.col("horizon_low")))
            & (pl.col("horizon_high").is_null() | tried.list.contains(pl.col("horizon_high"))))

    @pap.dataframe_check(name="within_the_cap")
    def within_cap(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col("start") <= pl.col("cap"))
                                     & (pl.col("lengths_tried").list.max() <= pl.col("cap")))


def _setting_field(name: str) -> pap.Field:
    bounds = {"min_len": {"ge": 0}, "hidden_size": {"ge": 1}, "num_layers": {"ge": 1}, "proj_size": {"ge": 0},
              "lr": {"gt": 0}, "steps": {"ge": 1}, "batch_size": {"ge": 1}, "dropout": {"ge": 0, "lt": 1},
              "clip_norm": {"gt": 0}}
    # null where the setting differs between the lengths of one (problem, arch) (a rate tuned per length)
    return pap.Field(nullable=True, **bounds.get(name, {}))


Horizons = type("Horizons", (_Horizon,), {
    "__module__": __name__,
    "__doc__": "One row per (problem, arch, settings): the bracket [horizon_low, horizon_high] of its memory "
               "horizon (docs/PROBLEMS.md), the lengths tried, jobs and seconds spent, and what it costs (params, "
               "state size, seconds per update). Written by the compare flow, read by the report.",
    "__annotations__": {**{name: kind for name, kind in SETTING_TYPES.items()},
                        **{column: option.type for column, option in _OPTIONS.items()}},
    **{name: _setting_field(name) for name in SETTING_TYPES},
    **{column: _option_field(option) for column, option in _OPTIONS.items()},
})


def horizons_frame(rows: list[dict]) -> pl.DataFrame:
    """Rows of rnnbench.horizon.horizon_rows as a frame with every column typed (an all-null column too)."""
    options = {column: {bool: pl.Boolean, int: pl.Int64, float: pl.Float64, str: pl.String}[option.type]
               for column, option in _OPTIONS.items()}
    settings = {name: {bool: pl.Boolean, int: pl.Int64, float: pl.Float64, str: pl.String}[kind]
                for name, kind in SETTING_TYPES.items()}
    schema = {"problem": pl.String, "arch": pl.String, **settings, **options, **HORIZON_COLUMNS}
    return pl.DataFrame([{k: row.get(k) for k in schema} for row in rows], schema=schema, strict=False)


__all__ = ["Horizons", "SETTING_TYPES", "horizons_frame"]
