"""Schemas of the comparison's outputs: one metrics row per job, and learning-curve points (pandera.polars)."""

from __future__ import annotations

import pandera.polars as pap
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from rnnbench import storage
from rnnbench.archs import ARCHS
from rnnbench.archs.options import option_columns
from rnnbench.archs.spec import ArchOption
from rnnbench.kernels import KERNELS
from rnnbench.problems import PROBLEMS
from rnnbench.problems.options import problem_option_columns
from rnnbench.verdicts import OUTCOMES
from schemas.errors import Failure, ValidationError

STATUSES = ("ok", "diverged", "failed")


class RunKey(pap.DataFrameModel):
    """What identifies a job: shared by metrics and curves."""

    run_id: str = pap.Field(nullable=False)


class _Settings(pap.DataFrameModel):
    """The settings every run has (CellKey adds each arch's own options)."""

    problem: str  # registered names, checked at validation time: plugins may add some (rnnbench/plugins.py)
    arch: str
    seq_len: int = pap.Field(ge=2)
    min_len: int = pap.Field(ge=0)
    hidden_size: int = pap.Field(ge=1)
    num_layers: int = pap.Field(ge=1)
    bidirectional: bool
    dropout: float = pap.Field(ge=0, lt=1)
    bias: bool
    proj_size: int = pap.Field(ge=0)
    forget_bias: float = pap.Field(nullable=True)
    recurrent_init: str = pap.Field(isin=["default", "orthogonal", "identity"])
    lr: float = pap.Field(gt=0)
    steps: int = pap.Field(ge=1)
    batch_size: int = pap.Field(ge=1)
    clip_norm: float = pap.Field(gt=0)  # gradient-norm clipping: runs that clip differently are different cells


def _option_field(option: ArchOption) -> pap.Field:
    """An arch option's column: its declared range (or choices), null on the other archs' rows."""
    checks: dict = {"isin": list(option.choices)} if option.choices else {}
    if option.low is not None:
        checks["gt" if option.low_open else "ge"] = option.low
    if option.high is not None:
        checks["lt" if option.high_open else "le"] = option.high
    return pap.Field(nullable=True, **checks)


# each arch's own options as its run built with them (--arch-option): one opt_<arch>_<name> column per option that
# the registry declares, plugins' included (rnnbench/archs/__init__.py has the defaults and their sources), so an
# arch brings its columns with it
_OPTIONS = {column: option for column, (_, option) in option_columns().items()}
# each problem's own settings likewise (--problem-option): opt_<problem>_<key>, e.g. opt_group_word_group
_OPTIONS.update({column: option for column, (_, option) in problem_option_columns().items()})
CellKey = type("CellKey", (_Settings,), {
    "__module__": __name__,
    "__doc__": "What makes a cell (rnnbench.verdicts.CELL): problem, length, arch and every setting that can be "
               "swept, each arch's own options and each problem's own settings included. Shared by the metrics "
               "(one row per run) and the summary (one row per cell).",
    "__annotations__": {column: option.type for column, option in _OPTIONS.items()},
    **{column: _option_field(option) for column, option in _OPTIONS.items()},
})


class Metrics(RunKey, CellKey):
    """One row per job (long format: the metric's name is a column, every table and plot derives from it)."""

    eval_len: int = pap.Field(ge=1)  # the length scored: seq_len in distribution, others with --eval-lens
    # the test set scored: "test", the run's own; else a held-out split of the problem at other settings at the
    # same length (rnnbench.problems.base.Problem.held_out: flip_flop's "sparse" and "dense")
    test_split: str = pap.Field(str_length={"min_value": 1})
    seed: int = pap.Field(ge=0)
    # tune: a run of a --lrs sweep's tuning stage (it only chose a rate; nothing reported reads it); report: the
    # rest (null: a row from before roles, reported)
    role: str = pap.Field(nullable=True, isin=["tune", "report"])
    steps_done: int = pap.Field(ge=0)
    n_train: int = pap.Field(ge=1)
    n_val: int = pap.Field(ge=1)
    n_test: int = pap.Field(ge=1)
    early_stop: bool
    epochs: float = pap.Field(ge=0, nullable=True)
    params: int = pap.Field(ge=1, nullable=True)
    state_size: int = pap.Field(ge=1, nullable=True)
    metric_name: str = pap.Field(isin=["mse", "accuracy", "cross_entropy"])
    higher_is_better: bool
    test_metric: float = pap.Field(ge=0, nullable=True)  # the best-on-validation checkpoint's
    test_se: float = pap.Field(ge=0, nullable=True)  # its standard error over the test sequences
    baseline_se: float = pap.Field(ge=0, nullable=True)  # a memoryless predictor's, on the same test sequences
    # the paired beats-baseline test (rnnbench.verdicts.run_outcome): that predictor's metric on the same test
    # sequences, and the standard error of the mean per-sequence difference (run minus memoryless)
    memoryless_metric: float = pap.Field(ge=0, nullable=True)
    diff_se: float = pap.Field(ge=0, nullable=True)
    test_metric_last: float = pap.Field(ge=0, nullable=True)  # the last checkpoint's
    val_metric_best: float = pap.Field(ge=0, nullable=True)
    val_se_best: float = pap.Field(ge=0, nullable=True)  # that checkpoint's standard error over validation
    # early stopping (rnnbench.train.stop_margin): whether validation met the rule by `stop_margin` of its
    # standard errors (at two evaluations in a row) and ended the run before `steps`
    stopped_early: bool = pap.Field(nullable=True)
    stop_margin: float = pap.Field(ge=0, nullable=True)
    best_step: int = pap.Field(ge=1, nullable=True)
    steps_to_solve: int = pap.Field(ge=1, nullable=True)  # first update at which validation met the solved rule
    baseline: float = pap.Field(gt=0)
    score: float = pap.Field(nullable=True)
    solved: bool
    solved_rule: str
    within_tolerance: float = pap.Field(ge=0, le=1, nullable=True)
    final_train_loss: float = pap.Field(nullable=True)
    status: str = pap.Field(isin=list(STATUSES))
    outcome: str = pap.Field(isin=list(OUTCOMES))
    error: str = pap.Field(nullable=True)
    train_seconds: float = pap.Field(ge=0, nullable=True)
    steps_per_second: float = pap.Field(gt=0, nullable=True)
    device: str = pap.Field(nullable=True)
    # the implementation of the recurrence that ran (rnnbench.kernels): results can differ by kernel
    kernel: str = pap.Field(nullable=True, isin=list(KERNELS))
    # TF32 and determinism settings the run trained under (rnnbench.numerics; null: a row from before they were
    # recorded, or a job that never trained)
    numerics: str = pap.Field(nullable=True)
    node: str
    ray_node_id: str = pap.Field(nullable=True)
    torch_version: str
    python_version: str

    class Config:
        strict = True
        unique = ["run_id", "eval_len", "test_split"]

    @pap.dataframe_check(name="ok_rows_have_a_finite_metric")
    def ok_rows_scored(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("status") != "ok") | (pl.col("test_metric").is_not_null() & pl.col("test_metric").is_finite())
        )

    @pap.dataframe_check(name="registered_problem")
    def known_problem(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("problem").is_in(list(PROBLEMS)))

    @pap.dataframe_check(name="registered_arch")
    def known_arch(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("arch").is_in(list(ARCHS)))

    @pap.dataframe_check(name="outcome_matches_status")
    def outcome_consistent(cls, data) -> pl.LazyFrame:
        status, outcome = pl.col("status"), pl.col("outcome")
        return data.lazyframe.select(
            pl.when(status == "failed").then(outcome == "failed")
            .when(status == "diverged").then(outcome == "diverged")
            .otherwise(~outcome.is_in(["failed", "diverged"]) & ((outcome == "solved") == pl.col("solved")))
        )

    @pap.dataframe_check(name="steps_done_le_steps")
    def steps_bound(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("steps_done") <= pl.col("steps"))


class Curves(RunKey):
    """Learning-curve points: train loss over the last window of updates, and the metric on the validation split."""

    step: int = pap.Field(ge=1)
    train_loss: float
    val_metric: float = pap.Field(ge=0, nullable=True)  # NaN-free: a non-finite point is stored as null

    class Config:
        strict = True
        unique = ["run_id", "step"]


def validated(frame: pl.DataFrame, model: type[pap.DataFrameModel], source: str) -> pl.DataFrame:
    """The frame, checked against `model`; a ValidationError names the source, columns, checks and row counts."""
    return _validate(frame, model, source)


def _validate(frame: pl.DataFrame, model: type[pap.DataFrameModel], source: str) -> pl.DataFrame:
    try:
        return model.validate(frame, lazy=True)
    except SchemaErrors as err:
        cases = err.failure_cases
        failures = [
            Failure(column or "<table>", check, int(count), len(frame))
            for column, check, count in cases.group_by("column", "check", maintain_order=True)
            .len().iter_rows()
        ]
        raise ValidationError(source, failures) from None
    except SchemaError as err:
        raise ValidationError(source, [Failure("<table>", "schema", None, detail=str(err))]) from None


def metrics_frame(rows: list[dict]) -> pl.DataFrame:
    """Rows -> a frame with the schema's column types even when a column is all null."""
    dtypes = {name: col.dtype.type for name, col in Metrics.to_schema().columns.items()}
    return pl.DataFrame(rows, schema=dtypes, strict=False)


def curves_frame(rows: list[dict]) -> pl.DataFrame:
    dtypes = {name: col.dtype.type for name, col in Curves.to_schema().columns.items()}
    return pl.DataFrame(rows, schema=dtypes, strict=False)


def write_validated(frame: pl.DataFrame, model: type[pap.DataFrameModel], location: str) -> str:
    """Validate, then write atomically (temporary name + rename)."""
    _validate(frame, model, f"{location} (before write)")

    def _write(fs, tmp):
        with fs.open_output_stream(tmp) as out:
            frame.write_parquet(out)

    return storage.atomic_write(location, _write)


def read_validated(location: str, model: type[pap.DataFrameModel]) -> pl.DataFrame:
    fs, path = storage.resolve(location)
    try:
        with fs.open_input_file(path) as src:
            frame = pl.read_parquet(src)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ValidationError(location, [Failure("<file>", "readable_parquet", None, detail=str(exc))]) from None
    return _validate(frame, model, location)


__all__ = ["Curves", "Metrics", "curves_frame", "metrics_frame", "read_validated", "validated", "write_validated"]
