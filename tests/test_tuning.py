"""--lrs in two stages: tuning runs on their own seeds choose each cell's rate on validation; only the reported
runs, at that rate, reach verdicts, intervals and rankings."""

from __future__ import annotations

import polars as pl
import pytest

from rnnbench.config import ProblemGrid, RunSpec, from_preset
from rnnbench.tuning import choose_rates
from rnnbench.verdicts import compare_archs, summarize
from schemas.metrics import Metrics, metrics_frame, validated
from tests.test_verdicts import ADDING, runs


def _config(**overrides):
    settings = {"archs": ["gru", "lstm"], "seeds": 3, "lrs": [1e-3, 3e-3, 1e-2], "out": "/tmp/unused",
                "grids": [ProblemGrid(problem="adding", seq_lens=[10, 20], hidden_size=8, steps=20)]}
    return from_preset("smoke", **{**settings, **overrides})


def test_tuning_and_reported_runs_are_on_disjoint_seeds_and_the_report_runs_one_rate():
    config = _config()
    tune = config.runs()
    assert {s.role for s in tune} == {"tune"} and {s.seed for s in tune} == {3, 4, 5}
    assert len(tune) == 2 * 2 * 3 * 3  # (T, arch) x rate x tuning seed
    rates = {s.cell_key(): (1e-2 if s.arch == "gru" else 1e-3) for s in tune}
    reported = config.runs(rates)
    assert {s.role for s in reported} == {"report"} and {s.seed for s in reported} == {0, 1, 2}
    assert len(reported) == 2 * 2 * 3
    assert {(s.arch, s.lr) for s in reported} == {("gru", 1e-2), ("lstm", 1e-3)}
    assert config.tune_seed_numbers() == [3, 4, 5] and _config(tune_seeds=2).tune_seed_numbers() == [3, 4]


def test_the_reported_stage_needs_the_tuned_rates():
    config = _config()
    with pytest.raises(ValueError, match="no tuned rate for adding/gru/T=10"):
        config.runs({})  # no rate for any cell
    some = {s.cell_key(): 1e-3 for s in config.runs() if s.arch == "gru"}
    with pytest.raises(ValueError, match="no tuned rate for adding/lstm/T=10: .* for 2 other cell"):
        config.runs(some)


def test_a_single_rate_has_no_tuning_stage_and_reported_run_ids_are_unchanged():
    config = from_preset("smoke", out="/tmp/unused")
    assert not config.tunes() and {s.role for s in config.runs()} == {"report"}
    spec = config.runs()[0]
    data = spec.model_dump(mode="json")
    assert "role" not in data  # a reported run's id is what it was before roles existed
    assert RunSpec(**data).run_id == spec.run_id
    tuned = spec.model_copy(update={"role": "tune"})
    assert tuned.run_id != spec.run_id and tuned.cell_key() == spec.cell_key()


def _rows(specs, values):
    """Metrics-like rows of tuning runs: val_metric_best per run, or 'diverged' / 'failed'."""
    out = {}
    for spec, value in zip(specs, values, strict=True):
        status = value if isinstance(value, str) else "ok"
        out[spec.run_id] = {"status": status, "val_metric_best": None if status != "ok" else value,
                            "higher_is_better": False}
    return out


def test_a_diverged_tuning_run_counts_as_the_worst_value_and_a_failed_one_is_left_out():
    config = _config(archs=["gru"], grids=[ProblemGrid(problem="adding", seq_lens=[10], hidden_size=8, steps=20)])
    tune = config.runs()  # 3 rates x seeds 3, 4, 5 (rate outer)
    # 1e-3: 0.05 on every seed; 3e-3: two diverged, one survivor at 0.001 (would win were diverged runs missing);
    # 1e-2: one failed job, the others at 0.02
    values = [0.05, 0.05, 0.05, "diverged", 0.001, "diverged", "failed", 0.02, 0.02]
    (rate,) = choose_rates(tune, _rows(tune, values)).values()
    assert rate == 1e-2
    values = [0.05, 0.05, 0.05, 0.01, 0.001, 0.01, "failed", "failed", "failed"]
    assert list(choose_rates(tune, _rows(tune, values)).values()) == [3e-3]
    with pytest.raises(ValueError, match="every tuning run failed"):
        choose_rates(tune, _rows(tune, ["failed"] * 9))
    with pytest.raises(ValueError, match="rates are chosen on tuning runs only"):
        choose_rates(config.runs(1e-3), {})


def test_verdicts_and_rankings_read_the_reported_rows_only():
    # lstm reported: at baseline on every seed; its tuning runs (another rate) all solved
    reported = runs(ADDING, [0.165, 0.166, 0.164], arch="lstm")
    tuned = [{**row, "run_id": row["run_id"] + "-tune", "seed": row["seed"] + 3, "role": "tune", "lr": 3e-3}
             for row in runs(ADDING, [0.001, 0.002, 0.001], arch="lstm", lr=3e-3)]
    gru = runs(ADDING, [0.001, 0.001, 0.002], arch="gru")
    frame = validated(metrics_frame([*(dict(r, role="report") for r in reported + gru), *tuned]), Metrics, "rows")
    summary = summarize(frame)
    assert summary.height == 2 and set(summary["lr"].to_list()) == {1e-3}
    lstm = summary.filter(pl.col("arch") == "lstm").row(0, named=True)
    assert lstm["verdict"] == "at baseline" and lstm["n_solved"] == 0
    pairs = compare_archs(frame, summary)
    assert pairs.height == 1 and pairs["n_shared"].to_list() == [3]


@pytest.mark.slow
def test_a_sweep_with_lrs_tunes_on_its_own_seeds_then_reports_at_the_chosen_rate(prefect_api, tmp_path):
    from flows import compare
    from rnnbench.config import RunSpec
    from schemas.metrics import read_validated
    from schemas.summary import Summary

    out = tmp_path / "out"
    argv = ["--preset", "smoke", "--problems", "adding", "--archs", "gru,lstm", "--seeds", "2", "--lrs",
            "0.003,0.01", "--steps", "60", "--out", str(out)]
    assert compare.main(argv) == 0
    metrics = read_validated(str(out / "metrics.parquet"), Metrics)
    tune, report = metrics.filter(pl.col("role") == "tune"), metrics.filter(pl.col("role") == "report")
    assert set(tune["seed"]) == {2, 3} and set(report["seed"]) == {0, 1}  # disjoint
    assert tune.height == 2 * 2 * 2 and report.height == 2 * 2
    assert report.group_by("arch").agg(pl.col("lr").n_unique())["lr"].to_list() == [1, 1]  # one rate per cell
    # each cell's reported rate is the one its tuning runs chose (median validation metric, from the rows)
    import json

    specs = [RunSpec(**json.loads((out / "runs" / f"{r}.json").read_text())["spec"]) for r in tune["run_id"]]
    rates = choose_rates(specs, {row["run_id"]: row for row in tune.to_dicts()})
    for row in report.to_dicts():
        spec = RunSpec(**json.loads((out / "runs" / f"{row['run_id']}.json").read_text())["spec"])
        assert rates[spec.cell_key()] == row["lr"]
    summary = read_validated(str(out / "summary.parquet"), Summary)
    assert summary.height == 2 and summary["n_seeds"].to_list() == [2, 2]  # the reported seeds only
