"""The architecture registry: edit ARCHS to add a recurrent architecture (and declare its options there)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from rnnbench import plugins
from rnnbench.archs.spec import Arch, ArchOption, Value

if TYPE_CHECKING:
    from torch import nn


_CLASSIC_OPTIONS = frozenset({"bidirectional"})


# Builders import their module when called: the registry itself stays torch-free, so the driver (which
# only validates configs and submits jobs) starts without importing torch.
def _classic(arch: str) -> Callable[..., nn.Module]:
    def build(input_size, hidden_size, **options):
        from rnnbench.archs.classic import ClassicCore

        return ClassicCore(arch, input_size, hidden_size, **options)
    return build


def _indrnn(input_size, hidden_size, **options):
    from rnnbench.archs.indrnn import IndRNN

    return IndRNN(input_size, hidden_size, **options)


def _mingru(input_size, hidden_size, **options):
    from rnnbench.archs.mingru import MinGRU

    return MinGRU(input_size, hidden_size, **options)


def _minlstm(input_size, hidden_size, **options):
    from rnnbench.archs.minlstm import MinLSTM

    return MinLSTM(input_size, hidden_size, **options)


def _lru(input_size, hidden_size, **options):
    from rnnbench.archs.lru import LRU

    return LRU(input_size, hidden_size, **options)


# Each option's default comes from the architecture's paper (its `source` says where) or, where it is None, from
# the run (`derive`) or the module's own init. Every run records every resolved value in its metrics row
# (rnnbench.rows), and ModelOptions.for_run writes them into the run's spec, hence its id.
_LSTM_OPTIONS = (
    ArchOption("forget_bias", float, None, "None keeps nn.LSTM's init (both biases U(-1/sqrt(H), 1/sqrt(H))); "
               "Jozefowicz et al. 2015 (ICML, 'An Empirical Exploration of Recurrent Network Architectures') "
               "recommend 1.0, which closes much of the LSTM-GRU gap", field="forget_bias"),
)
_INDRNN_OPTIONS = (
    ArchOption("recurrent_max", float, None, "Li et al. 2018 (arXiv:1803.04831), sec. 3.1 and the adding "
               "problem (sec. 4.1): |u| <= 2^(1/T) for the training length T, so that the gradient over T steps "
               "grows by at most 2; derived from the run's seq_len", low=0.0, low_open=True,
               derive=lambda shape: 2.0 ** (1.0 / shape.seq_len)),
    ArchOption("input_init_std", float, None, "None keeps nn.Linear's init (any input scale, deep stacks); Li et "
               "al. 2018 drew the input weights from N(0, 0.001) on the adding problem", low=0.0, low_open=True),
)
_LRU_RING = ("Orvieto et al. 2023 (arXiv:2303.06349), sec. 3.3-3.4: for long-range memory the eigenvalues start on a "
             "ring close to the unit circle, r_min 0.9 to r_max 0.999, with phases in [0, pi/10], as for its "
             "longest task, PathX (its reference code's generic defaults: 0, 1, 6.28)")
_LRU_OPTIONS = (
    ArchOption("r_min", float, 0.9, _LRU_RING, low=0.0, high=1.0, high_open=True),
    ArchOption("r_max", float, 0.999, _LRU_RING, low=0.0, high=1.0, low_open=True),
    ArchOption("max_phase", float, math.pi / 10, _LRU_RING, low=0.0, high=2 * math.pi, low_open=True),
    ArchOption("state_size", int, None, "the complex state size N; None: N = hidden_size (the paper chooses N "
               "apart from the model width H)", low=1, derive=lambda shape: shape.hidden_size),
)


def _lru_ring(values: dict[str, Value | None]) -> None:
    if values["r_min"] >= values["r_max"]:
        raise ValueError(f"lru.r_min={values['r_min']} must be smaller than lru.r_max={values['r_max']}")


ARCHS: dict[str, Arch] = {
    "rnn_tanh": Arch("rnn_tanh", _classic("rnn_tanh"), "Elman 1990; torch.nn.RNN(nonlinearity='tanh')",
                     _CLASSIC_OPTIONS, ("default", "orthogonal"), family="dense_nonlinear"),
    "rnn_relu": Arch("rnn_relu", _classic("rnn_relu"), "torch.nn.RNN(nonlinearity='relu'); IRNN init: Le et al. 2015",
                     _CLASSIC_OPTIONS, ("default", "orthogonal", "identity"), family="dense_relu"),
    "gru": Arch("gru", _classic("gru"), "Cho et al. 2014; torch.nn.GRU", _CLASSIC_OPTIONS, ("default", "orthogonal"),
                family="dense_nonlinear"),
    "lstm": Arch("lstm", _classic("lstm"), "Hochreiter & Schmidhuber 1997; torch.nn.LSTM",
                 _CLASSIC_OPTIONS | {"proj_size", "forget_bias"}, ("default", "orthogonal"), _LSTM_OPTIONS,
                 family="dense_nonlinear"),
    "indrnn": Arch("indrnn", _indrnn, "Li et al. 2018, IndRNN, arXiv:1803.04831", arch_options=_INDRNN_OPTIONS,
                   family="diagonal_relu"),
    "mingru": Arch("mingru", _mingru, "Feng et al. 2024, Were RNNs All We Needed?, arXiv:2410.01201",
                   family="diagonal_positive"),
    "minlstm": Arch("minlstm", _minlstm, "Feng et al. 2024, Were RNNs All We Needed?, arXiv:2410.01201",
                    family="diagonal_positive"),
    "lru": Arch("lru", _lru, "Orvieto et al. 2023, Resurrecting RNNs for Long Sequences, arXiv:2303.06349",
                arch_options=_LRU_OPTIONS, check_options=_lru_ring, family="diagonal_time_invariant"),
}


# last, so that a plugin module can import Arch from this (half-initialised) module
plugins.extend(ARCHS, "ARCHS")


def get_arch(name: str) -> Arch:
    """Look an architecture up by name; the error lists the valid names."""
    try:
        return ARCHS[name]
    except KeyError:
        raise ValueError(f"unknown arch {name!r}; valid archs: {', '.join(sorted(ARCHS))}") from None


__all__ = ["ARCHS", "Arch", "ArchOption", "get_arch"]
