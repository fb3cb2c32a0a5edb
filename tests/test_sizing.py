"""Enough distinct training data: every preset's runs read at most 10 epochs, within the file and disk budgets."""

from __future__ import annotations

import polars as pl
import pytest

from rnnbench import report, sizing
from rnnbench.config import FULL_LENGTHS, PRESETS, _defined_at, from_preset
from rnnbench.problems import PROBLEMS
from tests.test_report import CONFIG, ENVIRONMENT, sweep_frames


def _file_bytes(spec) -> int:
    return spec.n_rows * sizing.row_bytes(spec.problem, spec.seq_len, spec.variable, dict(spec.options))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_run_of_every_preset_reads_at_most_ten_epochs(name):
    config = from_preset(name)
    over = [(r.problem, r.seq_len, r.arch, sizing.epochs(r.steps, r.batch_size, r.n_train)) for r in config.runs()
            if sizing.epochs(r.steps, r.batch_size, r.n_train) > sizing.MAX_EPOCHS]
    assert not over, over[:5]
    datasets = config.datasets()
    assert max(_file_bytes(d) for d in datasets if d.split == "train") <= sizing.TRAIN_FILE_BYTES
    assert sum(_file_bytes(d) for d in datasets) <= sizing.SWEEP_DATA_BYTES


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_presets_budgets_give_ten_epochs_at_every_length_up_to_1000(name):
    """Whatever lengths a grid names (a horizon search picks its own): every registered problem at every length of
    50..1000 it is defined at, with each grid's updates and batch size of this preset."""
    config = from_preset(name)
    budgets = {(g.steps, g.batch_size or config.batch_size) for g in config.grids}
    for steps, batch in budgets:
        for problem in PROBLEMS:
            for seq_len in [t for t in FULL_LENGTHS if _defined_at(problem, t)]:
                n = sizing.auto_n_train(problem, seq_len, steps, batch)
                assert sizing.epochs(steps, batch, n) <= sizing.MAX_EPOCHS, (problem, seq_len, steps, batch, n)
                assert n * sizing.row_bytes(problem, seq_len) <= sizing.TRAIN_FILE_BYTES


def test_a_forced_small_training_set_is_allowed_and_its_epochs_recorded():
    config = from_preset("smoke", n_train=64)
    run = config.runs()[0]
    assert sizing.epochs(run.steps, run.batch_size, run.n_train) == run.steps * run.batch_size / 64 > 10
    assert sizing.data_limited(50.0) and not sizing.data_limited(10.0) and not sizing.data_limited(None)


def test_the_report_marks_a_cell_whose_runs_read_more_than_ten_epochs():
    metrics, curves = sweep_frames(lengths={"adding": [10, 50]}, failures=False)
    limited = (pl.col("seq_len") == 50) & (pl.col("arch") == "gru")
    metrics = metrics.with_columns(pl.when(limited).then(40.0).otherwise(pl.col("epochs")).alias("epochs"))
    text = report.build(metrics, curves, CONFIG, ENVIRONMENT).markdown()
    assert f"| 50 {report.DATA_LIMITED} | gru" in text
    assert f"| 10 {report.DATA_LIMITED}" not in text and f"| 50 {report.DATA_LIMITED} | lstm" not in text
    assert "data-limited: its runs read their training set more than 10 times" in text
    plain = report.build(*sweep_frames(lengths={"adding": [10, 50]}, failures=False), CONFIG, ENVIRONMENT).markdown()
    assert "data-limited" not in plain
