"""One model builder: an architecture's core plus a linear readout; it knows sizes, never a problem."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from rnnbench.archs import get_arch


class SequenceModel(nn.Module):
    """core -> linear readout, at every step ("per_step") or at each sequence's true last step ("last")."""

    def __init__(self, core: nn.Module, output_size: int, target_kind: str) -> None:
        super().__init__()
        self.core = core
        self.readout = nn.Linear(core.output_size, output_size)
        self.target_kind = target_kind

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x [B,T,D] -> [B,T,O] (per_step) or [B,1,O] (last)."""
        if self.target_kind == "per_step":
            outputs = self.core(x, lengths)[0]
            if not outputs.is_contiguous() and outputs.transpose(0, 1).is_contiguous():
                # time-major memory seen batch-major (the modern cores' recurrent form): read out every step in
                # that layout and transpose the small result; a readout of the view would copy every hidden state
                # forward and backward (LRU at T=100, B=64, H=64: ~1.7 of ~21 ms a training step)
                return self.readout(outputs.transpose(0, 1)).transpose(0, 1)
            return self.readout(outputs)
        # a core that can give `last` alone skips the other steps' outputs (StackedCore.forward_last)
        forward_last = getattr(self.core, "forward_last", None)
        last = forward_last(x, lengths) if forward_last is not None else self.core(x, lengths)[1]
        return self.readout(last).unsqueeze(1)


def build_model(arch: str, input_size: int, output_size: int, target_kind: str, hidden_size: int,
                num_layers: int = 1, bias: bool = True, dropout: float = 0.0, bidirectional: bool = False,
                proj_size: int = 0, forget_bias: float | None = None, recurrent_init: str = "default",
                arch_options: Mapping[str, Any] | None = None) -> SequenceModel:
    """`arch_options`: the arch's own settings by name (rnnbench.archs.options.resolve gives all of them for a
    run); one left out takes the core's constructor default."""
    spec = get_arch(arch)
    options = dict(num_layers=num_layers, bias=bias, dropout=dropout)
    extra = dict(bidirectional=bidirectional, proj_size=proj_size, forget_bias=forget_bias,
                 recurrent_init=recurrent_init)
    if spec.options:
        options |= {k: v for k, v in extra.items() if k in spec.options or k == "recurrent_init"}
    known = {option.name for option in spec.arch_options}
    unknown = sorted(set(arch_options or {}) - known)
    if unknown:
        raise ValueError(f"arch {arch!r} has no option {unknown[0]!r}; its options: "
                         f"{', '.join(sorted(known)) or 'none'}")
    options |= dict(arch_options or {})
    core = spec.build(input_size, hidden_size, **options)
    return SequenceModel(core, output_size, target_kind)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def state_size(arch: str, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
               proj_size: int = 0, state: int | None = None) -> int:
    """Numbers a model carries from one step to the next, per sequence (what it can remember with)."""
    directions = 2 if bidirectional else 1
    if arch == "lstm":
        per_layer = (proj_size or hidden_size) + hidden_size  # h (projected) and c
    elif arch == "lru":
        per_layer = 2 * (state or hidden_size)  # complex diagonal state: real and imaginary parts
    else:
        per_layer = hidden_size
    return per_layer * num_layers * directions
