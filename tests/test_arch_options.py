"""Each architecture's own options (issue 12 item 3): the ARCH.KEY=VALUE syntax and its refusals, the paper defaults,
IndRNN's bound from T, every option reaching the built module, the run id, and the metrics columns."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from flows.compare_args import build_parser, config_from_args
from rnnbench import inspection, train
from rnnbench.archs import ARCHS
from rnnbench.archs.indrnn import IndRNN
from rnnbench.archs.lru import LRU
from rnnbench.archs.options import RunShape, check_arch_options, option_columns, parse_assignments, resolve
from rnnbench.config import ModelOptions, ProblemGrid, RunSpec, from_preset
from rnnbench.model import build_model
from rnnbench.rows import base_row, failed_row
from schemas.metrics import Metrics, metrics_frame, validated
from tasks import dataset_store

# ---- the syntax, and what it refuses --------------------------------------------------------------------------


def test_repeatable_and_comma_separated():
    texts = parse_assignments(["lru.r_max=0.999,lru.r_min=0.5", " indrnn.recurrent_max = 1.01 ", "lru.r_max=0.999"])
    assert texts == {"lru.r_max": "0.999", "lru.r_min": "0.5", "indrnn.recurrent_max": "1.01"}
    assert check_arch_options(texts) == {"indrnn.recurrent_max": 1.01, "lru.r_max": 0.999, "lru.r_min": 0.5}
    typed = check_arch_options({"lru.state_size": "32", "lru.r_max": 1})
    assert typed == {"lru.r_max": 1.0, "lru.state_size": 32}
    assert isinstance(typed["lru.state_size"], int) and isinstance(typed["lru.r_max"], float)


@pytest.mark.parametrize(("items", "match"), [
    (["lru.r_max"], r"'lru.r_max': expected ARCH.KEY=VALUE"),
    (["lru.r_max=0.99", "lru.r_max=0.999"], "lru.r_max given twice: 0.99 and 0.999"),
    (["r_max=0.9"], r"'r_max': expected ARCH.KEY, e.g. lru.r_max; archs with options: indrnn \(recurrent_max"),
    (["lruu.r_max=0.9"], r"unknown arch 'lruu'; archs with options: indrnn .*, lru \(r_min, r_max, max_phase, "
                         r"state_size\), lstm \(forget_bias\)"),
    (["lru.r_maxx=0.9"], "arch 'lru' has no option 'r_maxx'; its options: r_min, r_max, max_phase, state_size"),
    (["gru.forget_bias=1"], "arch 'gru' takes no options; archs with options: indrnn"),
    (["lru.r_max=abc"], r"lru.r_max='abc': not a number; expected a number in \(0, 1\]"),
    (["lru.r_max=1.5"], r"lru.r_max='1.5': out of range; expected a number in \(0, 1\]"),
    (["lru.r_min=-0.1"], r"lru.r_min='-0.1': out of range; expected a number in \[0, 1\)"),
    (["lru.state_size=2.5"], r"lru.state_size='2.5': not an integer; expected an integer in \[1, inf\)"),
    (["lru.state_size=0"], r"lru.state_size='0': out of range"),
    (["lru.max_phase=nan"], r"lru.max_phase='nan': expected a number in \(0, 6.28319\]"),
    (["indrnn.recurrent_max=0"], r"indrnn.recurrent_max='0': out of range; expected a number in \(0, inf\)"),
    (["lru.r_min=0.9995"], "lru.r_min=0.9995 must be smaller than lru.r_max=0.999"),  # against the default
])
def test_refusals_name_the_key_or_value(items, match):
    with pytest.raises(ValueError, match=match):
        check_arch_options(parse_assignments(items))


def test_typed_values_are_checked_too():
    with pytest.raises(ValueError, match="lru.r_max=True: expected a number in .*not a boolean"):
        check_arch_options({"lru.r_max": True})
    with pytest.raises(ValueError, match="must map ARCH.KEY to a value"):
        check_arch_options(["lru.r_max=1"])
    with pytest.raises(ValueError, match="arch 'lru' has no option 'r_maxx'"):
        ModelOptions(arch_options={"lru.r_maxx": 1})


def _config(argv):
    return config_from_args(build_parser().parse_args(["--preset", "smoke", *argv]))


def test_cli_flag():
    config = _config(["--archs", "lru,gru", "--arch-option", "lru.r_max=0.9999,lru.r_min=0.5",
                      "--arch-option", "lru.max_phase=0.5"])
    assert config.model.arch_options == {"lru.max_phase": 0.5, "lru.r_max": 0.9999, "lru.r_min": 0.5}
    assert "--arch-option ARCH.KEY=VALUE" in build_parser().format_help()


@pytest.mark.parametrize(("argv", "message"), [
    (["--archs", "lru", "--arch-option", "lru.r_maxx=1"],
     "--arch-option: arch option 'lru.r_maxx': arch 'lru' has no option 'r_maxx'; its options: r_min, r_max, "
     "max_phase, state_size"),
    (["--archs", "lru", "--arch-option", "lru.r_max=abc"],
     "--arch-option: lru.r_max='abc': not a number; expected a number in (0, 1]"),
    (["--archs", "gru,lstm", "--arch-option", "lru.r_max=0.95"],
     "--arch-option for lru, which --archs does not run (gru, lstm)"),
    (["--archs", "lstm", "--forget-bias", "1", "--arch-option", "lstm.forget_bias=2"],
     "forget_bias=1.0 and lstm.forget_bias=2.0 disagree; give one"),
    (["--archs", "gru", "--forget-bias", "1"], "forget_bias is an LSTM option; arch 'gru' has none"),
])
def test_cli_refusals(argv, message):
    with pytest.raises(ValueError) as err:
        _config(argv)
    assert message in str(err.value)


# ---- the defaults, from each paper ----------------------------------------------------------------------------


def test_defaults_per_paper():
    shape = RunShape(seq_len=100, hidden_size=64)
    assert resolve("lru", {}, shape) == {"r_min": 0.9, "r_max": 0.999, "max_phase": math.pi / 10, "state_size": 64}
    assert resolve("indrnn", {}, shape) == {"recurrent_max": 2.0 ** (1 / 100), "input_init_std": None}
    assert resolve("lstm", {}, shape) == {"forget_bias": None}  # nn.LSTM's own init unless asked
    assert resolve("gru", {}, shape) == {}
    for arch in ARCHS.values():
        for option in arch.arch_options:
            assert option.source, f"{arch.name}.{option.name} says where its default comes from"
    assert "Orvieto et al. 2023" in ARCHS["lru"].arch_options[0].source
    assert "Li et al. 2018" in ARCHS["indrnn"].arch_options[0].source


@pytest.mark.parametrize("cls", [LRU, IndRNN])
def test_module_defaults_are_the_registry_defaults(cls):
    """One set of defaults: the core's constructor agrees with its registry entry (None: derived or own init)."""
    arch = {LRU: "lru", IndRNN: "indrnn"}[cls]
    params = inspect.signature(cls).parameters
    for option in ARCHS[arch].arch_options:
        assert params[option.name].default == option.default, option.name


@pytest.mark.parametrize(("seq_len", "bound"), [
    (100, 1.0069555500567189),  # 2 ** 0.01: the paper's adding problem at T=100
    (50, 1.0139594797900291),  # 2 ** 0.02
    (1000, 1.0006933874625807),  # 2 ** 0.001
    (10, 1.0717734625362931),  # 2 ** 0.1
])
def test_indrnn_bound_from_the_training_length(seq_len, bound):
    values = ModelOptions().arch_values("indrnn", seq_len, 64)
    assert values["recurrent_max"] == pytest.approx(bound, rel=1e-15)
    core = build_model("indrnn", 2, 1, "last", 8, arch_options=values).core
    assert core.recurrent_max == pytest.approx(bound, rel=1e-15)
    assert all((u <= bound).all() for u in core.recurrent_weight)
    given = ModelOptions(arch_options={"indrnn.recurrent_max": 1.5}).arch_values("indrnn", seq_len, 64)
    assert given["recurrent_max"] == 1.5  # a given bound wins over the rule


# ---- every option reaches the module ---------------------------------------------------------------------------


def _core(arch, **options):
    torch.manual_seed(0)
    values = ModelOptions(arch_options={f"{arch}.{k}": v for k, v in options.items()}).arch_values(arch, 50, 16)
    return build_model(arch, 2, 1, "last", 16, arch_options=values).core


def test_lru_options_reach_the_ring():
    core = _core("lru", r_min=0.4, r_max=0.6, max_phase=0.05, state_size=5)
    layer = core.lrus[0]
    modulus, phase = torch.exp(-torch.exp(layer.nu_log)), torch.exp(layer.theta_log)
    assert ((modulus >= 0.4 - 1e-6) & (modulus <= 0.6 + 1e-6)).all()
    assert (phase <= 0.05 + 1e-7).all()
    assert layer.B_re.shape == (5, 16) and core.state_size == 5


def test_indrnn_options_reach_the_module():
    core = _core("indrnn", recurrent_max=0.5, input_init_std=0.001)
    assert core.recurrent_max == 0.5 and core.input_init_std == 0.001
    assert core.input_proj[0].weight.std().item() == pytest.approx(0.001, rel=0.5)
    assert torch.count_nonzero(core.input_proj[0].bias) == 0


def test_lstm_forget_bias_by_either_spelling():
    for options in (ModelOptions(arch_options={"lstm.forget_bias": 1.0}), ModelOptions(forget_bias=1.0)):
        values = options.arch_values("lstm", 50, 16)
        assert values == {"forget_bias": 1.0}
        rnn = build_model("lstm", 2, 1, "last", 16, arch_options=values).core.rnn
        assert torch.equal(rnn.bias_ih_l0[16:32], torch.ones(16))
        assert torch.equal(rnn.bias_hh_l0[16:32], torch.zeros(16))
    # the scoped spelling leaves other archs alone
    assert ModelOptions(arch_options={"lstm.forget_bias": 1.0}).arch_values("gru", 50, 16) == {}


def test_unknown_option_refused_by_the_builder():
    with pytest.raises(ValueError, match="arch 'gru' has no option 'r_max'; its options: none"):
        build_model("gru", 2, 1, "last", 8, arch_options={"r_max": 0.9})


# ---- run id, metrics row ---------------------------------------------------------------------------------------


def _spec(arch="lru", model=None, seq_len=10):
    return RunSpec(problem="adding", arch=arch, seq_len=seq_len, seed=0, hidden_size=8, steps=10, lr=1e-3,
                   batch_size=4, eval_every=5, n_train=8, n_test=8, model=model or ModelOptions())


def test_run_id_changes_with_an_option():
    plain = _spec()
    tuned = _spec(model=ModelOptions(arch_options={"lru.r_max": 0.9999}))
    other = _spec(model=ModelOptions(arch_options={"lru.r_max": 0.99}))
    assert len({plain.run_id, tuned.run_id, other.run_id}) == 3
    # a spec without arch options dumps as before they existed: stored results keep matching
    assert "arch_options" not in plain.model_dump(mode="json")["model"]
    assert RunSpec(**tuned.model_dump(mode="json")) == tuned  # and round-trips


def test_for_run_writes_out_every_option_of_the_run():
    shared = ModelOptions(arch_options={"lru.r_max": 0.9999, "lstm.forget_bias": 1.0})
    lru = shared.for_run("lru", 100, 64)
    assert lru.arch_options == {"lru.r_min": 0.9, "lru.r_max": 0.9999, "lru.max_phase": math.pi / 10,
                                "lru.state_size": 64}
    assert shared.for_run("lstm", 100, 64).forget_bias == 1.0
    gru = shared.for_run("gru", 100, 64)
    assert gru == ModelOptions()  # other archs' keys dropped: a gru run's id does not move with them
    assert _spec("gru", gru).run_id == _spec("gru").run_id
    # defaults written out: asking for the default value explicitly is the same run
    explicit = ModelOptions(arch_options={"lru.r_max": 0.999}).for_run("lru", 100, 64)
    assert explicit == ModelOptions().for_run("lru", 100, 64)
    assert ModelOptions().for_run("indrnn", 100, 64).arch_options == {"indrnn.recurrent_max": 2 ** 0.01}
    assert ModelOptions().for_run("indrnn", 50, 64) != ModelOptions().for_run("indrnn", 100, 64)
    assert hash(lru) == hash(ModelOptions(**lru.model_dump()))


def test_metrics_row_has_a_column_per_option():
    assert set(option_columns()) == {"opt_indrnn_recurrent_max", "opt_indrnn_input_init_std", "opt_lru_r_min",
                                     "opt_lru_r_max", "opt_lru_max_phase", "opt_lru_state_size"}
    assert set(option_columns()) <= set(Metrics.to_schema().columns)  # declared in the strict schema
    lru = base_row(_spec(model=ModelOptions(arch_options={"lru.r_max": 0.9999})))
    assert (lru["opt_lru_r_min"], lru["opt_lru_r_max"], lru["opt_lru_state_size"]) == (0.9, 0.9999, 8)
    assert lru["opt_lru_max_phase"] == pytest.approx(math.pi / 10)
    assert lru["opt_indrnn_recurrent_max"] is None
    indrnn = base_row(_spec("indrnn", seq_len=50))
    assert indrnn["opt_indrnn_recurrent_max"] == 2 ** (1 / 50) and indrnn["opt_lru_r_max"] is None
    lstm = base_row(_spec("lstm", ModelOptions(arch_options={"lstm.forget_bias": 1.0})))
    assert lstm["forget_bias"] == 1.0 and all(lstm[c] is None for c in option_columns())
    rows = [failed_row(_spec(arch, seq_len=20), "x") for arch in ("lru", "indrnn", "gru")]
    validated(metrics_frame(rows), Metrics, "rows")


def test_a_trained_run_builds_and_records_the_same_values(tmp_path, monkeypatch):
    built = []
    original = train.build_model
    monkeypatch.setattr(train, "build_model", lambda *a, **k: built.append(original(*a, **k)) or built[-1])
    root = str(tmp_path)
    grid = ProblemGrid(problem="sequential_xor", seq_lens=[10], hidden_size=8, steps=4)
    config = from_preset("smoke", grids=[grid], archs=["lru", "indrnn"], data_root=root, eval_points=2,
                         model=ModelOptions(arch_options={"lru.r_min": 0.3, "lru.r_max": 0.5}))
    for dataset in config.datasets():
        dataset_store.build(dataset, root)
    for spec in config.runs():
        row = train.train_and_evaluate(spec, lambda d: dataset_store.load(d.path(root), expected=d)).row
        core = built[-1].core
        if spec.arch == "lru":
            modulus = torch.exp(-torch.exp(core.lrus[0].nu_log.detach()))
            assert (row["opt_lru_r_min"], row["opt_lru_r_max"]) == (0.3, 0.5)
            assert ((modulus > 0.29) & (modulus < 0.51)).all()  # a few updates from the ring it started on
        else:
            assert row["opt_indrnn_recurrent_max"] == core.recurrent_max == 2 ** (1 / 10)
    assert len(built) == 2


def test_closed_form_count_follows_the_state_size_option():
    core = _core("lru", state_size=5)
    assert inspection.params_formula("lru", 2, 16, state_size=5) == sum(p.numel() for p in core.parameters())
