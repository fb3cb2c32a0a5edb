"""The classic PyTorch cells (nn.RNN tanh/relu, nn.GRU, nn.LSTM) behind the common core interface."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnbench.archs import fastpath

CELLS = {"rnn_tanh": nn.RNN, "rnn_relu": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}


def make_rnn(arch: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
             dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
             batch_first: bool = True) -> nn.RNNBase:
    """The torch module for a classic arch key (rnn_tanh/rnn_relu pick nn.RNN's nonlinearity)."""
    kwargs = dict(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, bias=bias,
                  dropout=dropout, bidirectional=bidirectional, batch_first=batch_first)
    if arch.startswith("rnn_"):
        kwargs["nonlinearity"] = arch.removeprefix("rnn_")
    if proj_size:
        kwargs["proj_size"] = proj_size
    return CELLS[arch](**kwargs)


class ClassicCore(nn.Module):
    """nn.RNN / nn.GRU / nn.LSTM, batch first, with every option of the notebook's section 2.

    forward(x [B,T,D], lengths [B] | None) -> (outputs [B,T,output_size], last [B,output_size]).
    With `lengths`, sequences are packed (unsorted), so padding never enters the recurrence, and
    `last` is read from h_n: the forward direction's state at each sequence's true end and, for a
    bidirectional model, the backward direction's final state (it has seen the whole sequence),
    not the output at index T-1, whose backward half has seen one step.

    On the CPU the recurrence runs on rnnbench.archs.fastpath (same parameters, same mathematics; 2.7-4x less
    time per training step at T=200 here) wherever it applies; elsewhere (CUDA, proj_size, half precision, no
    C++ compiler, RNNBENCH_FASTPATH=0, or the attribute `fast_path` set to False) on nn.* itself. `last_path`
    records which ran.
    """

    def __init__(self, arch: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 forget_bias: float | None = None, recurrent_init: str = "default") -> None:
        super().__init__()
        self.arch = arch
        # an attribute, not an option (the signature is the arch's option list, rnnbench/inspection.py)
        self.fast_path = True
        self.last_path = ""  # "fastpath", or "nn: <why the fast path did not apply>"
        self.rnn = make_rnn(arch, input_size, hidden_size, num_layers, bias, dropout, bidirectional, proj_size)
        self.directions = 2 if bidirectional else 1
        self.output_size = self.directions * (proj_size or hidden_size)
        self._init(recurrent_init, forget_bias)

    @torch.no_grad()
    def _init(self, recurrent_init: str, forget_bias: float | None) -> None:
        gates = GATES[self.arch]
        for name, param in self.rnn.named_parameters():
            if name.startswith("weight_hh"):
                if recurrent_init == "orthogonal":
                    for block in param.chunk(gates, dim=0):
                        nn.init.orthogonal_(block)
                elif recurrent_init == "identity":
                    # IRNN (Le et al. 2015): identity recurrence, zero biases, ReLU units
                    param.copy_(torch.eye(*param.shape))
            if name.startswith("bias") and recurrent_init == "identity":
                param.zero_()
        if forget_bias is not None:
            # nn.LSTM gate order is (input, forget, cell, output); two biases add, so one carries it
            hidden = self.rnn.hidden_size
            for name, param in self.rnn.named_parameters():
                if name.startswith("bias_ih"):
                    param[hidden:2 * hidden].fill_(forget_bias)
                elif name.startswith("bias_hh"):
                    param[hidden:2 * hidden].zero_()

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        why_not = fastpath.unsupported(self.rnn, x, lengths) if self.fast_path else "fast_path=False"
        self.last_path = "fastpath" if why_not is None else f"nn: {why_not}"
        if why_not is None:
            # no packing: a sequence stops updating after its last step, outputs past it are zero
            outputs, state = fastpath.run(self.rnn, x, lengths)
        elif lengths is None:
            outputs, state = self.rnn(x)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            outputs, state = self.rnn(packed)
            outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=x.shape[1])
        h_n = state[0] if isinstance(state, tuple) else state
        # h_n: (layers * directions, B, H); the top layer's directions are the last `directions` rows
        last = torch.cat(list(h_n[-self.directions:]), dim=-1)
        return outputs, last
