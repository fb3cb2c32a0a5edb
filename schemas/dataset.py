"""Dataset schema (pandera.polars): structure, value ranges and each problem's meaning, checked vectorised."""

from __future__ import annotations

import numpy as np
import pandera.polars as pap
import polars as pl
import pyarrow as pa
from pandera.errors import SchemaErrors

from rnnbench import datasets
from rnnbench.problems import PROBLEMS, Problem
from schemas.errors import Failure, ValidationError


def _meta_failures(meta: dict[str, str], n_rows: int, expected: datasets.DatasetSpec | None) -> list[Failure]:
    missing = [k for k in datasets.META_KEYS if k not in meta]
    if missing:
        return [Failure("<metadata>", "required_keys", None, detail=f"missing {', '.join(missing)}")]
    out: list[Failure] = []
    if meta["problem"] not in PROBLEMS:
        out.append(Failure("<metadata>", "known_problem", None, detail=f"unknown problem {meta['problem']!r}"))
        return out
    try:
        problem = file_problem(meta)
    except ValueError as exc:
        return [Failure("<metadata>", "problem_options", None, detail=str(exc))]
    try:
        seq_len, n_meta = int(meta["seq_len"]), int(meta["n_rows"])
        if int(meta["generator_version"]) != problem.generator_version:
            out.append(Failure("<metadata>", "generator_version", None,
                               detail=f"file has {meta['generator_version']}, code has {problem.generator_version}"))
        if int(meta["format_version"]) != datasets.FORMAT_VERSION:
            out.append(Failure("<metadata>", "format_version", None, detail=f"file has {meta['format_version']}"))
    except ValueError as exc:
        return [Failure("<metadata>", "parseable", None, detail=str(exc))]
    if n_meta != n_rows:
        out.append(Failure("<metadata>", "row_count", None, detail=f"metadata says {n_meta}, file has {n_rows}"))
    if expected is not None:
        for key in ("problem", "seq_len", "split", "seed", "n_rows", "min_len"):
            want = str(getattr(expected, key))
            if meta[key] != want:
                out.append(Failure("<metadata>", f"matches_spec_{key}", None,
                                   detail=f"file has {meta[key]!r}, expected {want!r}"))
        if meta.get("problem_options", "") != expected.options_text:
            out.append(Failure("<metadata>", "matches_spec_problem_options", None,
                               detail=f"file has {meta.get('problem_options', '')!r}, expected "
                                      f"{expected.options_text!r}"))
    if meta["x_shape"] != f"{problem.input_steps(seq_len)},{problem.input_size}" or meta["y_shape"] != (
        f"{problem.target_steps(seq_len)},{problem.target_width}"
    ):
        out.append(Failure("<metadata>", "shapes", None, detail=f"x {meta['x_shape']}, y {meta['y_shape']}"))
    return out


def file_problem(meta: dict[str, str]) -> Problem:
    """The problem a file's metadata names, with the settings it was generated with (`problem_options`, e.g.
    'group=a5'; absent for a problem without any); ValueError naming a setting the problem does not take."""
    text = meta.get("problem_options", "")
    given = dict(part.split("=", 1) for part in text.split(",")) if text else {}
    problem = PROBLEMS[meta["problem"]].configured(given)
    if text and datasets.options_text(problem.option_values().items()) != text:
        raise ValueError(f"problem_options {text!r} is not how rnnbench writes these settings")
    return problem


def dataset_schema(problem: Problem, seq_len: int, x: np.ndarray, y: np.ndarray,
                   counts: dict[tuple[str, str], int], lengths: np.ndarray | None = None,
                   min_len: int = 0) -> pap.DataFrameSchema:
    """Schema for one file. Checks run on numpy views of the Arrow buffers (pandas-style element-wise
    checks on list cells are ~100x slower); each records its failed-row count in `counts`."""
    n = len(x)
    flat = {"x": x.reshape(n, -1), "y": y.reshape(n, -1)}
    ranges = {"x": problem.x_range, "y": problem.y_range}
    semantic = problem.semantic_checks(x, y, lengths)

    def row_check(column: str, name: str, ok: np.ndarray) -> pap.Check:
        def _check(data):
            counts[(column, name)] = int(n - np.count_nonzero(ok))
            return pl.LazyFrame({"ok": ok})
        # "column.check": dataframe-level checks carry no column in pandera's report, so the name does
        return pap.Check(_check, name=f"{column}.{name}")

    def column_checks(col: str) -> list[pap.Check]:
        lo, hi = ranges[col]
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(flat[col]).all(axis=1)
            in_range = ((flat[col] >= lo) & (flat[col] <= hi)).all(axis=1)
        return [row_check(col, "finite", finite), row_check(col, f"in_range_{lo:g}_to_{hi:g}", in_range)]

    steps_y = problem.target_steps(seq_len)
    columns = {
        "id": pap.Column(pl.Int64, unique=True, nullable=False),
        "x": pap.Column(pl.Array(pl.Float32, problem.input_steps(seq_len) * problem.input_size), nullable=False),
        "y": pap.Column(pl.Array(pl.Float32, steps_y * problem.target_width), nullable=False),
    }
    if min_len:
        # variable-length file: each row's true length, and the padding beyond it, are checked
        columns["length"] = pap.Column(pl.Int32, pap.Check.in_range(min_len, seq_len), nullable=False)
    return pap.DataFrameSchema(
        columns,
        checks=column_checks("x") + column_checks("y")
        + [row_check(col, name, ok) for name, (col, ok) in semantic.items()],
        strict=True,
        name=f"{problem.name}_T{seq_len}",
    )


def validate_table(table: pa.Table, source: str, expected: datasets.DatasetSpec | None = None) -> dict[str, str]:
    """Validate a dataset table (lazy: every failure collected). Returns its metadata; raises ValidationError."""
    meta = datasets.table_meta(table)
    n = table.num_rows
    failures = _meta_failures(meta, n, expected)
    if any(f.check in ("required_keys", "known_problem", "problem_options", "parseable", "shapes") for f in failures):
        raise ValidationError(source, failures)
    problem = file_problem(meta)
    seq_len = int(meta["seq_len"])
    arrays = {}
    shapes = {"x": (problem.input_steps(seq_len), problem.input_size),
              "y": (problem.target_steps(seq_len), problem.target_width)}
    for column, shape in shapes.items():
        try:
            arrays[column] = datasets.sequences(table.column(column), shape)
        except (KeyError, ValueError, pa.ArrowException) as exc:
            failures.append(Failure(column, "sequence_layout", None, detail=f"{type(exc).__name__}: {exc}"))
    if len(arrays) < 2:
        raise ValidationError(source, failures)
    x, y = arrays["x"], arrays["y"]
    min_len = int(meta["min_len"])
    lengths = None
    if min_len:
        if "length" not in table.column_names:
            failures.append(Failure("length", "present_in_variable_length_file", None))
            raise ValidationError(source, failures)
        lengths = table.column("length").to_numpy()
        # out-of-range lengths are reported by the schema; clip so the semantic checks can still run
        lengths = np.clip(lengths, 1, seq_len)
    counts: dict[tuple[str, str], int] = {}
    schema = dataset_schema(problem, seq_len, x, y, counts, lengths, min_len)
    try:
        schema.validate(pl.from_arrow(table), lazy=True)
    except SchemaErrors as err:
        cases = err.failure_cases
        for column, check in cases.select("column", "check").unique(maintain_order=True).iter_rows():
            key = tuple(check.split(".", 1))
            if key in counts:
                failures.append(Failure(key[0], key[1], counts[key], n))
            else:
                rows = cases.filter((pl.col("column") == column) & (pl.col("check") == check))["index"]
                failed = rows.drop_nulls().n_unique()
                failures.append(Failure(column or "<table>", check, failed or None, n if failed else None))
    ids = table.column("id").to_numpy()
    raw_lengths = table.column("length").to_numpy() if min_len else None
    if not failures and meta["content_hash"] != datasets.content_hash(ids, x, y, raw_lengths):
        failures.append(Failure("<all>", "content_hash", None, detail="data differs from the hash in the metadata"))
    if failures:
        raise ValidationError(source, failures)
    return meta
