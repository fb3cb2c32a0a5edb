"""Training reads validation for every choice and the test split once at the end; early stop; divergence; data
that scales (distinct sequences capped, shuffled epochs)."""

from __future__ import annotations

import pytest

from rnnbench import sizing
from rnnbench.config import ProblemGrid, from_preset
from rnnbench.train import Batches, train_and_evaluate
from tasks import dataset_store

XOR = ProblemGrid(problem="sequential_xor", seq_lens=[10], hidden_size=16, steps=600)


def run(tmp_path, **overrides):
    """Train one job of a tiny config; returns (result, the order in which dataset splits were loaded)."""
    root = str(tmp_path / "data")
    overrides.setdefault("grids", [XOR])
    config = from_preset("smoke", archs=[overrides.pop("arch", "gru")], data_root=root, eval_points=30,
                         **overrides)
    for dataset in config.datasets():
        dataset_store.build(dataset, root)
    loads: list[str] = []

    def load(dataset):
        loads.append(dataset.split)
        return dataset_store.load(dataset.path(root), expected=dataset)

    (spec,) = config.runs()
    return spec, train_and_evaluate(spec, load), loads


def test_early_stop_ends_a_solved_run_before_its_budget_and_records_when(tmp_path):
    spec, result, _ = run(tmp_path)
    row = result.row
    assert row["outcome"] == "solved" and row["status"] == "ok"
    assert row["steps_to_solve"] is not None and row["steps_done"] < spec.steps
    # stopped at the second evaluation in a row that met the rule by its margin (here accuracy 1.0, se 0, at
    # the first crossing: the margin costs nothing), never before
    assert row["stopped_early"] and row["steps_done"] == row["steps_to_solve"] + spec.eval_every
    assert result.curve[-1]["step"] == row["steps_done"] and result.curve[-1]["val_metric"] >= 0.99


def test_without_early_stop_the_same_run_trains_to_the_end(tmp_path):
    spec, result, _ = run(tmp_path, early_stop=False)
    stopped = run(tmp_path / "again")[1].row
    row = result.row
    assert row["steps_done"] == spec.steps and row["steps_to_solve"] == stopped["steps_to_solve"]
    assert row["epochs"] == pytest.approx(spec.steps * spec.batch_size / spec.n_train)


def test_the_test_split_is_read_once_after_training_and_curves_read_validation(tmp_path):
    spec, result, loads = run(tmp_path, early_stop=False)
    assert loads == ["val", "train", "test"]  # test last, once: no curve point and no choice could see it
    assert all(set(point) == {"run_id", "step", "train_loss", "val_metric"} for point in result.curve)
    row = result.row
    best = max(result.curve, key=lambda p: (p["val_metric"], -p["step"]))
    assert row["best_step"] == best["step"] and row["val_metric_best"] == best["val_metric"]
    assert row["test_metric"] is not None and row["test_metric_last"] is not None and row["test_se"] >= 0


def test_a_huge_learning_rate_diverges_as_a_result_not_an_error(tmp_path):
    grid = ProblemGrid(problem="adding", seq_lens=[10], hidden_size=16, steps=40)
    spec, result, loads = run(tmp_path, grids=[grid], arch="rnn_relu", lr=1e6)
    row = result.row
    assert (row["status"], row["outcome"]) == ("diverged", "diverged")
    assert 1 <= row["steps_done"] < spec.steps and row["test_metric"] is None
    assert "test" not in loads


def test_runs_are_reproducible(tmp_path):
    first = run(tmp_path / "a", early_stop=False)[1]
    second = run(tmp_path / "b", early_stop=False)[1]
    volatile = {"train_seconds", "steps_per_second"}
    assert {k: v for k, v in first.row.items() if k not in volatile} == \
           {k: v for k, v in second.row.items() if k not in volatile}
    assert first.curve == second.curve


def test_training_sequences_are_capped_and_read_in_shuffled_epochs(tmp_path):
    spec, result, _ = run(tmp_path, early_stop=False, n_train=640)
    assert spec.n_train == 640 and result.row["n_train"] == 640
    assert result.row["epochs"] == pytest.approx(spec.steps * spec.batch_size / 640)


def test_epochs_cover_every_sequence_in_a_new_order_each_time(tmp_path):
    import numpy as np

    from rnnbench.datasets import Dataset

    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1)
    batches = Batches(Dataset(x=x, y=x, meta={}), batch_size=5, seed=3)
    epoch = [sorted(batches.get(s, "cpu")[0].flatten().tolist()) for s in (1, 2)]
    assert sorted(epoch[0] + epoch[1]) == list(range(10))
    first = [batches.get(s, "cpu")[0].flatten().tolist() for s in (1, 2, 3, 4)]
    assert first[:2] != first[2:]  # a different shuffle in the second epoch
    assert Batches(Dataset(x=x, y=x, meta={}), 5, 3).get(3, "cpu")[0].tolist() == batches.get(3, "cpu")[0].tolist()


def test_default_training_set_is_read_at_most_ten_times():
    # adding at T=1000: 8 + 4 x (2000 + 1) bytes a row; 256 MiB would hold 33,504 rows (38 epochs of 20,000 x 64),
    # so the default is the 128,000 rows of 10 epochs (1 GiB)
    n = sizing.auto_n_train("adding", 1000, 20_000, 64)
    assert sizing.row_bytes("adding", 1000) == 8 + 4 * 2001
    assert n == 128_000 and sizing.epochs(20_000, 64, n) == sizing.MAX_EPOCHS
    assert sizing.auto_n_train("adding", 50, 500, 64) == 500 * 64  # small: every update sees fresh sequences
    # copy_sequence at T=1000 stores 1020 int8 ids and 1020 int8 classes a row, not 1020 x 10 one-hot floats
    assert sizing.row_bytes("copy_sequence", 1000) == 8 + 1020 + 1020


def test_length_generalisation_scores_the_chosen_model_on_each_lengths_test_set(tmp_path):
    grid = ProblemGrid(problem="parity", seq_lens=[8], hidden_size=16, steps=60)
    spec, result, loads = run(tmp_path, grids=[grid], eval_lens=["2x", "32", "8"])
    assert spec.eval_lens == [16, 32]  # the training length itself is the in-distribution row
    assert loads == ["val", "train", "test", "test", "test"]  # every test set only after training
    row, others = result.row, result.eval_rows
    assert row["eval_len"] == 8 and [r["eval_len"] for r in others] == [16, 32]
    for other in others:
        assert other["run_id"] == row["run_id"] and other["seq_len"] == 8
        assert other["outcome"] in ("solved", "beats_baseline", "at_baseline", "worse")
        assert 0 <= other["test_metric"] <= 1 and other["baseline"] == 0.5


def test_held_out_test_sets_are_scored_after_training_with_the_problems_own_metric(tmp_path):
    """flip_flop: the chosen model on its own test set, then on the sparse (p_i=0.98) and dense (p_i=0.1) test sets
    of the same length: one row each, marked by test_split, read only after training like every test set."""
    grid = ProblemGrid(problem="flip_flop", seq_lens=[16], hidden_size=16, steps=40)
    spec, result, loads = run(tmp_path, grids=[grid], early_stop=False)
    assert loads == ["val", "train", "test", "test", "test"]
    row, others = result.row, result.eval_rows
    assert row["test_split"] == "test"
    assert [(r["test_split"], r["eval_len"]) for r in others] == [("sparse", 16), ("dense", 16)]
    for other in others:
        assert other["run_id"] == row["run_id"] and other["baseline"] == 0.5 and 0 <= other["test_metric"] <= 1
    # each split's own sequences: the dense mix reads far more often, so its metric is not the own split's copy
    assert len({row["test_metric"], *(r["test_metric"] for r in others)}) == 3
    import polars as pl

    from schemas.metrics import Metrics, metrics_frame, validated

    frame = validated(metrics_frame([row, *others]), Metrics, "mem")
    assert frame.height == 3
    from rnnbench.verdicts import in_distribution

    assert in_distribution(frame)["test_split"].to_list() == ["test"]
    assert frame.filter(pl.col("test_split") == "dense")["test_metric"].item() == others[1]["test_metric"]


def test_eval_lens_are_refused_where_the_answer_has_one_length():
    with pytest.raises(ValueError, match="defined at one length only; problems whose answer is defined at any "
                                         "length: adding, "):
        from_preset("smoke", grids=[ProblemGrid(problem="sequential_digits", seq_lens=[64], hidden_size=8, steps=5,
                                                n_val=20, n_test=20)], eval_lens=["2x"]).runs()
    with pytest.raises(ValueError, match="eval length 'twice'"):
        from_preset("smoke", eval_lens=["twice"]).runs()
