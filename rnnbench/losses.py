"""Training losses by a problem's loss kind, over the target steps its mask keeps."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_loss(kind: str, pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """pred is [B, target_steps, output_size], y [B, target_steps, target_width]; `mask` (bool, [target_steps],
    or [B, target_steps] for variable-length sequences) picks the steps that count. For "ce", pred holds logits
    over K classes and y each step's class index (width 1, float32 like every stored target); the loss is the
    mean over every kept step of every sequence."""
    p, t = (pred[:, mask], y[:, mask]) if mask.dim() == 1 else (pred[mask], y[mask])
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(p, t)
    if kind == "mse":
        return F.mse_loss(p, t)
    if kind == "ce":
        return F.cross_entropy(p.reshape(-1, p.shape[-1]), t.reshape(-1).long())
    raise ValueError(f"unknown loss kind {kind!r}; valid kinds: bce, ce, mse")
