"""Theory's predictions: lookups by problem, problem settings and arch family, and how a verdict reads against them."""

from __future__ import annotations

import pytest

from rnnbench import theory
from rnnbench.archs import ARCHS
from rnnbench.archs.spec import FAMILIES


def test_every_registered_arch_declares_a_known_family():
    assert all(arch.family in FAMILIES for arch in ARCHS.values())
    theory.check_registry()


@pytest.mark.parametrize(("problem", "options", "arch", "expected"), [
    ("parity", {}, "mingru", "cannot"),
    ("parity", {}, "minlstm", "cannot"),
    ("parity", {}, "lru", "cannot"),
    ("parity", {}, "rnn_tanh", "can"),
    ("parity", {}, "gru", "can"),
    ("parity", {}, "lstm", "can"),
    ("parity", {}, "rnn_relu", None),  # no source registered for ReLU RNNs or IndRNN
    ("parity", {}, "indrnn", None),
    ("group_word", {"group": "z2"}, "minlstm", "cannot"),
    ("group_word", {"group": "z2"}, "lstm", "can"),
    ("group_word", {"group": "a5"}, "lru", "cannot"),
    ("group_word", {"group": "s5"}, "mingru", "cannot"),
    ("group_word", {"group": "s5"}, "gru", "can"),
    ("group_word", {"group": "s3"}, "mingru", None),  # none registered for s3, z60
    ("group_word", {"group": "z60"}, "lstm", None),
    ("group_word", {}, "mingru", None),
    ("adding", {}, "mingru", None),
    ("parity", {}, "not_an_arch", None),
])
def test_predict_looks_up_problem_settings_and_family(problem, options, arch, expected):
    prediction = theory.predict(problem, arch, options)
    assert (prediction.verdict if prediction else None) == expected
    if prediction:
        assert prediction.source and prediction.beyond_training_length


def test_reading_flags_a_solved_cannot_and_never_calls_an_unsolved_can_cannot():
    cannot = theory.predict("parity", "mingru")
    can = theory.predict("parity", "lstm")
    kind, words = theory.reading(cannot, solved=True)
    assert kind == theory.FLAGGED and "a bug or a leak until shown otherwise" in words
    assert theory.reading(cannot, solved=False)[0] == theory.AGREES
    kind, words = theory.reading(can, solved=False)
    assert kind == theory.NOT_LEARNED and "not learned at this budget" in words
    assert "cannot" not in words
    assert theory.reading(can, solved=True)[0] == theory.AGREES
    assert theory.reading(can, solved=None)[0] == theory.UNTESTED


def test_the_registry_refuses_unknown_families_and_overlapping_predictions():
    bad = theory.Prediction("parity", ("quantum",), "can", "x", "y")
    with pytest.raises(ValueError, match="unknown families"):
        theory.check_registry((bad,))
    a = theory.Prediction("parity", ("dense_nonlinear",), "can", "x", "y")
    b = theory.Prediction("parity", ("dense_nonlinear",), "cannot", "x", "y")
    with pytest.raises(ValueError, match="overlap"):
        theory.check_registry((a, b))
    z2 = theory.Prediction("group_word", ("dense_nonlinear",), "can", "x", "y", {"group": ("z2",)})
    a5 = theory.Prediction("group_word", ("dense_nonlinear",), "can", "x", "y", {"group": ("a5",)})
    theory.check_registry((z2, a5))
