"""Tests for the IndRNN, minGRU, minLSTM and LRU modules in rnnbench.archs."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from rnnbench.archs.indrnn import IndRNN
from rnnbench.archs.lru import LRU
from rnnbench.archs.mingru import MinGRU
from rnnbench.archs.minlstm import MinLSTM
from rnnbench.archs.scan import g, g_reference, linear_recurrence, pick_form
from rnnbench.archs.stacked import TIME_DIM, StackedCore
from rnnbench.model import build_model

ARCHS = [IndRNN, MinGRU, MinLSTM, LRU]
IDS = [cls.__name__ for cls in ARCHS]


def _make(cls, input_size=5, hidden_size=8, num_layers=1, dtype=torch.float32, seed=0, **kwargs):
    torch.manual_seed(seed)
    model = cls(input_size, hidden_size, num_layers=num_layers, **kwargs).to(dtype)
    return model.eval()


def _inputs(batch, steps, size, dtype=torch.float32, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, steps, size, generator=gen, dtype=dtype)


@pytest.mark.parametrize("cls", ARCHS, ids=IDS)
@pytest.mark.parametrize("num_layers", [1, 2])
def test_output_shapes(cls, num_layers):
    model = _make(cls, num_layers=num_layers)
    assert model.output_size == 8
    x = _inputs(3, 7, 5)
    for fn in (model, model.forward_sequential):
        outputs, last = fn(x)
        assert outputs.shape == (3, 7, 8)
        assert last.shape == (3, 8)
        assert outputs.dtype == torch.float32
        assert torch.equal(last, outputs[:, -1])


@pytest.mark.parametrize("cls", ARCHS, ids=IDS)
@pytest.mark.parametrize("num_layers", [1, 2])
def test_gradients_reach_every_parameter(cls, num_layers):
    model = _make(cls, num_layers=num_layers).train()
    outputs, _ = model(_inputs(3, 7, 5))
    outputs.sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("cls", ARCHS, ids=IDS)
@pytest.mark.parametrize("form", ["parallel", "recurrent"])
@pytest.mark.parametrize(
    ("dtype", "atol"), [(torch.float64, 1e-5), (torch.float32, 1e-4)], ids=["float64", "float32"]
)
def test_parallel_matches_sequential(cls, form, dtype, atol):
    model = _make(cls, num_layers=2, dtype=dtype)
    model.chunk = 16  # several chunks in the recurrent form
    x = _inputs(4, 50, 5, dtype=dtype)
    lengths = torch.tensor([50, 1, 23, 37])
    par_out, par_last = model.forward_form(x, lengths, form)
    seq_out, seq_last = model.forward_sequential(x, lengths)
    torch.testing.assert_close(par_out, seq_out, atol=atol, rtol=0)
    torch.testing.assert_close(par_last, seq_last, atol=atol, rtol=0)


@pytest.mark.parametrize("cls", ARCHS, ids=IDS)
def test_last_is_output_at_true_last_step(cls):
    model = _make(cls, num_layers=2)
    x = _inputs(4, 9, 5)
    lengths = torch.tensor([9, 1, 4, 6])
    parallel = functools.partial(model.forward_form, form="parallel")
    for fn in (model, parallel, model.forward_sequential):
        outputs, last = fn(x, lengths)
        expected = outputs[torch.arange(4), lengths - 1]
        assert torch.equal(last, expected)


@pytest.mark.parametrize("cls", ARCHS, ids=IDS)
def test_padding_does_not_leak(cls):
    model = _make(cls, num_layers=2)
    x = _inputs(4, 12, 5)
    lengths = torch.tensor([12, 3, 7, 1])
    mask = torch.arange(12)[None, :] < lengths[:, None]
    x_other = torch.where(mask[..., None], x, 100.0 * _inputs(4, 12, 5, seed=2))
    model.chunk = 5
    parallel = functools.partial(model.forward_form, form="parallel")
    for fn in (model, parallel, model.forward_sequential):
        out_a, last_a = fn(x, lengths)
        out_b, last_b = fn(x_other, lengths)
        torch.testing.assert_close(out_a[mask], out_b[mask], atol=1e-6, rtol=0)
        torch.testing.assert_close(last_a, last_b, atol=1e-6, rtol=0)


def test_indrnn_default_bound_and_clipping():
    model = IndRNN(5, 8, num_layers=2, seq_len_hint=50)
    bound = 2.0 ** (1.0 / 50)
    assert model.recurrent_max == pytest.approx(bound)
    for u in model.recurrent_weight:
        assert (u >= 0).all() and (u <= bound).all()
    with torch.no_grad():
        for u in model.recurrent_weight:
            u.mul_(10.0).sub_(5.0)
    assert any((u.abs() > bound).any() for u in model.recurrent_weight)
    model.clip_recurrent_weights_()
    for u in model.recurrent_weight:
        assert (u.abs() <= bound).all()


def test_indrnn_forward_respects_bound_before_clipping():
    model = IndRNN(1, 4, recurrent_max=0.5).eval()
    with torch.no_grad():
        model.recurrent_weight[0].fill_(3.0)
        model.input_proj[0].weight.fill_(1.0)
        model.input_proj[0].bias.zero_()
    x = torch.zeros(1, 5, 1)
    x[0, 0, 0] = 1.0
    outputs, _ = model(x)
    expected = 0.5 ** torch.arange(5, dtype=torch.float32)
    torch.testing.assert_close(outputs[0, :, 0], expected)


@pytest.mark.parametrize("cls", [MinGRU, MinLSTM, LRU], ids=["MinGRU", "MinLSTM", "LRU"])
@pytest.mark.parametrize("form", ["parallel", "recurrent"])
def test_parallel_scan_stable_on_long_sequences(cls, form):
    model = _make(cls, input_size=2, hidden_size=16, num_layers=2).train()
    x = 3.0 * _inputs(2, 1000, 2)
    outputs, last = model.forward_form(x, form=form)
    assert torch.isfinite(outputs).all() and torch.isfinite(last).all()
    (outputs.square().mean()).backward()
    for name, param in model.named_parameters():
        assert torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize("cls", [MinGRU, MinLSTM], ids=["MinGRU", "MinLSTM"])
def test_log_space_scan_tracks_sequential_at_t1000(cls):
    model = _make(cls, input_size=2, hidden_size=16, dtype=torch.float64)
    x = 3.0 * _inputs(2, 1000, 2, dtype=torch.float64)
    par, _ = model.forward_form(x, form="parallel")
    seq, _ = model.forward_sequential(x)
    torch.testing.assert_close(par, seq, atol=1e-8, rtol=1e-8)


# ---- one stacked-layer base (issue 12 item 4) -------------------------------------------------------------------


def test_cores_share_the_stacked_base():
    for cls in ARCHS:
        assert issubclass(cls, StackedCore)
        for method in ("forward", "forward_form", "forward_sequential", "_between_layers"):
            assert method not in vars(cls), f"{cls.__name__} redefines {method}: the layer loop lives in StackedCore"


class _Leaky(StackedCore):
    """A cell written for this test only: h_t = 0.5 h_{t-1} + W x_t, to show that a new cell is one class."""

    def __init__(self, input_size, hidden_size, num_layers=1, dropout=0.0):
        super().__init__(input_size, hidden_size, num_layers, dropout)
        self.proj = torch.nn.ModuleList(torch.nn.Linear(self.layer_input_size(i), hidden_size)
                                        for i in range(num_layers))

    def layer(self, index, h, form, state):
        b = self.proj[index](h)
        out, last = linear_recurrence(torch.full_like(b, 0.5), b, dim=TIME_DIM[form], h0=state)
        return out, (last if form == "recurrent" else None)

    def step(self, index, h_t, state):
        out = self.proj[index](h_t) + (0.0 if state is None else 0.5 * state)
        return out, out


def test_a_new_cell_is_one_class():
    torch.manual_seed(0)
    model = _Leaky(3, 4, num_layers=3, dropout=0.5).double().eval()
    model.chunk = 4
    x = _inputs(2, 11, 3, dtype=torch.float64)
    lengths = torch.tensor([11, 6])
    reference = model.forward_sequential(x, lengths)
    for form in ("auto", "parallel", "recurrent"):
        outputs, last = model.forward_form(x, lengths, form)
        torch.testing.assert_close(outputs, reference[0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(last, reference[1], rtol=1e-12, atol=1e-12)
    assert model.output_size == 4
    model.train()
    dropped = model(x)[0]
    assert not torch.equal(dropped, model.eval()(x)[0])  # dropout acts between layers in training only


# Sums of a snapshot taken before the cores moved onto StackedCore (git c2b6d01): float64 cores, 2 layers, input 3,
# hidden 6, seed i, inputs from generator seed 100+i at lengths (17, 3, 9, 1), loss mean(out^2) + sum(last).
# (parameters, outputs of the parallel form, outputs of forward_sequential, gradients of the parallel form)
BEFORE_THE_BASE = {
    IndRNN: (2, 3.6517281867563725, 156.68719595606234, 156.68719595606234, 118.74483186512118),
    MinGRU: (9, 3.6064477887703106, 256.58007955298876, 256.58007955298876, 83.18864857139536),
    MinLSTM: (16, -1.561276833876036, 229.28533189107102, 229.28533189107102, 69.23938203172045),
    LRU: (23, 7.667382128536701, -30.669411515281567, -30.669411515281567, 132.9746139157532),
}
# How far these sums may move between x86-64 CPUs. The parameters are drawn in float32 (torch's default dtype)
# and only then cast to float64; LRU's ring init passes the draws through float32 log/exp/log1p, whose
# vectorised kernels (AVX2, AVX-512, scalar) may round an element differently by an ulp or so. Everything after
# the cast is float64 arithmetic of those parameters, so outputs and gradients inherit the same relative error
# times the model's conditioning, plus float64 rounding (~1e-16 per operation, whatever the thread count).
# The bound: one float32 unit roundoff (2^-24) of the sum of magnitudes. Measured on an AMD EPYC (AVX2) against
# the snapshot (taken on another CPU): LRU moved by 1.5e-9 (parameters), 3.5e-9 (outputs), 1.1e-9 (gradients)
# of that magnitude, 17-55x inside the bound; the other three cores draw no transcendental in float32 and
# matched exactly. A change of formula or of the order of random draws moves a sum by O(1) of its magnitude.
FLOAT32_UNIT_ROUNDOFF = 2.0**-24


def _close_to_snapshot(values: torch.Tensor | list[torch.Tensor], expected: float) -> bool:
    parts = values if isinstance(values, list) else [values]
    total = sum(part.sum().item() for part in parts)
    magnitude = sum(part.abs().sum().item() for part in parts)
    return abs(total - expected) <= FLOAT32_UNIT_ROUNDOFF * magnitude


@pytest.mark.parametrize("cls", ARCHS, ids=IDS)
def test_same_parameters_and_outputs_as_before_the_stacked_base(cls):
    seed, params, outputs, sequential, grads = BEFORE_THE_BASE[cls]
    old_lru_defaults = dict(r_min=0.0, r_max=0.99, max_phase=6.28) if cls is LRU else {}
    torch.manual_seed(seed)
    model = cls(3, 6, num_layers=2, bias=True, **old_lru_defaults).to(torch.float64).eval()
    x = torch.randn(4, 17, 3, generator=torch.Generator().manual_seed(100 + seed), dtype=torch.float64)
    lengths = torch.tensor([17, 3, 9, 1])
    assert _close_to_snapshot([p.detach() for p in model.parameters()], params)
    out, last = model.forward_form(x, lengths, "parallel")
    (out.square().mean() + last.sum()).backward()
    assert _close_to_snapshot(out.detach(), outputs)
    assert _close_to_snapshot([p.grad for p in model.parameters()], grads)
    assert _close_to_snapshot(model.forward_sequential(x, lengths)[0].detach(), sequential)


def test_the_snapshot_tolerance_catches_a_change_of_init():
    """The bound is loose enough for CPUs, not for a different draw: one extra random draw before the init
    (the order of draws shifted) moves every core's parameter sum outside it."""
    for cls in ARCHS:
        seed, params, *_ = BEFORE_THE_BASE[cls]
        old_lru_defaults = dict(r_min=0.0, r_max=0.99, max_phase=6.28) if cls is LRU else {}
        torch.manual_seed(seed)
        torch.rand(1)
        model = cls(3, 6, num_layers=2, bias=True, **old_lru_defaults).to(torch.float64)
        assert not _close_to_snapshot([p.detach() for p in model.parameters()], params), cls.__name__


# ---- the recurrent (CPU) form (issue 16 item 2) -----------------------------------------------------------------


def _outputs_and_grads(model, x, lengths, form):
    model.zero_grad()
    outputs, last = model.forward_form(x, lengths, form)
    (outputs.square().mean() + last.sum()).backward()
    return [outputs.detach(), last.detach()] + [p.grad.clone() for p in model.parameters()]


def _max_relative(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


@pytest.mark.parametrize("cls", [MinGRU, MinLSTM, LRU], ids=["MinGRU", "MinLSTM", "LRU"])
def test_recurrent_form_equals_parallel_form_outputs_and_gradients(cls):
    """In float64 (exact arithmetic up to rounding) the two forms agree far inside 1e-5 relative, at T=1000."""
    model = _make(cls, input_size=2, hidden_size=8, num_layers=2, dtype=torch.float64)
    x = 3.0 * _inputs(3, 1000, 2, dtype=torch.float64)
    lengths = torch.tensor([1000, 517, 64])
    parallel = _outputs_and_grads(model, x, lengths, "parallel")
    recurrent = _outputs_and_grads(model, x, lengths, "recurrent")
    for fast, reference in zip(recurrent, parallel, strict=True):
        assert _max_relative(fast, reference) < 1e-9


@pytest.mark.parametrize("cls", [MinGRU, MinLSTM, LRU], ids=["MinGRU", "MinLSTM", "LRU"])
def test_recurrent_form_in_float32_tracks_float64(cls):
    """In float32 the recurrent form stays within 1e-4 (outputs within 1e-5) of the float64 result at T=1000;
    the log-space parallel form does not (minGRU's gradients come out ~1e-2 off there)."""
    model = _make(cls, input_size=2, hidden_size=8, num_layers=2)
    wide = _make(cls, input_size=2, hidden_size=8, num_layers=2, dtype=torch.float64)
    wide.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    x = 3.0 * _inputs(3, 1000, 2)
    reference = _outputs_and_grads(wide, x.double(), None, "recurrent")
    fast = _outputs_and_grads(model, x, None, "recurrent")
    assert _max_relative(fast[0].double(), reference[0]) < 1e-5
    for mine, exact in zip(fast, reference, strict=True):
        assert _max_relative(mine.double(), exact) < 1e-4


@pytest.mark.parametrize("cls", ARCHS, ids=IDS)
def test_chunks_carry_the_state(cls):
    model = _make(cls, num_layers=2, dtype=torch.float64)
    x = _inputs(3, 40, 5, dtype=torch.float64)
    whole = _outputs_and_grads(model, x, None, "recurrent")
    model.chunk = 7
    chunked = _outputs_and_grads(model, x, None, "recurrent")
    for a, b in zip(chunked, whole, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_linear_recurrence_gradients():
    gen = torch.Generator().manual_seed(0)
    for dim in (0, 1):
        b = torch.randn(3, 5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
        a = torch.rand(3, 5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
        h0 = torch.randn(5 if dim == 0 else 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
        run = functools.partial(linear_recurrence, dim=dim)
        assert torch.autograd.gradcheck(run, (a, b))
        assert torch.autograd.gradcheck(lambda a, b, h0, run=run: run(a, b, h0=h0), (a, b, h0))
    # complex, one coefficient per state for all steps (LRU)
    lam = (0.9 * torch.exp(1j * torch.rand(4, generator=gen, dtype=torch.float64))).requires_grad_()
    bc = torch.randn(3, 6, 4, generator=gen, dtype=torch.complex128, requires_grad=True)
    h0c = torch.randn(6, 4, generator=gen, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda lam, bc, h0c: linear_recurrence(lam, bc, 0, h0c), (lam, bc, h0c))


def test_linear_recurrence_matches_a_loop():
    a = torch.rand(2, 6, 3, dtype=torch.float64)
    b = torch.randn(2, 6, 3, dtype=torch.float64)
    h, last = linear_recurrence(a, b)
    state = torch.zeros(2, 3, dtype=torch.float64)
    for t in range(6):
        state = a[:, t] * state + b[:, t]
        torch.testing.assert_close(h[:, t], state)
    torch.testing.assert_close(last, state)
    with pytest.raises(ValueError, match="per-step shape"):
        linear_recurrence(torch.rand(5), b)


def test_g_is_the_reference_g_with_its_slope_at_zero():
    x = torch.tensor([-30.0, -2.0, -1e-9, -0.0, 0.0, 1e-9, 0.7, 5.0], dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    assert torch.equal(g(x), g_reference(x_ref))
    g(x).sum().backward()
    g_reference(x_ref).sum().backward()
    assert torch.equal(x.grad, x_ref.grad)  # g'(0) = 1, as the where-form has it
    assert x.grad[4].item() == 1.0


def test_form_is_chosen_per_device_and_can_be_forced(monkeypatch):
    monkeypatch.setenv("RNNBENCH_FASTPATH", "1")  # the default: the recurrent form on a CPU (choosing builds nothing)
    assert pick_form("cpu", 100) == pick_form(torch.device("cpu"), 5000) == "recurrent"
    assert pick_form("cuda", 100) == pick_form(torch.device("cuda", 0), 5000) == "parallel"
    monkeypatch.setenv("RNNBENCH_FASTPATH", "0")  # off: the parallel form everywhere, and the recurrence in torch
    assert pick_form("cpu", 100) == "parallel"
    model = _make(MinGRU, num_layers=2)
    x = _inputs(2, 9, 5)
    assert torch.equal(model(x)[0], model.forward_form(x, form="parallel")[0])
    model.form = "recurrent"
    assert torch.equal(model(x)[0], model.forward_form(x, form="recurrent")[0])
    with pytest.raises(ValueError, match="unknown form 'fast'"):
        model.forward_form(x, form="fast")


def test_lru_default_ring_is_the_papers_long_range_setting():
    model = LRU(2, 16, num_layers=1)
    layer = model.lrus[0]
    modulus = torch.exp(-torch.exp(layer.nu_log))
    phase = torch.exp(layer.theta_log)
    assert (modulus >= 0.9 - 1e-6).all() and (modulus <= 0.999 + 1e-6).all()
    assert (phase <= math.pi / 10 + 1e-6).all()


@pytest.mark.parametrize("cls", ARCHS, ids=IDS)
@pytest.mark.parametrize("form", ["parallel", "recurrent"])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_forward_last_equals_forwards_last_step(cls, form, with_lengths):
    """forward_last (what a last-step model calls; LRU computes its top block's output at the last steps only)
    gives forward's `last` and the same gradients, over several chunks, with lengths ending in different ones."""
    model = _make(cls, num_layers=2, dtype=torch.float64)
    model.chunk = 7
    x = _inputs(4, 30, 5, dtype=torch.float64)
    lengths = torch.tensor([30, 12, 7, 1]) if with_lengths else None

    def last_and_grads(fn):
        model.zero_grad()
        last = fn()
        (last * torch.linspace(-1, 1, last.numel(), dtype=last.dtype).view_as(last)).sum().backward()
        return [last.detach()] + [torch.zeros_like(p) if p.grad is None else p.grad.clone()
                                  for p in model.parameters()]

    full = last_and_grads(lambda: model.forward_form(x, lengths, form)[1])
    short = last_and_grads(lambda: model.forward_last(x, lengths, form))
    for a, b in zip(short, full, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_last_step_model_reads_forward_last():
    torch.manual_seed(0)
    model = build_model("lru", 3, 2, "last", 6).double()
    x = _inputs(3, 20, 3, dtype=torch.float64)
    lengths = torch.tensor([20, 9, 4])
    pred = model(x, lengths)
    _, last = model.core.forward_form(x, lengths, "recurrent")
    torch.testing.assert_close(pred, model.readout(last).unsqueeze(1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("arch", ["indrnn", "mingru", "minlstm", "lru"])
def test_per_step_model_reads_out_in_the_cores_layout(arch):
    """The recurrent form's outputs are time-major memory seen batch-major: the per-step model reads them out in
    that layout (no copy of every hidden state); predictions and gradients equal a readout of the batch-major
    copy."""
    torch.manual_seed(0)
    model = build_model(arch, 3, 2, "per_step", 6).double()
    x = _inputs(3, 20, 3, dtype=torch.float64)
    outputs, _ = model.core.forward_form(x, None, "recurrent")
    assert not outputs.is_contiguous() and outputs.transpose(0, 1).is_contiguous()
    pred = model(x)
    expected = model.readout(outputs.contiguous())
    torch.testing.assert_close(pred, expected, rtol=1e-12, atol=1e-12)
    params = list(model.parameters())
    got = torch.autograd.grad((pred * expected.detach()).sum(), params)
    want = torch.autograd.grad((model.readout(model.core.forward_form(x, None, "recurrent")[0].contiguous())
                                * expected.detach()).sum(), params)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
