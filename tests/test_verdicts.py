"""Run outcomes, cell verdicts from counts, order-statistic intervals and seed-level comparisons, by hand."""

from __future__ import annotations

import itertools
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnbench import verdicts
from rnnbench.verdicts import (
    cell_verdict,
    compare_archs,
    findings,
    holm,
    interval_coverage,
    median_interval,
    order_statistic_rank,
    rank_test,
    ranking_sentence,
    run_outcome,
    seeds_needed,
    summarize,
    tiers,
)
from schemas.comparisons import Comparisons
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
        outcome = run_outcome(status, is_solved, metric, problem["baseline"], problem["higher_is_better"], se)
        out.append({
            "run_id": f"{problem['problem']}-{arch}-{lr}-{seed}", "arch": arch, "seed": seed, "min_len": 0,
            "eval_len": problem["seq_len"], "test_split": "test",
            "hidden_size": 64, "num_layers": 1, "bidirectional": False, "dropout": 0.0, "bias": True,
            "proj_size": 0, "forget_bias": None, "recurrent_init": "default", "steps": 1000, "lr": lr,
            "batch_size": 64, "clip_norm": 1.0, "n_train": 64000, "n_val": 512, "n_test": 1000, "early_stop": True,
            "epochs": 1.0, "params": 100, "state_size": 64, "test_metric": metric,
            "test_se": None if metric is None else se, "diff_se": None if metric is None else se,
            "test_metric_last": metric, "val_metric_best": metric,
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
    # 0.001 and 0.002 meet "MSE <= 0.01"; 0.165 is within 1.645 x 0.005 of 1/6 = 0.1667: at baseline.
    # Pre-registered: solved when at least 2/3 of the seeds solved it; 2 of 3 is 2/3.
    row = cell(runs(ADDING, [0.001, 0.002, 0.165]))
    assert (row["n_solved"], row["n_at_baseline"], row["verdict"]) == (2, 1, "solved")
    assert row["verdict_text"] == "solved (2 of 3 solved)"
    # three seeds: the interval is their range, which covers the median over seeds with probability 0.75
    assert (row["median"], row["ci_low"], row["ci_high"], row["ci_level"]) == (0.002, 0.001, 0.165, 0.75)
    # a fourth seed at baseline: 2 of 4 is below 2/3, so some but too few solved it
    row = cell(runs(ADDING, [0.001, 0.002, 0.165, 0.160]))
    assert row["verdict"] == "split" and row["verdict_text"] == "split (2 of 4 solved)"


def test_verdict_text_names_the_count_that_decided_it():
    from rnnbench.verdicts import verdict_text

    assert verdict_text("worse than baseline", 3, 0, 1, 0, n_worse=2) == "worse than baseline (worse in 2 of 3)"
    assert verdict_text("diverged", 3, 0, 0, 1, n_diverged=2) == "diverged (diverged in 2 of 3; 1 failed, not counted)"
    assert verdict_text("at baseline", 3, 0, 1, 0, n_worse=1) == "at baseline (beats baseline in 1 of 3, worse in 1)"
    assert verdict_text("beats baseline", 3, 0, 2, 0, n_worse=1) == "beats baseline (beats baseline in 2 of 3)"


def test_flat_adding_cell_is_at_baseline():
    # n_test = 256 gives a per-run standard error of ~0.012 on adding (measured); 1/6 - 0.149 = 0.018 < 1.645 x 0.012
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
    assert run_outcome("ok", False, 0.15, 1 / 6, False, 0.012) == "at_baseline"
    assert run_outcome("ok", False, 0.15, 1 / 6, False, 0.001) == "beats_baseline"
    assert run_outcome("ok", False, 0.19, 1 / 6, False, 0.001) == "worse"
    assert run_outcome("ok", False, 0.53, 0.5, True, 0.01) == "beats_baseline"
    assert run_outcome("ok", True, 0.001, 1 / 6, False, 0.001) == "solved"
    assert run_outcome("diverged", False, None, 1 / 6, False, None) == "diverged"
    assert run_outcome("ok", False, math.nan, 1 / 6, False, None) == "diverged"
    assert run_outcome("failed", False, None, 1 / 6, False, None) == "failed"


def test_run_outcome_is_paired_with_the_memoryless_predictor_on_the_same_sequences():
    # one-sided at 5%: beyond 1.645 standard errors of the per-sequence difference (1.645 x 0.004 = 0.0066)
    assert run_outcome("ok", False, 0.160, 1 / 6, False, 0.004) == "beats_baseline"  # 0.0067 from the analytic
    assert run_outcome("ok", False, 0.161, 1 / 6, False, 0.004) == "at_baseline"  # 0.0057
    # this test set happens to be hard (the memoryless predictor scores 0.175 on it): against it the same
    # 0.165 is a clear gain, which the analytic 1/6 would miss; and on an easy one (0.158) it is worse
    assert run_outcome("ok", False, 0.165, 1 / 6, False, 0.004) == "at_baseline"
    assert run_outcome("ok", False, 0.165, 1 / 6, False, 0.004, memoryless=0.175) == "beats_baseline"
    assert run_outcome("ok", False, 0.165, 1 / 6, False, 0.004, memoryless=0.158) == "worse"
    # no spread to judge by (one test sequence): no claim either way
    assert run_outcome("ok", False, 0.01, 1 / 6, False, None) == "at_baseline"
    assert run_outcome("ok", False, 0.9, 0.5, True, math.nan) == "at_baseline"


def test_cell_verdict_threshold_is_two_thirds():
    assert cell_verdict(3, 2, 0, 0, 0) == "solved"
    assert cell_verdict(4, 2, 0, 0, 0) == "split"
    assert cell_verdict(6, 4, 0, 0, 0) == "solved"
    assert cell_verdict(3, 0, 1, 0, 0) == "at baseline"
    assert cell_verdict(3, 0, 2, 0, 0) == "beats baseline"
    assert cell_verdict(3, 0, 0, 2, 0) == "worse than baseline"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=False), min_size=1, max_size=12))
def test_interval_inside_the_feasible_range_and_contains_the_median(values):
    median, low, high, level = median_interval(values)
    assert min(values) <= low <= median <= high <= max(values)
    assert 0.0 <= low and high <= 1.0
    assert level == order_statistic_rank(len(values))[1]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.0, 1e6, allow_nan=False, allow_subnormal=False), min_size=1, max_size=8))
def test_loss_interval_never_below_zero(values):
    median, low, high, _ = median_interval(values)
    assert 0.0 <= low <= median <= high


def test_interval_levels_are_the_binomial_coverage_worked_by_hand():
    # the range of n values misses the median only when all n fall on one side of it: 1 - 2 (1/2)^n
    assert order_statistic_rank(3) == (1, 0.75)
    assert order_statistic_rank(5) == (1, 1 - 2 / 32)  # 0.9375: below 0.95, and the best 5 seeds allow
    assert order_statistic_rank(6) == (1, 1 - 2 / 64)  # the first n whose range reaches 0.95
    # n = 9: the 2nd smallest to the 2nd largest misses when 0 or 1 of the 9 fall below: 1 - 2 x 10/512
    assert order_statistic_rank(9) == (2, 1 - 20 / 512)
    assert interval_coverage(9, 3) == 1 - 2 * 46 / 512 < 0.95  # so k = 3 is not taken
    assert order_statistic_rank(1) == (1, 0.0)
    assert median_interval([9, 1, 8, 2, 7, 3, 6, 4, 5]) == (5.0, 2.0, 8.0, 1 - 20 / 512)
    assert median_interval([0.001, 0.002, 0.165]) == (0.002, 0.001, 0.165, 0.75)
    with pytest.raises(ValueError, match="at least 1 value"):
        order_statistic_rank(0)
    with pytest.raises(ValueError, match="finite"):
        median_interval([0.1, math.nan])


# ---- arch against arch ---------------------------------------------------------------------------------
def frame(*cells: list[dict]) -> pl.DataFrame:
    return validated(metrics_frame([r for c in cells for r in c]), Metrics, "test rows")


def pairs_of(metrics: pl.DataFrame, summary: pl.DataFrame | None = None) -> dict[tuple[str, str], dict]:
    comparisons = validated(compare_archs(metrics, summary), Comparisons, "comparisons")
    return {(r["arch_a"], r["arch_b"]): r for r in comparisons.to_dicts()}


def brute_force_rank_test(a: list[float], b: list[float]) -> float:
    """The same two-sided p by listing every split of the pooled values (mid-ranks for ties)."""
    pooled = a + b
    ranks = [sum(1 for w in pooled if w < v) + (sum(1 for w in pooled if w == v) + 1) / 2 for v in pooled]
    mean = len(a) * (len(pooled) + 1) / 2
    observed = abs(sum(ranks[: len(a)]) - mean)
    splits = list(itertools.combinations(range(len(pooled)), len(a)))
    return sum(abs(sum(ranks[i] for i in s) - mean) >= observed - 1e-9 for s in splits) / len(splits)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([-math.inf, 0.0, 0.1, 0.2, 0.5, 0.7, 1.0]), min_size=1, max_size=6),
       st.lists(st.sampled_from([-math.inf, 0.0, 0.1, 0.2, 0.5, 0.7, 1.0]), min_size=1, max_size=6))
def test_rank_test_is_the_exact_permutation_distribution(a, b):
    p, share = rank_test(a, b)
    assert p == pytest.approx(brute_force_rank_test(a, b), rel=1e-12)
    assert share == pytest.approx(sum((x > y) + 0.5 * (x == y) for x in a for y in b) / (len(a) * len(b)))


def test_rank_test_and_holm_worked_by_hand():
    # two groups of n that do not overlap: 2 of the C(2n, n) splits are as extreme
    assert rank_test([1, 2, 3], [4, 5, 6]) == (2 / 20, 0.0)  # 0.1: three seeds can never reach 5%
    assert rank_test([5, 6, 7, 8, 9], [0, 1, 2, 3, 4]) == (2 / 252, 1.0)
    assert rank_test([0.5] * 3, [0.5] * 3) == (1.0, 0.5)
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    # Holm's first step multiplies the smallest p by the number of pairs: 2 / C(2n, n) x pairs <= 0.05
    assert (seeds_needed(1), seeds_needed(3), seeds_needed(6), seeds_needed(28)) == (4, 5, 5, 7)


def test_three_seeds_never_order_a_pair_however_clear():
    lstm = runs(ADDING, [0.001, 0.002, 0.003], "lstm")
    rnn = runs(ADDING, [0.166, 0.165, 0.167], "rnn_tanh")
    pair = pairs_of(frame(lstm, rnn))[("lstm", "rnn_tanh")]
    assert (pair["n_shared"], pair["a_better"], pair["b_better"], pair["a_over_b"]) == (3, 3, 0, 1.0)
    assert (pair["p_value"], pair["order"]) == (0.1, "not distinguishable")


def test_solved_five_of_five_against_at_baseline_five_of_five_is_ordered_but_not_among_many_pairs():
    five = [0.001, 0.002, 0.003, 0.004, 0.005]
    lstm = runs(ADDING, five, "lstm")
    rnn = runs(ADDING, [0.166, 0.165, 0.167, 0.166, 0.168], "rnn_tanh", se=0.01)
    pair = pairs_of(frame(lstm, rnn))[("lstm", "rnn_tanh")]
    assert (pair["a_better"], pair["p_value"], pair["p_holm"], pair["order"]) == (5, 2 / 252, 2 / 252, "above")
    # seven archs: 21 pairs, 21 x 2/252 = 0.17 > 0.05, so the same clean separation is no longer enough
    others = [runs(ADDING, [0.165 + 0.0002 * i] * 5, arch, se=0.01)
              for i, arch in enumerate(("gru", "indrnn", "lru", "mingru", "minlstm"))]
    pairs = pairs_of(frame(lstm, rnn, *others))
    assert pairs[("lstm", "rnn_tanh")]["p_holm"] == pytest.approx(min(1.0, 21 * 2 / 252))
    assert pairs[("lstm", "rnn_tanh")]["order"] == "not distinguishable"


def test_a_diverged_run_is_the_worst_value_and_failed_seeds_are_not_shared():
    lstm = runs(ADDING, [0.16] * 5, "lstm", se=0.01)
    rnn = runs(ADDING, ["diverged"] * 4 + ["failed"], "rnn_tanh")
    pair = pairs_of(frame(lstm, rnn))[("lstm", "rnn_tanh")]
    assert (pair["n_shared"], pair["a_better"], pair["b_better"], pair["a_over_b"]) == (4, 4, 0, 1.0)
    assert (pair["p_value"], pair["order"]) == (2 / 70, "above")
    # two diverged runs of one seed are a tie
    both = pairs_of(frame(runs(ADDING, ["diverged", 0.1, 0.1], "lstm"), runs(ADDING, ["diverged", 0.2, 0.05], "gru")))
    assert (both[("gru", "lstm")]["a_better"], both[("gru", "lstm")]["b_better"]) == (1, 1)


def test_ranking_sentence_gives_tiers_only_where_every_cross_tier_pair_is_ordered():
    solved = [0.001 * (s + 1) for s in range(5)]
    # four archs, five seeds: six pairs, a clean separation passes Holm (6 x 2/252 = 0.048); gru and lru trade
    metrics = frame(runs(ADDING, solved, "gru"), runs(ADDING, solved[::-1], "lru"),
                    runs(ADDING, [0.05] * 5, "lstm", se=0.001), runs(ADDING, [0.166] * 5, "rnn_tanh", se=0.01))
    text = " ".join(findings(summarize(metrics), compare_archs(metrics)))
    assert "gru, lru > lstm > rnn_tanh; the other pair is not distinguishable with 5 seeds." in text
    assert "better than" not in text  # no list of pairs
    assert tiers([("a", "b"), ("b", "c"), ("a", "c")], ["a", "b", "c"]) == [["a"], ["b"], ["c"]]
    # a > b > c without a > c is not a chain a reader may read transitively: only the pairs are stated
    assert tiers([("a", "b"), ("b", "c")], ["a", "b", "c"]) is None
    assert tiers([("a", "b"), ("b", "c"), ("c", "a")], ["a", "b", "c"]) is None
    pairs = pl.DataFrame({"arch_a": ["a", "a", "b"], "arch_b": ["b", "c", "c"], "n_shared": [8, 8, 8],
                          "order": ["above", "not distinguishable", "above"]})
    assert ranking_sentence(pairs, ["a", "b", "c"]).endswith(
        ": a > b; b > c; the other pair is not distinguishable with 8 seeds.")


def test_no_sentence_names_a_best_arch_when_no_run_beat_the_baseline():
    metrics = frame(runs(ADDING, [0.16, 0.165, 0.17], "lstm", se=0.01),
                    runs(ADDING, [0.152, 0.16, 0.166], "gru", se=0.01))
    text = " ".join(findings(summarize(metrics), compare_archs(metrics)))
    assert "no run of any architecture beat the baseline" in text
    assert "best" not in text and "better than" not in text


def test_sentences_state_counts_as_facts_and_no_order_three_seeds_cannot_carry():
    metrics = frame(runs(ADDING, [0.001, 0.002, 0.003], "lstm"), runs(ADDING, [0.166, 0.165, 0.167], "rnn_tanh"))
    (text,) = findings(summarize(metrics), compare_archs(metrics))
    assert "solved: lstm 3 of 3 solved" in text and "at baseline: rnn_tanh beats baseline in 0 of 3" in text
    assert "no pair distinguishable with 3 seeds" in text
    assert "needs at least 4 seeds" in text and ">" not in text


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
    assert (pair["arch_a"], pair["arch_b"], pair["b_better"], pair["n_shared"]) == ("gru", "lru", 3, 3)
    assert (pair["opt_lru_r_max"], pair["order"]) == (0.999, "not distinguishable")


def test_archs_are_compared_at_their_chosen_rates():
    metrics = frame(runs(ADDING, [0.001, 0.002, 0.003], "lstm", lr=1e-3), runs(ADDING, [0.16] * 3, "lstm", lr=1e-2),
                    runs(ADDING, [0.166, 0.165, 0.167], "gru", lr=1e-3), runs(ADDING, [0.1, 0.1, 0.1], "gru", lr=1e-2,
                                                                             se=0.001))
    (pair,) = pairs_of(metrics).values()
    # gru at 1e-2 (validation 0.1) against lstm at 1e-3 (0.002): lstm better on every seed, each at its own rate
    assert (pair["arch_a"], pair["arch_b"], pair["b_better"], pair["lr_a"], pair["lr_b"]) == ("gru", "lstm", 3,
                                                                                              1e-2, 1e-3)


def test_a_cell_without_any_validation_metric_is_still_represented():
    metrics = frame(runs(ADDING, ["diverged"] * 3, "lstm", lr=1e-3), runs(ADDING, ["diverged"] * 3, "lstm", lr=1e-2))
    summary = summarize(metrics)
    assert summary["chosen"].to_list() == [True, False]


def test_rules_paragraph_states_the_pre_registered_threshold():
    assert "at least 2/3 of its seeds" in verdicts.RULES and "order-statistic interval" in verdicts.RULES
    assert "rank test" in verdicts.RULES and "Holm" in verdicts.RULES and "bootstrap" not in verdicts.RULES


@pytest.mark.parametrize("values", [[0.001], [0.2]])
def test_single_seed_interval_is_the_value(values):
    assert median_interval(values) == (values[0], values[0], values[0], 0.0)
