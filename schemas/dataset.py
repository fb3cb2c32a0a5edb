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
            out.append(Failure("<metadata>", "format_version", None,
                               detail=f"file has format {meta['format_version']}, this code reads format "
                                      f"{datasets.FORMAT_VERSION}: regenerate it (rerun with --regenerate)"))
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


# the sequence columns: their type, width and nulls are checked on the Arrow type (datasets.sequences) and their
# values on numpy views, a chunk of rows at a time; the frame pandera validates leaves them out, since converting
# a large file's lists to polars would copy it whole (and pandera cannot report a binary failure case)
SEQUENCE_COLUMNS = ("x", "y")


def _per_row(values: np.ndarray, test) -> np.ndarray:
    """test(rows) -> bool per value, reduced to one bool per row, over chunks of CHECK_CHUNK_BYTES."""
    n = len(values)
    step = max(1, CHECK_CHUNK_BYTES // max(1, values[0].nbytes if n else 1))
    return np.concatenate([test(values[i:i + step]).all(axis=1) for i in range(0, max(n, 1), step)])
# the problems' semantic checks read float32 arrays: expanded this many bytes of rows at a time, so validating a
# large file of token ids never holds its one-hot floats whole
CHECK_CHUNK_BYTES = 128 * 2**20


def semantic_checks(problem: Problem, x: np.ndarray, y: np.ndarray, lengths: np.ndarray | None) -> dict:
    """problem.semantic_checks of stored arrays (the file's encodings), decoded a chunk of rows at a time; each
    check's per-row results joined."""
    codecs = problem.codecs()
    n = len(x)
    step = max(1, CHECK_CHUNK_BYTES // max(1, 4 * x.shape[1] * problem.input_size))
    parts: dict[str, tuple[str, list[np.ndarray]]] = {}
    for start in range(0, max(n, 1), step):
        rows = slice(start, start + step)
        checks = problem.semantic_checks(codecs["x"].decode(x[rows]), codecs["y"].decode(y[rows]),
                                         None if lengths is None else lengths[rows])
        for name, (column, ok) in checks.items():
            parts.setdefault(name, (column, []))[1].append(np.asarray(ok))
    return {name: (column, np.concatenate(oks)) for name, (column, oks) in parts.items()}


def dataset_schema(problem: Problem, seq_len: int, x: np.ndarray, y: np.ndarray,
                   counts: dict[tuple[str, str], int], lengths: np.ndarray | None = None,
                   min_len: int = 0) -> pap.DataFrameSchema:
    """Schema for one file, whose x and y are the stored arrays (the problem's encodings, Problem.storage). Checks
    run on numpy views of the Arrow buffers (pandas-style element-wise checks on list cells are ~100x slower);
    each records its failed-row count in `counts`."""
    n = len(x)
    codecs = problem.codecs()
    flat = {"x": x.reshape(n, -1), "y": y.reshape(n, -1)}
    ranges = {"x": problem.x_range, "y": problem.y_range}
    semantic = semantic_checks(problem, x, y, lengths)

    def row_check(column: str, name: str, ok: np.ndarray) -> pap.Check:
        def _check(data):
            counts[(column, name)] = int(n - np.count_nonzero(ok))
            return pl.LazyFrame({"ok": ok})
        # "column.check": dataframe-level checks carry no column in pandera's report, so the name does
        return pap.Check(_check, name=f"{column}.{name}")

    def column_checks(col: str) -> list[pap.Check]:
        if codecs[col].encoding != "float32":
            # token ids or integer values: one out of range would decode to a wrong (or failing) one-hot row
            low, high = codecs[col].id_range
            ok = _per_row(flat[col], lambda v: (v >= low) & (v <= high))
            return [row_check(col, f"id_in_range_{low}_to_{high}", ok)]
        lo, hi = ranges[col]
        with np.errstate(invalid="ignore"):
            finite = _per_row(flat[col], np.isfinite)
            in_range = _per_row(flat[col], lambda v: (v >= lo) & (v <= hi))
        return [row_check(col, "finite", finite), row_check(col, f"in_range_{lo:g}_to_{hi:g}", in_range)]

    columns = {"id": pap.Column(pl.Int64, unique=True, nullable=False)}
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
    early = ("required_keys", "known_problem", "problem_options", "parseable", "shapes", "format_version")
    if any(f.check in early for f in failures):
        raise ValidationError(source, failures)
    problem = file_problem(meta)
    seq_len = int(meta["seq_len"])
    arrays = {}
    codecs = problem.codecs()
    shapes = {"x": (problem.input_steps(seq_len), codecs["x"].stored_width),
              "y": (problem.target_steps(seq_len), codecs["y"].stored_width)}
    for column, shape in shapes.items():
        try:
            arrays[column] = datasets.sequences(table.column(column), shape, codecs[column].dtype)
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
        schema.validate(pl.from_arrow(table.drop_columns(list(SEQUENCE_COLUMNS))), lazy=True)
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
