"""Early stopping waits until validation beats the solved rule by a margin taken from its standard error."""

from __future__ import annotations

import math

import pytest

import rnnbench.train as train
from rnnbench.config import ProblemGrid, from_preset
from rnnbench.problems import get_problem
from rnnbench.train import stop_margin, train_and_evaluate
from tasks import dataset_store


def test_the_margin_moves_the_metric_against_the_rule_by_its_standard_errors():
    adding = get_problem("adding")  # MSE <= 0.01, lower is better
    assert adding.solved_from({"mse": 0.0099, "se": 0.001}, 50)
    assert not adding.solved_by_margin({"mse": 0.0099, "se": 0.001}, 50, 1.645)
    assert adding.solved_by_margin({"mse": 0.0080, "se": 0.001}, 50, 1.645)
    xor = get_problem("sequential_xor")  # accuracy >= 0.99, higher is better
    assert not xor.solved_by_margin({"accuracy": 0.992, "se": 0.002}, 10, 1.645)
    assert xor.solved_by_margin({"accuracy": 1.0, "se": 0.0}, 10, 1.645)
    # no standard error (one validation sequence): no margin can be shown, so no early stop
    assert not xor.solved_by_margin({"accuracy": 1.0, "se": math.nan}, 10, 1.645)


def test_copy_sequence_takes_the_margin_on_the_recall_accuracy_its_rule_reads():
    copy = get_problem("copy_sequence")
    scores = {"cross_entropy": 0.01, "se": 0.001, "recall_accuracy": 0.995, "recall_se": 0.004}
    assert copy.solved_from(scores, 10) and not copy.solved_by_margin(scores, 10, 1.645)
    assert copy.solved_by_margin({**scores, "recall_accuracy": 1.0, "recall_se": 0.0}, 10, 1.645)


def test_the_margin_covers_the_noise_of_both_splits():
    assert stop_margin(512, 512) == pytest.approx(1.645 * math.sqrt(2))
    assert stop_margin(500, 1000) == pytest.approx(1.645 * math.sqrt(1.5))
    assert stop_margin(512, 512, z=0) == 0


def _run(tmp_path):
    """gru on adding at T=10 (an MSE keeps a standard error above 0, where an accuracy can reach 1.0 exactly)."""
    root = str(tmp_path / "data")
    grid = ProblemGrid(problem="adding", seq_lens=[10], hidden_size=16, steps=600)
    config = from_preset("smoke", archs=["gru"], grids=[grid], data_root=root, eval_points=30)
    for dataset in config.datasets():
        dataset_store.build(dataset, root)
    (spec,) = config.runs()
    return spec, train_and_evaluate(spec, lambda d: dataset_store.load(d.path(root), expected=d)).row


def test_a_run_stops_on_the_margin_and_records_it(tmp_path):
    spec, row = _run(tmp_path)
    assert row["stopped_early"] and row["steps_done"] < spec.steps and row["outcome"] == "solved"
    assert row["stop_margin"] == pytest.approx(stop_margin(spec.n_val, spec.n_test))
    assert row["val_se_best"] is not None and row["val_se_best"] >= 0


def test_a_run_that_meets_the_rule_but_not_the_margin_trains_on(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "EARLY_STOP_Z", 1e6)  # a margin no MSE run can beat (its se stays above 0)
    spec, row = _run(tmp_path)
    assert row["steps_to_solve"] is not None  # validation met the rule itself, but never by the margin
    assert not row["stopped_early"] and row["steps_done"] == spec.steps
