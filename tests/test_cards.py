"""Reproduction cards: every card consistent with the registries, the agreement rules on constructed runs,
reproduction.parquet's schema, and `--preset reproduce` carrying each card's settings into its RunSpecs."""

from __future__ import annotations

import polars as pl
import pytest

from rnnbench.archs import ARCHS
from rnnbench.cards import CARDS, NUMERIC, Card, cards_for, get_card
from rnnbench.config import ModelOptions, RunSpec, from_preset
from rnnbench.problems import PROBLEMS, get_problem
from rnnbench.reproduction import judge, reproduction_frame
from schemas.errors import ValidationError
from schemas.metrics import validated
from schemas.reproduction import Reproduction
from tests.test_verdicts import frame, runs


def test_every_card_names_a_registered_problem_and_arch_and_valid_settings():
    assert len({c.id for c in CARDS}) == len(CARDS)
    for card in CARDS:
        run = card.run
        assert card.problem in PROBLEMS and run.arch in ARCHS, card.id
        assert card.url.startswith("https://") and card.source_n and card.verified, card.id
        assert card.differences, f"{card.id}: say which fields differ from the source (or why none)"
        # the setting builds a valid run: the problem's lengths, the arch's options
        spec = RunSpec(problem=card.problem, arch=run.arch, seq_len=run.seq_len, min_len=run.min_len, seed=0,
                       hidden_size=run.hidden_size, steps=run.steps, lr=run.lr, batch_size=run.batch_size,
                       clip_norm=run.clip_norm, eval_every=max(1, run.steps // 20), n_train=max(run.batch_size, 64),
                       n_test=100, eval_lens=list(run.eval_lens),
                       model=ModelOptions(num_layers=run.num_layers, forget_bias=run.forget_bias))
        spec.check()
        if card.kind in NUMERIC:
            assert card.tolerance is not None and card.tolerance > 0, card.id
        if card.kind == "solved_within":
            assert card.within_updates and card.within_updates * card.tolerance <= run.steps, \
                f"{card.id}: the budget must leave room for the claim's N times its tolerance"
        if card.kind.startswith("accuracy_"):
            assert card.length in run.eval_lens and card.accuracy is not None, card.id
            assert get_problem(card.problem).metric_name == "accuracy", card.id


def test_the_cpu_tier_holds_at_least_five_cards_and_gpu_every_card():
    assert len(cards_for("cpu")) >= 5 and cards_for("gpu") == CARDS
    with pytest.raises(ValueError, match="tier 'tpu'"):
        cards_for("tpu")
    with pytest.raises(ValueError, match="valid cards"):
        get_card("nope")


def test_preset_reproduce_expands_to_each_cards_own_settings_with_three_seeds():
    config = from_preset("reproduce")
    specs = config.runs()
    cpu = cards_for("cpu")
    assert len(specs) == 3 * len(cpu) and config.seeds >= 3
    for card in cpu:
        run = card.run
        mine = [s for s in specs if (s.problem, s.arch, s.seq_len) == (card.problem, run.arch, run.seq_len)
                and s.lr == run.lr]
        assert sorted(s.seed for s in mine) == [0, 1, 2], card.id
        for s in mine:
            assert (s.hidden_size, s.steps, s.batch_size, s.clip_norm, s.min_len) == (
                run.hidden_size, run.steps, run.batch_size, run.clip_norm, run.min_len), card.id
            assert (s.model.num_layers, s.model.forget_bias) == (run.num_layers, run.forget_bias), card.id
            assert s.eval_lens == sorted(set(run.eval_lens) - {run.seq_len}), card.id
    # the gpu tier adds the costly cards; full holds every card's grid after its own, untuned
    assert len(from_preset("reproduce", tier="gpu").runs()) == 3 * len(CARDS)
    full = from_preset("full", tier="gpu")
    reported = full.runs(3e-4)
    for card in CARDS:
        assert any(s.arch == card.run.arch and s.lr == card.run.lr and s.batch_size == card.run.batch_size
                   and s.seq_len == card.run.seq_len for s in reported), card.id
    assert not any(s.batch_size == 50 for s in full.runs())  # a card's grid has no tuning stage


def test_a_cards_settings_change_the_run_id():
    specs = {s.run_id for s in from_preset("reproduce").runs()}
    assert len(specs) == 3 * len(cards_for("cpu"))
    card = get_card("batzner-adding-100-lstm")
    spec = next(s for s in from_preset("reproduce").runs() if s.problem == "adding" and s.arch == "lstm")
    assert spec.model.forget_bias == 1.0 and spec.clip_norm == card.run.clip_norm
    assert spec.model_copy(update={"clip_norm": 1.0}).run_id != spec.run_id


# ---- agreement rules on constructed runs ----------------------------------------------------------------------
def card_rows(card: Card, values: list, steps_to_solve: int | None = None, eval_values: list | None = None):
    """Metrics rows of a card's cell: one value per seed at its training length (and, for an accuracy claim, one
    per seed at the card's length)."""
    problem = get_problem(card.problem)
    run = card.run
    at = {"problem": card.problem, "metric_name": problem.metric_name, "higher_is_better": problem.higher_is_better,
          "baseline": problem.baseline(run.seq_len), "solved_rule": problem.solved_rule(), "seq_len": run.seq_len}
    setting = {"hidden_size": run.hidden_size, "lr": run.lr, "batch_size": run.batch_size, "clip_norm": run.clip_norm,
               "num_layers": run.num_layers, "forget_bias": run.forget_bias, "min_len": run.min_len,
               "steps": run.steps}
    rows = [{**r, **setting} for r in runs(at, values, run.arch, lr=run.lr)]
    for r in rows:
        if r["solved"] and steps_to_solve is not None:
            r["steps_to_solve"] = steps_to_solve
    for value, r in zip(eval_values or [], list(rows), strict=False):
        rows.append({**r, "eval_len": card.length, "test_metric": value, "solved": value >= 0.99,
                     "outcome": "solved" if value >= 0.99 else "at_baseline"})
    return frame(rows)


def test_solved_within_n_agrees_only_when_solved_within_the_tolerance():
    card = get_card("batzner-adding-100-lstm")  # N = 4,000, tolerance 2
    assert judge(card, card_rows(card, [0.001, 0.002, 0.003], 7_000))[1] == "agrees"
    found, result = judge(card, card_rows(card, [0.001, 0.002, 0.003], 8_500))
    assert result == "disagrees" and "median 8,500 updates to solve" in found
    assert judge(card, card_rows(card, [0.001, 0.12, 0.13], 1_000))[1] == "disagrees"  # split, not solved


def test_stays_at_baseline_agrees_only_with_cells_that_learned_nothing():
    card = get_card("arjovsky-adding-100-tanh")
    assert judge(card, card_rows(card, [0.12, 0.11, 0.13]))[1] == "disagrees"  # beats the baseline
    assert judge(card, card_rows(card, [0.2, 0.21, 0.19]))[1] == "agrees"  # worse than baseline
    assert judge(card, card_rows(card, ["diverged"] * 3))[1] == "agrees"
    assert judge(card, card_rows(card, ["failed"] * 3)) == ("all 3 runs failed (infrastructure)", "not run")


def test_beats_baseline_and_accuracy_claims():
    copy = get_card("arjovsky-copy-100-lstm")
    base = get_problem("copy_sequence").baseline(100)
    assert judge(copy, card_rows(copy, [base * 0.5, base * 0.6, base * 0.4]))[1] == "agrees"
    assert judge(copy, card_rows(copy, [base * 1.5] * 3))[1] == "disagrees"
    deletang = get_card("deletang-parity-lstm")  # median accuracy at 500 >= 1.0 - 0.01
    found, result = judge(deletang, card_rows(deletang, [1.0, 1.0, 1.0], eval_values=[1.0, 0.995, 0.6]))
    assert result == "agrees" and found.startswith("median accuracy 0.995 at length 500 over 3 seeds")
    assert judge(deletang, card_rows(deletang, [1.0] * 3, eval_values=[0.98, 0.6, 1.0]))[1] == "disagrees"
    assert judge(deletang, card_rows(deletang, [1.0] * 3))[1] == "not run"  # never scored at 500
    grazzi = get_card("grazzi-parity-mingru")  # median accuracy at 256 <= 0.5 + 0.1
    assert judge(grazzi, card_rows(grazzi, [1.0] * 3, eval_values=[0.5, 0.52, 0.9]))[1] == "agrees"
    assert judge(grazzi, card_rows(grazzi, [1.0] * 3, eval_values=[0.99, 1.0, 0.5]))[1] == "disagrees"


def test_runs_with_other_settings_are_not_the_cards():
    card = get_card("batzner-adding-100-lstm")
    other = card_rows(card, [0.001] * 3, 1_000).with_columns(pl.lit(64).alias("batch_size"))
    assert judge(card, other) == ("not run in this sweep", "not run")
    gpu = get_card("batzner-adding-1000-lstm")
    assert judge(gpu, other) == ("not run: a gpu-tier card, run with --tier gpu", "not run")


# ---- reproduction.parquet ---------------------------------------------------------------------------------------
def test_reproduction_frame_passes_its_schema_and_the_schema_refuses_bad_rows():
    card = get_card("batzner-adding-100-lstm")
    table = validated(reproduction_frame(card_rows(card, [0.001] * 3, 3_000)), Reproduction, "reproduction")
    assert table.height == len(CARDS)
    row = table.filter(pl.col("card_id") == card.id).row(0, named=True)
    assert (row["result"], row["n"], row["source_n"], row["tolerance"]) == ("agrees", 1, "1 curve", 2.0)
    assert "clip_norm" in row["differences"]
    for bad in (table.with_columns(pl.lit("maybe").alias("result")),
                table.with_columns(pl.lit(0.0).alias("tolerance")),
                table.with_columns(pl.when(pl.col("card_id") == card.id).then(pl.lit("not run"))
                                   .otherwise(pl.col("result")).alias("result")),
                pl.concat([table, table.head(1)])):
        with pytest.raises(ValidationError):
            validated(bad, Reproduction, "bad reproduction")


def test_the_tier_flag_reaches_the_config_and_a_bad_tier_is_refused(capsys):
    from flows.compare_args import build_parser, config_from_args

    def config(*flags):
        return config_from_args(build_parser().parse_args(["--preset", "reproduce", "--out", "/tmp/unused", *flags]))

    assert len(config().runs()) == 3 * len(cards_for("cpu"))
    assert len(config("--tier", "gpu").runs()) == 3 * len(CARDS)
    assert {s.arch for s in config("--archs", "lstm").runs()} == {"lstm"}  # --archs keeps those cards only
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--tier", "tpu"])
    assert "invalid choice: 'tpu'" in capsys.readouterr().err
