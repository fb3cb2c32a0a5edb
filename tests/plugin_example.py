"""A test plugin (RNNBENCH_PLUGINS=tests.plugin_example): one new problem and one new arch, each as the README's recipe
writes them, registered without editing the package.

`first_bit` asks for the first bit of a random bit string at its last step; `leaky_rnn` is an Elman cell whose
state leaks towards its candidate at the rate of its own option, `leaky_rnn.leak`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from rnnbench.archs import Arch, ArchOption
from rnnbench.archs.stacked import TIME_DIM, StackedCore
from rnnbench.problems import DefaultGrid, Problem


class FirstBit(Problem):
    """Input (T, 1): bits b_t ~ Bernoulli(0.5). Target: b_0, read at the last step (2 logits, cross-entropy).

        x:  1 0 0 1 1 0    -> y = 1

    Baseline (no memory: the last bits say nothing of the first): chance 0.5. Solved: test accuracy >= 0.99.
    """

    name = "first_bit"
    input_size = 1
    output_size = 2
    target_kind = "last"
    loss = "ce"
    metric_name = "accuracy"
    higher_is_better = True
    min_seq_len = 2
    baseline_value = 0.5
    threshold = 0.99
    default_grid = DefaultGrid(seq_lens=(6,), hidden_size=8, steps=40)

    def generate(self, n, seq_len, rng):
        bits = rng.integers(0, 2, size=(n, seq_len)).astype(np.float32)
        return bits[:, :, None], bits[:, :1, None].copy()

    def semantic_checks(self, x, y, lengths=None):
        bits = x[:, :, 0]
        return {"inputs_are_bits": ("x", np.all((bits == 0) | (bits == 1), axis=1)),
                "target_is_first_bit": ("y", y[:, 0, 0] == bits[:, 0])}


class LeakyRNN(StackedCore):
    """h_t = (1 - leak) h_{t-1} + leak tanh(W x_t + U h_{t-1} + b), h_0 = 0 (Jaeger et al. 2007's leaky units);
    leak = 1 is nn.RNN's tanh cell."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, leak: float = 0.5) -> None:
        super().__init__(input_size, hidden_size, num_layers, dropout)
        self.leak = leak
        self.cells = nn.ModuleList(nn.RNNCell(self.layer_input_size(i), hidden_size, bias=bias)
                                   for i in range(num_layers))

    def step(self, index: int, h_t: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
        if state is None:
            state = h_t.new_zeros(h_t.shape[0], self.hidden_size)
        state = (1 - self.leak) * state + self.leak * self.cells[index](h_t, state)
        return state, state

    def layer(self, index: int, h: Tensor, form: str, state: Tensor | None) -> tuple[Tensor, Tensor | None]:
        time_dim = TIME_DIM[form]
        outs = []
        for h_t in h.unbind(time_dim):
            out, state = self.step(index, h_t, state)
            outs.append(out)
        return torch.stack(outs, dim=time_dim), state


def _leaky(input_size, hidden_size, **options):
    return LeakyRNN(input_size, hidden_size, **options)


PROBLEMS = {"first_bit": FirstBit()}
ARCHS = {"leaky_rnn": Arch("leaky_rnn", _leaky, "test plugin: Jaeger et al. 2007, leaky-integrator units",
                           arch_options=(ArchOption("leak", float, 0.5, "test plugin: half way", low=0.0, high=1.0,
                                                    low_open=True),))}
