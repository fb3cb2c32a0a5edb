"""A problem and an arch added by a plugin (tests/plugin_example.py) run by name and join the presets built from the
registries; what a problem must declare is asked for by name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from flows import compare_args
from rnnbench import plugins
from rnnbench.archs import ARCHS
from rnnbench.config import ProblemGrid, from_preset
from rnnbench.problems import PROBLEMS, Problem

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "tests.plugin_example"
BUILT_IN_ARCHS = ["rnn_tanh", "rnn_relu", "gru", "lstm", "indrnn", "mingru", "minlstm", "lru"]


def config(*argv: str):
    return compare_args.config_from_args(compare_args.build_parser().parse_args([*argv, "--out", "/tmp/unused"]))


@pytest.fixture()
def example_plugin(monkeypatch):
    """The plugin's names in this process's registries, as RNNBENCH_PLUGINS puts them in a fresh one; gone after."""
    monkeypatch.setenv(plugins.ENV, PLUGIN)
    before = {"PROBLEMS": set(PROBLEMS), "ARCHS": set(ARCHS)}
    plugins.extend(PROBLEMS, "PROBLEMS")
    plugins.extend(ARCHS, "ARCHS")
    yield
    for registry, names in ((PROBLEMS, before["PROBLEMS"]), (ARCHS, before["ARCHS"])):
        for name in set(registry) - names:
            del registry[name]


def test_a_registered_problem_and_arch_join_full_and_every_arch_joins_quick(example_plugin):
    full = from_preset("full")
    assert full.archs == [*BUILT_IN_ARCHS, "leaky_rnn"]
    grid = [g for g in full.grids if g.archs is None][-1]  # full's own last grid; the cards' grids follow it
    assert (grid.problem, grid.seq_lens, grid.hidden_size, grid.steps) == ("first_bit", [50, 100, 200, 500, 1000],
                                                                            128, 20_000)
    assert {(r.problem, r.arch) for r in full.runs()} >= {("first_bit", "leaky_rnn"), ("adding", "leaky_rnn")}
    assert from_preset("quick").archs == [*BUILT_IN_ARCHS, "leaky_rnn"]
    # the chosen grids stay chosen
    for name in ("seed", "smoke"):
        assert from_preset(name).archs == ["rnn_tanh", "gru", "lstm"]
        assert "first_bit" not in {g.problem for g in from_preset(name).grids}


def test_a_registered_problem_runs_by_name_from_its_declared_grid(example_plugin):
    c = config("--preset", "smoke", "--problems", "first_bit,adding", "--archs", "leaky_rnn,gru",
               "--arch-option", "leaky_rnn.leak=0.25")
    grids = {g.problem: g for g in c.grids}
    assert grids["first_bit"] == ProblemGrid(problem="first_bit", seq_lens=[6], hidden_size=8, steps=40)
    assert grids["adding"].seq_lens == [10]  # the preset's own grid where it has one
    leaky = [r for r in c.runs() if r.arch == "leaky_rnn"]
    assert len(leaky) == 2 and all(r.model.arch_options == {"leaky_rnn.leak": 0.25} for r in leaky)
    assert "leaky_rnn.leak" in " ".join(compare_args.build_parser().format_help().split())


def test_a_bad_option_of_a_plugin_arch_is_refused_with_its_range(example_plugin, capsys):
    with pytest.raises(SystemExit):
        compare_args.preflight(["--problems", "first_bit", "--archs", "leaky_rnn", "--arch-option",
                                "leaky_rnn.leak=0", "--out", "/tmp/unused"])
    assert "--arch-option: leaky_rnn.leak='0': out of range; expected a number in (0, 1]" in capsys.readouterr().err


def test_what_a_plugin_arch_lacks_is_named(example_plugin, capsys):
    """No closed form for its parameter count: a size race is refused by name; its declared options are what the
    inspection accepts."""
    with pytest.raises(SystemExit) as exit_info:
        compare_args.preflight(["--preset", "smoke", "--problems", "first_bit", "--archs", "leaky_rnn", "--match",
                                "params=2000", "--out", "/tmp/unused"])
    assert exit_info.value.code == 2
    assert "arch 'leaky_rnn' has no closed-form parameter count" in capsys.readouterr().err
    from rnnbench import inspection

    table = inspection.parameter_table("leaky_rnn", 1, 4, leak=0.25)
    assert inspection.count(table) == 4 * 1 + 4 * 4 + 2 * 4  # nn.RNNCell: W_ih, W_hh, b_ih, b_hh
    with pytest.raises(ValueError, match="takes no option 'bogus'; its own options: leak"):
        inspection.parameter_table("leaky_rnn", 1, 4, bogus=1)


class _NoGrid(Problem):
    name = "no_grid"
    input_size = output_size = 1
    target_kind = "last"
    loss = "mse"
    metric_name = "mse"
    higher_is_better = False
    baseline_value = 1.0
    threshold = 0.1


def test_a_problem_without_a_default_grid_is_refused_by_name_before_any_work(capsys, tmp_path):
    PROBLEMS["no_grid"] = _NoGrid()
    try:
        with pytest.raises(SystemExit) as exit_info:
            compare_args.preflight(["--problems", "no_grid", "--out", str(tmp_path / "out")])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "problem 'no_grid' declares no default grid" in err and "DefaultGrid(seq_lens=" in err
        assert not (tmp_path / "out").exists()
    finally:
        del PROBLEMS["no_grid"]


def test_a_declared_threshold_is_the_rule_and_the_drawn_line():
    problem = _NoGrid()
    assert problem.solved_rule() == "test MSE <= 0.1" and problem.solved_threshold(50) == 0.1
    assert problem.solved(0.1, 50) and not problem.solved(0.1000001, 50)


@pytest.mark.slow
@pytest.mark.e2e
def test_a_plugin_problem_and_arch_run_through_the_cli(prefect_api, tmp_path):
    """The recipe end to end: a fresh CLI process (and its Ray workers) load the plugin from RNNBENCH_PLUGINS, train
    the new arch on the new problem from its declared grid, and record the new option in its own column."""
    out = tmp_path / "out"
    env = {**os.environ, plugins.ENV: PLUGIN,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", "flows.compare", "--preset", "smoke", "--problems", "first_bit,adding",
         "--archs", "leaky_rnn,gru", "--arch-option", "leaky_rnn.leak=0.25", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # read as plain Parquet: this process's metrics schema was built without the plugin's option column (the CLI
    # validated it against its own before writing)
    metrics = pl.read_parquet(out / "metrics.parquet")
    assert metrics.height == 4 and set(metrics["status"]) == {"ok"}
    assert {(r["problem"], r["arch"]) for r in metrics.iter_rows(named=True)} == {
        ("first_bit", "leaky_rnn"), ("first_bit", "gru"), ("adding", "leaky_rnn"), ("adding", "gru")}
    first = metrics.filter(pl.col("problem") == "first_bit")
    assert set(first["seq_len"]) == {6} and set(first["steps"]) == {40} and set(first["hidden_size"]) == {8}
    assert set(first["solved_rule"]) == {"test accuracy >= 0.99"} and set(first["baseline"]) == {0.5}
    leak = dict(zip(metrics["arch"], metrics["opt_leaky_rnn_leak"], strict=True))
    assert leak == {"leaky_rnn": 0.25, "gru": None}
    summary = pl.read_parquet(out / "summary.parquet")
    assert set(summary["problem"]) == {"first_bit", "adding"} and set(summary["arch"]) == {"leaky_rnn", "gru"}
    report = (out / "report.md").read_text()
    assert "first_bit" in report and "leaky_rnn" in report
