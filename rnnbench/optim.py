"""Adam exactly as torch.optim.Adam computes it, without torch.optim.Optimizer's per-process compiler import.

torch.optim.Optimizer.step (and add_param_group, zero_grad) import torch._dynamo on first use, to mark
themselves for torch.compile: about 2 CPU-s in every fresh process (sympy, the FX and inductor front ends),
which is more than a Ray worker spends training a small sweep's jobs. Nothing here is compiled, so this
holds Adam's state itself and calls torch's public functional Adam (`torch.optim.adam.adam`, the function
Adam.step calls), with Adam's defaults: the same kernels, so the same numbers bit for bit
(tests/test_optim.py compares the two)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim.adam import adam


class Adam:
    """Adam(params, lr) with torch.optim.Adam's defaults (betas 0.9/0.999, eps 1e-8, no weight decay, no
    amsgrad, foreach chosen by torch per device); only what a training loop uses: zero_grad and step."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("Adam got no parameters that require gradients")
        if not lr > 0:
            raise ValueError(f"Adam learning rate must be > 0, got {lr!r}")
        self.lr, self.betas, self.eps = lr, betas, eps
        self.has_complex = any(torch.is_complex(p) for p in self.params)  # fixed with the parameters
        # torch.optim.Adam's per-parameter state, made up front rather than at the first step
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        # a CPU scalar per parameter, as Adam keeps when neither capturable nor fused
        self.steps = [torch.tensor(0.0, dtype=_scalar_dtype()) for _ in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        # a parameter without a gradient is left alone and its step count not advanced, as Adam does
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        params = [self.params[i] for i in live]
        adam(params, [p.grad for p in params], [self.exp_avgs[i] for i in live],
             [self.exp_avg_sqs[i] for i in live], [], [self.steps[i] for i in live],
             has_complex=self.has_complex, amsgrad=False,
             beta1=self.betas[0], beta2=self.betas[1], lr=self.lr, weight_decay=0.0, eps=self.eps, maximize=False)


def _scalar_dtype() -> torch.dtype:
    # Adam's step counters are float64 when the default dtype is, else float32
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
