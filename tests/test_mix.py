"""LRU's block tail (rnnbench/archs/mix.py): the compiled node equals torch's ops, and runs only where it applies.

Tests of the compiled node (`@compiled`) are slow (they build the extension, or load what a build left) and
skipped where it cannot be built; collecting or deselecting them builds nothing.
"""

from __future__ import annotations

import pytest
import torch

from rnnbench.archs import fastpath
from rnnbench.archs.lru import LRU
from rnnbench.archs.mix import _compiled, glu_residual, reference


@pytest.fixture(scope="module")
def extension():
    if fastpath.compiler() is None:
        pytest.skip("no C++ compiler: the tail runs on torch's ops (tests/test_fastpath.py tests that fallback)")
    status = fastpath.status()
    assert status["available"], status["reason"]


def compiled(test):
    """Marks a test of the compiled node: slow, and skipped where there is no compiler."""
    return pytest.mark.slow(pytest.mark.usefixtures("extension")(test))


TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


def _close(actual, expected, tol, what):
    scale = expected.abs().max().item()
    err = (actual - expected).abs().max().item()
    assert err <= tol * max(scale, 1e-30), f"{what}: max error {err:.3g} against max |torch| {scale:.3g}"


@compiled
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", [(100, 64, 16), (37, 7, 16), (5, 16), (3, 1, 24)],
                         ids=["blocks", "block-and-a-part", "under-a-block", "one-row-each"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_values_and_every_gradient_equal_torchs_ops(dtype, shape, bias):
    """Rows in whole blocks of 256, a block and a part, fewer than a block; large |v| (GELU's tails) included."""
    gen = torch.Generator().manual_seed(0)
    hidden = shape[-1]
    linear = torch.nn.Linear(hidden, 2 * hidden, bias=bias).to(dtype)
    v = (torch.randn(shape, generator=gen, dtype=dtype) * 4).requires_grad_()
    res = torch.randn(shape, generator=gen, dtype=dtype, requires_grad=True)
    grad = torch.randn(shape, generator=gen, dtype=dtype)
    inputs = [v, res, *linear.parameters()]
    assert _compiled(v, res, linear) is not None
    out, ref = glu_residual(v, res, linear), reference(v, res, linear)
    _close(out, ref, TOL[dtype], "output")
    names = ["v", "res", "weight", "bias"][:len(inputs)]
    got, want = torch.autograd.grad(out, inputs, grad), torch.autograd.grad(ref, inputs, grad)
    for name, a, b in zip(names, got, want, strict=True):
        _close(a, b, TOL[dtype], f"d/d{name}")
    with torch.no_grad():
        _close(glu_residual(v, res, linear), ref, TOL[dtype], "output without grad")


@compiled
def test_gelu_far_out_and_at_zero():
    """erf's approximation where it is least exact (|x| ~ 1-3) and GELU's saturation: within 1e-6 of torch."""
    linear = torch.nn.Linear(8, 16)
    v = torch.linspace(-12, 12, 8 * 301).reshape(301, 8).requires_grad_()
    res = torch.zeros(301, 8)
    out, ref = glu_residual(v, res, linear), reference(v, res, linear)
    _close(out, ref, 1e-6, "output")
    (g,), (g_ref,) = torch.autograd.grad(out.sum(), [v]), torch.autograd.grad(ref.sum(), [v])
    _close(g, g_ref, 1e-6, "d/dv")


@compiled
def test_nan_propagates():
    linear = torch.nn.Linear(4, 8)
    v = torch.zeros(2, 4)
    v[0, 1] = float("nan")
    out = glu_residual(v, torch.zeros(2, 4), linear)
    assert out[0].isnan().all() and not out[1].isnan().any()


@compiled
def test_runs_where_it_applies():
    assert _compiled(torch.randn(3, 4), torch.randn(3, 4), torch.nn.Linear(4, 8)) is not None


def test_only_where_it_applies(monkeypatch):
    """Elsewhere torch's ops run (with the same values), whether or not the extension is built."""
    linear = torch.nn.Linear(4, 8)
    v, res = torch.randn(3, 4), torch.randn(3, 4)
    assert _compiled(v.half(), res.half(), torch.nn.Linear(4, 8).half()) is None
    assert _compiled(v, res, torch.nn.Linear(4, 6)) is None  # not a GLU's 2H
    for value in ("classic", "0"):
        monkeypatch.setenv("RNNBENCH_FASTPATH", value)
        assert _compiled(v, res, linear) is None
        assert torch.equal(glu_residual(v, res, linear), reference(v, res, linear))


@compiled
@pytest.mark.parametrize("per_step", [True, False], ids=["every-step", "last-step"])
def test_lru_trains_alike_with_and_without_it(monkeypatch, per_step):
    """An LRU's loss and every parameter's gradient, variable lengths, two layers, float64: with the compiled tail
    and with torch's ops in its place."""
    torch.manual_seed(0)
    core = LRU(3, 16, num_layers=2).double()
    x = torch.randn(4, 30, 3, dtype=torch.float64)
    lengths = torch.tensor([30, 12, 1, 29])

    def grads():
        out, last = core(x, lengths)
        loss = (out.sum() if per_step else last.sum())
        return [loss.detach(), *torch.autograd.grad(loss, list(core.parameters()))]

    fast = grads()
    monkeypatch.setattr("rnnbench.archs.lru.glu_residual", reference)
    slow = grads()
    for a, b in zip(fast, slow, strict=True):
        _close(a, b, 1e-10, "LRU")
