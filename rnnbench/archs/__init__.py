"""The architecture registry: edit ARCHS to add a recurrent architecture."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rnnbench import plugins

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Arch:
    """How to build one architecture's core, and which options it takes."""

    name: str
    build: Callable[..., nn.Module]
    source: str
    # options beyond num_layers/bias/dropout that this architecture takes
    options: frozenset[str] = field(default_factory=frozenset)
    recurrent_inits: tuple[str, ...] = ("default",)


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


ARCHS: dict[str, Arch] = {
    "rnn_tanh": Arch("rnn_tanh", _classic("rnn_tanh"), "Elman 1990; torch.nn.RNN(nonlinearity='tanh')",
                     _CLASSIC_OPTIONS, ("default", "orthogonal")),
    "rnn_relu": Arch("rnn_relu", _classic("rnn_relu"), "torch.nn.RNN(nonlinearity='relu'); IRNN init: Le et al. 2015",
                     _CLASSIC_OPTIONS, ("default", "orthogonal", "identity")),
    "gru": Arch("gru", _classic("gru"), "Cho et al. 2014; torch.nn.GRU", _CLASSIC_OPTIONS, ("default", "orthogonal")),
    "lstm": Arch("lstm", _classic("lstm"), "Hochreiter & Schmidhuber 1997; torch.nn.LSTM",
                 _CLASSIC_OPTIONS | {"proj_size", "forget_bias"}, ("default", "orthogonal")),
    "indrnn": Arch("indrnn", _indrnn, "Li et al. 2018, IndRNN, arXiv:1803.04831"),
    "mingru": Arch("mingru", _mingru, "Feng et al. 2024, Were RNNs All We Needed?, arXiv:2410.01201"),
    "minlstm": Arch("minlstm", _minlstm, "Feng et al. 2024, Were RNNs All We Needed?, arXiv:2410.01201"),
    "lru": Arch("lru", _lru, "Orvieto et al. 2023, Resurrecting RNNs for Long Sequences, arXiv:2303.06349"),
}


# last, so that a plugin module can import Arch from this (half-initialised) module
plugins.extend(ARCHS, "ARCHS")


def get_arch(name: str) -> Arch:
    """Look an architecture up by name; the error lists the valid names."""
    try:
        return ARCHS[name]
    except KeyError:
        raise ValueError(f"unknown arch {name!r}; valid archs: {', '.join(sorted(ARCHS))}") from None


__all__ = ["ARCHS", "Arch", "get_arch"]
