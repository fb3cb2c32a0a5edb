"""Run outcomes, cell verdicts from counts, bootstrap intervals and paired comparisons, with hand-worked cases."""

from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnbench import verdicts
from rnnbench.verdicts import cell_verdict, compare_archs, findings, median_interval, run_outcome, summarize
from schemas.metrics import Metrics, metrics_frame, validated
from schemas.summary import Summary

ADDING = {"problem": "adding", "metric_name": "mse", "higher_is_better": False, "baseline": 1 / 6,
          "solved_rule": "test MSE <= 0.01", "seq_len": 100}
XOR = {"problem": "sequential_xor", "metric_name": "accuracy", "higher_is_better": True, "baseline": 0.5,
       "solved_rule": "per-step test accuracy >= 0.99", "seq_len": 20}


def runs(problem: dict, values: list, arch: str = "lstm", se: float = 0.005, solved=None,
         lr: float = 1e-3) -> list[dict]:
    """Metrics rows for one cell: a value per seed, 'diverged' or 'failed' for runs without a test metric."""
    out = []
    for seed, value in enumerate(values):
        status = value if isinstance(value, str) else "ok"
        metric = None if isinstance(value, str) else value
        is_solved = False
        if metric is not None:
            is_solved = solved(metric) if solved else (metric <= 0.01 if not problem["higher_is_better"]
                                                       else metric >= 0.99)
        outcome = run_outcome(status, is_solved, metric, se, problem["baseline"], problem["higher_is_better"])
        out.append({
            "run_id": f"{problem['problem']}-{arch}-{lr}-{seed}", "arch": arch, "seed": seed, "min_len": 0,
            "eval_len": problem["seq_len"],
            "hidden_size": 64, "num_layers": 1, "bidirectional": False, "dropout": 0.0, "bias": True,
            "proj_size": 0, "forget_bias": None, "recurrent_init": "default", "steps": 1000, "lr": lr,
            "batch_size": 64, "clip_norm": 1.0, "n_train": 64000, "n_val": 512, "n_test": 1000, "early_stop": True,
            "epochs": 1.0, "params": 100, "state_size": 64, "test_metric": metric,
            "test_se": None if metric is None else se, "test_metric_last": metric, "val_metric_best": metric,
            "best_step": 1000 if metric is not None else None, "steps_to_solve": 500 if is_solved else None,
            "score": None, "solved": is_solved, "outcome": outcome, "within_tolerance": None,
            "final_train_loss": None, "steps_done": 1000 if status != "failed" else 0, "status": status,
            "error": "boom" if status == "failed" else None, "train_seconds": 1.0 if status == "ok" else None,
            "steps_per_second": 1000.0 if status == "ok" else None, "device": "cpu", "node": "n",
            "ray_node_id": None, "torch_version": "2", "python_version": "3", **problem,
        })
    return out


def cell(rows: list[dict]) -> dict:
    frame = validated(metrics_frame(rows), Metrics, "test rows")
    summary = summarize(frame)
    validated(summary, Summary, "summary")
    assert summary.height == 1
    return summary.row(0, named=True)


# ---- the cases, worked out by hand --------------------------------------------------------------
def test_bimodal_adding_cell_counts_its_solved_seeds():
    # 0.001 and 0.002 meet "MSE <= 0.01"; 0.165 is within 1.96 x 0.005 of 1/6 = 0.1667: at baseline.
    # Pre-registered: solved when at least 2/3 of the seeds solved it; 2 of 3 is 2/3.
    row = cell(runs(ADDING, [0.001, 0.002, 0.165]))
    assert (row["n_solved"], row["n_at_baseline"], row["verdict"]) == (2, 1, "solved")
    assert row["verdict_text"] == "solved (2 of 3 solved)"
    assert row["median"] == 0.002 and 0.001 <= row["ci_low"] <= row["median"] <= row["ci_high"] <= 0.165
    # a fourth seed at baseline: 2 of 4 is below 2/3, so some but too few solved it
    row = cell(runs(ADDING, [0.001, 0.002, 0.165, 0.160]))
    assert row["verdict"] == "split" and row["verdict_text"] == "split (2 of 4 solved)"


def test_flat_adding_cell_is_at_baseline():
    # n_test = 256 gives a per-run standard error of ~0.012 on adding (measured); 1/6 - 0.149 = 0.018 < 1.96 x 0.012
    row = cell(runs(ADDING, [0.150, 0.152, 0.149], se=0.012))
    assert row["verdict"] == "at baseline" and row["n_beats_baseline"] == 0
    assert row["verdict_text"] == "at baseline (beats baseline in 0 of 3)"
    # the same values measured ten times more precisely do beat the baseline, seed by seed
    row = cell(runs(ADDING, [0.150, 0.152, 0.149], se=0.0012))
    assert row["verdict"] == "beats baseline" and row["n_beats_baseline"] == 3


def test_xor_interval_stays_within_0_and_1():
    row = cell(runs(XOR, [1.0, 0.999, 0.5]))
    assert row["verdict"] == "solved" and row["n_solved"] == 2
    assert 0.0 <= row["ci_low"] <= row["median"] <= row["ci_high"] <= 1.0
    assert row["ci_low"] == 0.5 and row["ci_high"] == 1.0


def test_diverged_runs_count_in_n_failed_runs_do_not():
    row = cell(runs(ADDING, [0.001, "diverged", "diverged"]))
    assert (row["n_seeds"], row["n_diverged"], row["n_solved"], row["verdict"]) == (3, 2, 1, "split")
    assert row["verdict_text"] == "split (1 of 3 solved)" and row["n_ok"] == 1
    row = cell(runs(ADDING, [0.001, 0.002, "failed"]))
    assert row["verdict"] == "solved" and row["verdict_text"] == "solved (2 of 2 solved; 1 failed, not counted)"
    row = cell(runs(ADDING, [0.17, "diverged", "diverged"]))
    assert row["verdict"] == "diverged"
    assert cell(runs(ADDING, ["failed", "failed"]))["verdict"] == "no result"


def test_a_summary_keeps_the_schemas_types_where_a_column_is_all_null_or_there_are_no_rows():
    """The library types its summary itself (it never imports the schemas): the schema agrees, cell by cell."""
    failed = summarize(frame(runs(ADDING, ["failed", "failed"], "gru")))
    assert failed["median"].dtype == pl.Float64 and failed["params"].dtype == pl.Int64
    for summary in (failed, summarize(frame())):
        validated(summary, Summary, "summary")
        assert summary.columns == list(Summary.to_schema().columns)


def test_run_outcome_uses_the_runs_own_uncertainty():
    assert run_outcome("ok", False, 0.15, 0.012, 1 / 6, False) == "at_baseline"
    assert run_outcome("ok", False, 0.15, 0.001, 1 / 6, False) == "beats_baseline"
    assert run_outcome("ok", False, 0.19, 0.001, 1 / 6, False) == "worse"
    assert run_outcome("ok", False, 0.53, 0.01, 0.5, True) == "beats_baseline"
    assert run_outcome("ok", True, 0.001, 0.001, 1 / 6, False) == "solved"
    assert run_outcome("diverged", False, None, None, 1 / 6, False) == "diverged"
    assert run_outcome("ok", False, math.nan, None, 1 / 6, False) == "diverged"
    assert run_outcome("failed", False, None, None, 1 / 6, False) == "failed"


def test_cell_verdict_threshold_is_two_thirds():
    assert cell_verdict(3, 2, 0, 0, 0) == "solved"
    assert cell_verdict(4, 2, 0, 0, 0) == "split"
    assert cell_verdict(6, 4, 0, 0, 0) == "solved"
    assert cell_verdict(3, 0, 1, 0, 0) == "at baseline"
    assert cell_verdict(3, 0, 2, 0, 0) == "beats baseline"
    assert cell_verdict(3, 0, 0, 2, 0) == "worse than baseline"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=False), min_size=1, max_size=12),
       st.integers(min_value=0, max_value=2**31))
def test_interval_inside_the_feasible_range_and_contains_the_median(values, seed):
    median, low, high = median_interval(values, seed=seed)
    assert min(values) <= low <= median <= high <= max(values)
    assert 0.0 <= low and high <= 1.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.0, 1e6, allow_nan=False, allow_subnormal=False), min_size=1, max_size=8))
def test_loss_interval_never_below_zero(values):
    median, low, high = median_interval(values)
    assert 0.0 <= low <= median <= high


def test_interval_is_reproducible():
    assert median_interval([0.1, 0.5, 0.2, 0.9]) == median_interval([0.1, 0.5, 0.2, 0.9])


# ---- arch against arch ---------------------------------------------------------------------------------
def frame(*cells: list[dict]) -> pl.DataFrame:
    return validated(metrics_frame([r for c in cells for r in c]), Metrics, "test rows")


def test_paired_comparison_ranks_only_what_every_shared_seed_supports():
    lstm = runs(ADDING, [0.001, 0.002, 0.003], "lstm")
    rnn = runs(ADDING, [0.166, 0.165, 0.167], "rnn_tanh")
    gru = runs(ADDING, [0.001, 0.166, 0.002], "gru")  # bimodal: better than rnn_tanh on 2 seeds, tied on one
    pairs = {(r["arch_a"], r["arch_b"]): r for r in compare_archs(frame(lstm, rnn, gru)).to_dicts()}
    assert pairs[("lstm", "rnn_tanh")]["relation"] == "above" and pairs[("lstm", "rnn_tanh")]["a_wins"] == 3
    assert pairs[("gru", "rnn_tanh")]["relation"] == "above" and pairs[("gru", "rnn_tanh")]["a_wins"] == 2
    # lstm beats gru on seed 1 only, 1 of 3 shared seeds: tied
    assert pairs[("gru", "lstm")]["relation"] == "tied" and pairs[("gru", "lstm")]["b_wins"] == 1


def test_a_diverged_run_loses_its_seed_and_failed_seeds_are_not_shared():
    lstm = runs(ADDING, [0.16, 0.16, 0.16], "lstm", se=0.01)
    rnn = runs(ADDING, ["diverged", "diverged", "failed"], "rnn_tanh")
    pair = compare_archs(frame(lstm, rnn)).row(0, named=True)
    assert (pair["n_shared"], pair["a_wins"], pair["b_wins"], pair["relation"]) == (2, 2, 0, "above")


def test_no_sentence_names_a_best_arch_when_no_run_beat_the_baseline():
    metrics = frame(runs(ADDING, [0.16, 0.165, 0.17], "lstm", se=0.01),
                    runs(ADDING, [0.15, 0.16, 0.166], "gru", se=0.01))
    text = " ".join(findings(summarize(metrics), compare_archs(metrics)))
    assert "no run of any architecture beat the baseline" in text
    assert "best" not in text and "better than" not in text


def test_sentences_state_counts_and_supported_rankings():
    metrics = frame(runs(ADDING, [0.001, 0.002, 0.003], "lstm"), runs(ADDING, [0.166, 0.165, 0.167], "rnn_tanh"))
    text = " ".join(findings(summarize(metrics), compare_archs(metrics)))
    assert "solved: lstm 3 of 3 solved" in text
    assert "lstm better than rnn_tanh on 3 of 3 seeds" in text


def test_every_swept_setting_is_its_own_cell():
    metrics = frame(runs(ADDING, [0.001, 0.002, 0.003], "lstm", lr=1e-3),
                    runs(ADDING, [0.16, 0.16, 0.16], "lstm", lr=1e-2, se=0.01))
    summary = summarize(metrics)
    assert summary.height == 2 and sorted(summary["verdict"]) == ["at baseline", "solved"]
    # the rate that did best on validation represents the arch; the sentences speak of it alone
    chosen = summary.filter(summary["chosen"])
    assert chosen.height == 1 and chosen["lr"][0] == 1e-3
    text = " ".join(findings(summary, compare_archs(metrics, summary)))
    assert "lstm (lr 0.001) 3 of 3 solved" in text and "0.01" not in text


def test_runs_that_differ_in_an_arch_option_are_different_cells():
    """Two sweeps into one output with different --arch-option lru.r_max: their runs never share a verdict."""
    near = [{**r, "opt_lru_r_max": 0.999, "run_id": r["run_id"] + "-near"} for r in
            runs(ADDING, [0.001, 0.002, 0.003], "lru")]
    far = [{**r, "opt_lru_r_max": 0.9, "run_id": r["run_id"] + "-far"} for r in
           runs(ADDING, [0.16, 0.16, 0.16], "lru", se=0.01)]
    metrics = frame(near, far, runs(ADDING, [0.166, 0.165, 0.167], "gru"))
    summary = summarize(metrics)
    validated(summary, Summary, "summary")
    lru = summary.filter(summary["arch"] == "lru").sort("opt_lru_r_max")
    assert lru["verdict"].to_list() == ["at baseline", "solved"] and lru["n_seeds"].to_list() == [3, 3]
    assert lru.filter(lru["chosen"])["opt_lru_r_max"].to_list() == [0.999]
    assert summary.filter(summary["arch"] == "gru")["opt_lru_r_max"].to_list() == [None]
    (pair,) = compare_archs(metrics, summary).to_dicts()
    assert (pair["arch_a"], pair["arch_b"], pair["relation"], pair["n_shared"]) == ("gru", "lru", "below", 3)


def test_archs_are_compared_at_their_chosen_rates():
    metrics = frame(runs(ADDING, [0.001, 0.002, 0.003], "lstm", lr=1e-3), runs(ADDING, [0.16] * 3, "lstm", lr=1e-2),
                    runs(ADDING, [0.166, 0.165, 0.167], "gru", lr=1e-3), runs(ADDING, [0.1, 0.1, 0.1], "gru", lr=1e-2,
                                                                             se=0.001))
    (pair,) = compare_archs(metrics).to_dicts()
    # gru at 1e-2 (validation 0.1) against lstm at 1e-3 (0.002): lstm better on every seed
    assert (pair["arch_a"], pair["arch_b"], pair["relation"], pair["b_wins"]) == ("gru", "lstm", "below", 3)


def test_a_cell_without_any_validation_metric_is_still_represented():
    metrics = frame(runs(ADDING, ["diverged"] * 3, "lstm", lr=1e-3), runs(ADDING, ["diverged"] * 3, "lstm", lr=1e-2))
    summary = summarize(metrics)
    assert summary["chosen"].to_list() == [True, False]


def test_rules_paragraph_states_the_pre_registered_threshold():
    assert "at least 2/3 of its seeds" in verdicts.RULES and "bootstrap" in verdicts.RULES


@pytest.mark.parametrize("values", [[0.001], [0.2]])
def test_single_seed_interval_is_the_value(values):
    assert median_interval(values) == (values[0], values[0], values[0])
