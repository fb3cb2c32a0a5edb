"""Tests for rnnbench.inspection and `python -m flows.inspect`: the notebook's counts and shapes, formulas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import flows.inspect
from rnnbench import inspection
from rnnbench.archs import ARCHS
from rnnbench.model import build_model, count_parameters

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CLASSIC = ["rnn_tanh", "rnn_relu", "gru", "lstm"]
MODERN = [name for name in ARCHS if name not in CLASSIC]


def torch_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---- section 2 of the notebook: parameter counts ---------------------------------------------------------

# (arch, options, total printed by the notebook for input 10, hidden 20)
NOTEBOOK_TOTALS = [
    ("rnn_tanh", dict(num_layers=2), 1480),
    ("gru", dict(num_layers=2), 4440),
    ("lstm", dict(num_layers=2), 5920),
    ("rnn_tanh", dict(num_layers=1), 640),
    ("rnn_tanh", dict(num_layers=1, bidirectional=True), 1280),
    ("rnn_relu", dict(num_layers=1), 640),
]


@pytest.mark.parametrize(("arch", "options", "total"), NOTEBOOK_TOTALS,
                         ids=[f"{a}-{'-'.join(f'{k}{v}' for k, v in o.items())}" for a, o, _ in NOTEBOOK_TOTALS])
def test_notebook_totals(arch, options, total):
    table = inspection.parameter_table(arch, 10, 20, **options)
    assert inspection.count(table) == total
    assert inspection.params_formula(arch, 10, 20, **options) == total
    assert inspection.formula_text(arch, 10, 20, **options).endswith(f"= {total}")


def test_notebook_parameter_names_and_shapes():
    """The notebook's 2-layer RNN listing, name by name."""
    expected = [("weight_ih_l0", (20, 10)), ("weight_hh_l0", (20, 20)), ("bias_ih_l0", (20,)), ("bias_hh_l0", (20,)),
                ("weight_ih_l1", (20, 20)), ("weight_hh_l1", (20, 20)), ("bias_ih_l1", (20,)), ("bias_hh_l1", (20,))]
    table = inspection.parameter_table("rnn_tanh", 10, 20, num_layers=2)
    assert [(row["name"], row["shape"]) for row in table] == expected
    gru = inspection.parameter_table("gru", 10, 20, num_layers=2)
    assert [row["shape"] for row in gru][:2] == [(60, 10), (60, 20)]


def test_bidirectional_names_have_reverse_suffix():
    names = [row["name"] for row in inspection.parameter_table("rnn_tanh", 10, 20, bidirectional=True)]
    assert names == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                     "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse"]


def test_dropout_rnn_three_layers():
    # The notebook's output is cut off here; the brief's 2160 does not hold: 640 + 2 * 840 = 2320
    # (layers 1 and 2 read a 20-wide input: 20*20 + 20*20 + 2*20 = 840 each).
    expected = torch_count(nn.RNN(10, 20, num_layers=3, dropout=0.5))
    assert expected == 2320
    assert inspection.count(inspection.parameter_table("rnn_tanh", 10, 20, num_layers=3, dropout=0.5)) == expected
    assert inspection.params_formula("rnn_tanh", 10, 20, num_layers=3, dropout=0.5) == expected


def test_lstm_projection_matches_nn_lstm():
    reference = nn.LSTM(10, 20, num_layers=1, proj_size=10)
    table = inspection.parameter_table("lstm", 10, 20, proj_size=10)
    assert [(row["name"], row["shape"]) for row in table] == [
        (name, tuple(p.shape)) for name, p in reference.named_parameters()]
    assert "weight_hr_l0" in [row["name"] for row in table]
    assert inspection.count(table) == torch_count(reference) == 1960
    assert inspection.params_formula("lstm", 10, 20, proj_size=10) == 1960


# ---- section 3 of the notebook: I/O shapes ---------------------------------------------------------------


@pytest.mark.parametrize("arch", ["rnn_tanh", "gru", "lstm"])
def test_notebook_shapes_batch_first(arch):
    shapes = inspection.io_shapes(arch, 10, 20, num_layers=2, batch_size=5, seq_len=8, batch_first=True)
    assert shapes["input"] == (5, 8, 10)
    assert shapes["output"] == (5, 8, 20)
    assert shapes["h_n"] == (2, 5, 20)
    assert ("c_n" in shapes) == (arch == "lstm")
    if arch == "lstm":
        assert shapes["c_n"] == (2, 5, 20)


@pytest.mark.parametrize("arch", ["rnn_tanh", "gru", "lstm"])
def test_notebook_shapes_seq_first(arch):
    shapes = inspection.io_shapes(arch, 10, 20, num_layers=2, batch_first=False)
    assert shapes["input"] == (8, 5, 10)
    assert shapes["output"] == (8, 5, 20)
    assert shapes["h_n"] == (2, 5, 20)


@pytest.mark.parametrize("arch", ["rnn_tanh", "gru", "lstm"])
def test_notebook_shapes_bidirectional(arch):
    shapes = inspection.io_shapes(arch, 10, 20, num_layers=2, bidirectional=True)
    assert shapes["output"] == (5, 8, 40)
    assert shapes["h_n"] == (4, 5, 20)
    if arch == "lstm":
        assert shapes["c_n"] == (4, 5, 20)


def test_notebook_shapes_lstm_projection():
    shapes = inspection.io_shapes("lstm", 10, 20, num_layers=2, proj_size=15)
    assert shapes == {"input": (5, 8, 10), "output": (5, 8, 15), "h_n": (2, 5, 15), "c_n": (2, 5, 20)}


@pytest.mark.parametrize("arch", MODERN)
def test_modern_shapes_report_last(arch):
    shapes = inspection.io_shapes(arch, 10, 20, num_layers=2)
    assert shapes == {"input": (5, 8, 10), "output": (5, 8, 20), "h_n": (5, 20)}
    with pytest.raises(ValueError, match="batch-first"):
        inspection.io_shapes(arch, 10, 20, batch_first=False)


# ---- the closed forms against the built modules, for every registered architecture -------------------------


@st.composite
def configurations(draw, arch: str) -> dict:
    spec = ARCHS[arch]
    hidden = draw(st.integers(1, 16))
    config = dict(input_size=draw(st.integers(1, 12)), hidden_size=hidden, num_layers=draw(st.integers(1, 3)),
                  bias=draw(st.booleans()))
    if "bidirectional" in spec.options:
        config["bidirectional"] = draw(st.booleans())
    if "proj_size" in spec.options and hidden > 1:
        config["proj_size"] = draw(st.integers(0, hidden - 1))
    if arch == "lru":
        config["state_size"] = draw(st.none() | st.integers(1, 16))
    return config


@pytest.mark.parametrize("arch", list(ARCHS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_formula_equals_actual_count(arch, data):
    config = data.draw(configurations(arch))
    core = inspection.build_core(arch, **config)
    actual = torch_count(core)
    assert inspection.params_formula(arch, **config) == actual, config
    assert inspection.count(inspection.parameter_table(arch, **config)) == actual
    assert inspection.formula_text(arch, **config).endswith(f"= {actual}")
    if arch in CLASSIC:
        # the names and shapes are PyTorch's own for the same options
        kwargs = dict(num_layers=config["num_layers"], bias=config["bias"], bidirectional=config["bidirectional"])
        if config.get("proj_size"):
            kwargs["proj_size"] = config["proj_size"]
        reference = {"rnn_tanh": nn.RNN, "rnn_relu": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[arch](
            config["input_size"], config["hidden_size"], **kwargs)
        assert [(row["name"], row["shape"]) for row in inspection.parameter_table(arch, **config)] == [
            (name, tuple(p.shape)) for name, p in reference.named_parameters()]
    if config.get("state_size") is None:
        # inspection builds the very core the pipeline trains (build_model passes no arch-specific kwargs)
        pipeline_options = {k: v for k, v in config.items() if k not in ("input_size", "hidden_size", "state_size")}
        model = build_model(arch, config["input_size"], 1, "last", config["hidden_size"], **pipeline_options)
        assert count_parameters(model.core) == actual


def test_formula_text_shows_terms():
    text = inspection.formula_text("lstm", 10, 20, num_layers=2)
    assert "G=4" in text and "1*2560 + 1*1*3360 = 5920" in text


@pytest.mark.parametrize(("call", "match"), [
    (lambda: inspection.params_formula("nope", 10, 20), "valid archs: .*lstm"),
    (lambda: inspection.params_formula("gru", 10, 20, proj_size=5), "proj_size=5"),
    (lambda: inspection.params_formula("lstm", 10, 20, proj_size=20), "proj_size=20 must be smaller than hidden_size"),
    (lambda: inspection.params_formula("lstm", 10, 20, proj_size=-1), "got -1"),
    (lambda: inspection.params_formula("gru", 0, 20), "input_size .* got 0"),
    (lambda: inspection.params_formula("lru", 10, 20, num_layers=-2), "num_layers .* got -2"),
    (lambda: inspection.params_formula("minlstm", 10, 20, bidirectional=True), "'minlstm' has no bidirectional"),
    (lambda: inspection.params_formula("gru", 10, 20, state_size=4), "no option 'state_size'"),
    (lambda: inspection.params_formula("rnn_tanh", 10, 20, dropout=0.5), "dropout=0.5"),
    (lambda: inspection.io_shapes("gru", 10, 20, seq_len=0), "seq_len .* got 0"),
])
def test_bad_options_name_the_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- the CLI, in process ---------------------------------------------------------------------------------


def test_cli_text(capsys):
    assert flows.inspect.main(["--arch", "lstm", "--input-size", "10", "--hidden-size", "20", "--num-layers", "2"]) == 0
    out = capsys.readouterr().out
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l1", "bias_hh_l1"):
        assert name in out
    assert "(80, 10)" in out
    assert "total parameters: 5920" in out
    assert "formula: 5920 (matches the count)" in out
    assert "output (5, 8, 20)" in out and "h_n    (2, 5, 20)" in out and "c_n    (2, 5, 20)" in out


def test_cli_text_seq_first_bidirectional(capsys):
    assert flows.inspect.main(["--arch", "rnn_tanh", "--bidirectional", "--num-layers", "2", "--seq-first"]) == 0
    out = capsys.readouterr().out
    assert "weight_hh_l1_reverse" in out
    assert "input  (8, 5, 10)" in out and "output (8, 5, 40)" in out and "h_n    (4, 5, 20)" in out
    assert "c_n" not in out


def test_cli_json(capsys):
    argv = ["--arch", "lstm", "--num-layers", "2", "--proj-size", "10", "--no-bias", "--batch-size", "3",
            "--seq-len", "4", "--json"]
    assert flows.inspect.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"arch", "params", "params_formula", "parameters", "shapes"} <= set(report)
    assert report["arch"] == "lstm"
    assert report["params"] == report["params_formula"] == torch_count(nn.LSTM(10, 20, 2, bias=False, proj_size=10))
    assert report["parameters"][0] == {"name": "weight_ih_l0", "shape": [80, 10]}
    assert not any(row["name"].startswith("bias") for row in report["parameters"])
    assert report["shapes"] == {"input": [3, 4, 10], "output": [3, 4, 10], "h_n": [2, 3, 10], "c_n": [2, 3, 20]}


@pytest.mark.parametrize("arch", MODERN)
def test_cli_json_modern(arch, capsys):
    assert flows.inspect.main(["--arch", arch, "--num-layers", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["params"] == report["params_formula"]
    assert report["shapes"]["h_n"] == [5, 20]


@pytest.mark.parametrize(("argv", "named"), [
    (["--arch", "transformer"], "'transformer'"),
    (["--arch", "gru", "--proj-size", "5"], "proj_size=5"),
    (["--arch", "lstm", "--proj-size", "20"], "proj_size=20"),
    (["--arch", "lstm", "--proj-size", "25", "--hidden-size", "20"], "proj_size=25"),
    (["--arch", "gru", "--input-size", "0"], "got 0"),
    (["--arch", "gru", "--hidden-size", "-3"], "got -3"),
    (["--arch", "gru", "--num-layers", "0"], "num_layers"),
    (["--arch", "lstm", "--batch-size", "0"], "batch_size"),
    (["--arch", "lstm", "--seq-len", "-1"], "seq_len"),
    (["--arch", "mingru", "--bidirectional"], "'mingru'"),
    (["--arch", "lru", "--bidirectional"], "'lru'"),
    (["--arch", "indrnn", "--seq-first"], "'indrnn'"),
    (["--arch", "gru", "--state-size", "4"], "state_size"),
])
def test_cli_bad_input(argv, named, capsys):
    with pytest.raises(SystemExit) as exc:
        flows.inspect.main(argv)
    assert exc.value.code != 0
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], captured.err


def test_cli_unknown_arch_lists_valid_ones(capsys):
    with pytest.raises(SystemExit):
        flows.inspect.main(["--arch", "transformer"])
    err = capsys.readouterr().err
    assert all(name in err for name in ARCHS)


def test_cli_imports_neither_prefect_nor_ray():
    code = ("import sys, flows.inspect; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'ray')); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True, timeout=120)


def test_io_shapes_leave_grad_mode_alone():
    inspection.io_shapes("gru", 3, 4)
    assert torch.is_grad_enabled()
