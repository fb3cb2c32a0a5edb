"""Stored job results read back through the metrics contract: a damaged one is named and its job re-run."""

from __future__ import annotations

import logging

import polars as pl

from rnnbench import results
from rnnbench.config import RunSpec
from rnnbench.rows import RunResult
from schemas.errors import ValidationError
from schemas.metrics import Curves, Metrics, curves_frame, metrics_frame, validated


def load_checked(out: str, spec: RunSpec, logger: logging.Logger | logging.LoggerAdapter) -> RunResult | None:
    """The stored result of `spec`, or None when there is none or it breaks the metrics or curves schema (a
    string where a number belongs, a missing column, an impossible value): such a file is named in the log and
    the job trains again, instead of failing the sweep's metrics at the end."""
    stored = results.load(out, spec)
    if stored is None:
        return None
    path = results.result_path(out, spec.run_id)
    try:
        for row in (stored.row, *stored.eval_rows):
            _check_types(row)
        validated(metrics_frame([stored.row, *stored.eval_rows]), Metrics, path)
        validated(curves_frame(stored.curve), Curves, path)
        if stored.row.get("run_id") != spec.run_id:
            raise ValueError(f"holds run {stored.row.get('run_id')!r}")
    except (ValidationError, ValueError, TypeError) as exc:  # polars raises TypeError/ValueError on bad types
        logger.warning("damaged stored result %s (%s); training %s again", path,
                       str(exc).replace("\n", " ")[:300], spec.run_id)
        return None
    return stored


def _check_types(row: dict) -> None:
    """Each value has its column's Python type (polars would quietly cast a string like '0.1' to a number)."""
    for name, column in Metrics.to_schema().columns.items():
        value, dtype = row.get(name), column.dtype.type
        if value is None:
            continue
        if dtype == pl.Boolean:
            ok = isinstance(value, bool)
        elif dtype.is_numeric():
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ValueError(f"column {name!r} holds {value!r}, not a {dtype}")
