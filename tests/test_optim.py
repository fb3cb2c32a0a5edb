"""rnnbench.optim.Adam against torch.optim.Adam (bit for bit), and that training never imports the compiler."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from rnnbench.archs import ARCHS
from rnnbench.model import build_model
from rnnbench.optim import Adam

ROOT = Path(__file__).resolve().parent.parent


def _train(arch: str, make_optimizer, steps: int = 25) -> list[torch.Tensor]:
    """A few clipped updates of a small model on fixed random batches; returns the final parameters."""
    torch.manual_seed(3)
    model = build_model(arch, 2, 1, "last", 8)
    optimizer = make_optimizer(model.parameters())
    data = torch.Generator().manual_seed(4)
    for _ in range(steps):
        x = torch.randn(6, 7, 2, generator=data)
        y = torch.randn(6, 1, 1, generator=data)
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_same_parameters_as_torch_adam_bit_for_bit(arch):
    ours = _train(arch, lambda params: Adam(params, lr=3e-3))
    theirs = _train(arch, lambda params: torch.optim.Adam(params, lr=3e-3))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
    # and it did move them: a test of two optimizers that both do nothing would pass too
    untrained = _train(arch, lambda params: Adam(params, lr=3e-3), steps=0)
    assert any(not torch.equal(a, b) for a, b in zip(ours, untrained, strict=True))


def test_a_parameter_without_gradient_is_left_alone_as_torch_does():
    def run(make_optimizer):
        torch.manual_seed(0)
        used, unused = torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(3))
        optimizer = make_optimizer([used, unused])
        for step in range(6):
            optimizer.zero_grad()
            # `unused` gets a gradient from step 3 on: its step count must start then, not at 1
            loss = (used ** 2).sum() + (unused.sum() if step >= 3 else 0)
            loss.backward()
            optimizer.step()
        return used.detach().clone(), unused.detach().clone()

    ours, theirs = run(lambda p: Adam(p, lr=0.1)), run(lambda p: torch.optim.Adam(p, lr=0.1))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="learning rate must be > 0, got 0"):
        Adam([torch.nn.Parameter(torch.zeros(1))], lr=0)
    with pytest.raises(ValueError, match="no parameters"):
        Adam([torch.zeros(1)], lr=1e-3)


def test_a_training_job_never_imports_the_compiler(tmp_path):
    """The reason rnnbench has its own Adam: torch.optim imports torch._dynamo (~2 CPU-s per Ray worker).
    A fresh process runs a whole job, then reports whether the compiler was imported."""
    script = textwrap.dedent(f"""
        import sys
        from tasks import dataset_store
        from rnnbench.config import from_preset
        from rnnbench.train import train_and_evaluate
        config = from_preset("smoke", out={str(tmp_path)!r})
        spec = next(s for s in config.runs() if s.problem == "sequential_xor" and s.arch == "lstm")
        for d in spec.datasets():
            dataset_store.build(d, config.dataset_root)
        result = train_and_evaluate(spec, dataset_store.loader(config.dataset_root))
        assert result.row["status"] == "ok", result.row
        print("dynamo imported:", "torch._dynamo" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "dynamo imported: False" in done.stdout
