"""Stored job results read back through the metrics contract: a damaged one is named and its job re-run."""

from __future__ import annotations

import logging

import polars as pl

from rnnbench import results
from rnnbench.config import RunSpec
from rnnbench.kernels import expected_kernel
from rnnbench.rows import RunResult
from schemas.errors import ValidationError
from schemas.metrics import Curves, Metrics, curves_frame, metrics_frame, validated


def load_checked(out: str, spec: RunSpec, logger: logging.Logger | logging.LoggerAdapter,
                 device_type: str | None = None, compiled: bool | None = None) -> RunResult | None:
    """The stored result of `spec`, or None when there is none or it breaks the metrics or curves schema (a
    string where a number belongs, a missing column, an impossible value): such a file is named in the log and
    the job trains again, instead of failing the sweep's metrics at the end.

    `device_type` ("cpu", "cuda"; None: not checked) and `compiled` (whether the C++ extension loads here; None:
    not known, taken as yes): a stored result whose `kernel` differs from the one a run of `spec` would use
    here (rnnbench.kernels.expected_kernel), or that trained on another type of device (rnnbench.results.load: CPU
    and GPU timings never mix), is not reused either: the log says which kernel, and it trains again."""
    stored = results.load(out, spec, device_type)
    if stored is None or not _same_kernel(spec, stored, device_type, compiled, logger):
        return None
    return _checked(out, spec, stored, logger)


def _same_kernel(spec: RunSpec, stored: RunResult, device_type: str | None, compiled: bool | None,
                 logger: logging.Logger | logging.LoggerAdapter) -> bool:
    """Whether `stored` ran on the kernel `spec` would run on here (always, where that is not known)."""
    if device_type is None:
        return True
    expected = expected_kernel(spec.arch, device_type, spec.model.proj_size, compiled)
    if expected is None or stored.row.get("kernel") == expected:
        return True
    # a result from another implementation can differ (numerics, and verdicts near the rule), so it is never
    # reused silently
    logger.info("stored result of %s ran on kernel %r, this sweep would run it on %r: training it again",
                spec.run_id, stored.row.get("kernel"), expected)
    return False


def load_checked_all(out: str, specs: list[RunSpec], logger: logging.Logger | logging.LoggerAdapter,
                     device_type: str | None = None) -> dict[str, RunResult]:
    """load_checked for many jobs: {run_id: stored result} of each that has a sound one (and, with `device_type`,
    one whose kernel is the one its run would use: load_checked).

    The same checks, in one schema validation of every result's rows rather than one per result (a pandera
    validation costs ~40 ms here however few its rows: 1.4 s of a smoke sweep's 9 results read one by one). A
    batch holds only if every result in it does; only when it does not is each result checked alone, to name
    and drop exactly the damaged ones, as load_checked does."""
    loaded = [(spec, stored) for spec in specs if (stored := results.load(out, spec, device_type)) is not None
              and _same_kernel(spec, stored, device_type, None, logger)]
    if not loaded:
        return {}
    try:
        for _, stored in loaded:
            _check_types(stored)
        validated(metrics_frame([row for _, stored in loaded for row in (stored.row, *stored.eval_rows)]),
                  Metrics, results.result_path(out, "*"))
        validated(curves_frame([point for _, stored in loaded for point in stored.curve]), Curves,
                  results.result_path(out, "*"))
        for spec, stored in loaded:
            _check_run_id(spec, stored)
    except (ValidationError, ValueError, TypeError):
        return {spec.run_id: stored for spec, stored in loaded
                if _checked(out, spec, stored, logger) is not None}
    return {spec.run_id: stored for spec, stored in loaded}


def _checked(out: str, spec: RunSpec, stored: RunResult,
             logger: logging.Logger | logging.LoggerAdapter) -> RunResult | None:
    path = results.result_path(out, spec.run_id)
    try:
        _check_types(stored)
        validated(metrics_frame([stored.row, *stored.eval_rows]), Metrics, path)
        validated(curves_frame(stored.curve), Curves, path)
        _check_run_id(spec, stored)
    except (ValidationError, ValueError, TypeError) as exc:  # polars raises TypeError/ValueError on bad types
        logger.warning("damaged stored result %s (%s); training %s again", path,
                       str(exc).replace("\n", " ")[:300], spec.run_id)
        return None
    return stored


def _check_run_id(spec: RunSpec, stored: RunResult) -> None:
    if stored.row.get("run_id") != spec.run_id:
        raise ValueError(f"holds run {stored.row.get('run_id')!r}")


def _check_types(stored: RunResult) -> None:
    """Each value has its column's Python type (polars would quietly cast a string like '0.1' to a number)."""
    columns = Metrics.to_schema().columns.items()
    for row in (stored.row, *stored.eval_rows):
        for name, column in columns:
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
