"""Tests for the IndRNN, minGRU, minLSTM and LRU modules in rnnbench.archs."""

from __future__ import annotations

import pytest
import torch

from rnnbench.archs.indrnn import IndRNN
from rnnbench.archs.lru import LRU
from rnnbench.archs.mingru import MinGRU
from rnnbench.archs.minlstm import MinLSTM

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
@pytest.mark.parametrize(
    ("dtype", "atol"), [(torch.float64, 1e-5), (torch.float32, 1e-4)], ids=["float64", "float32"]
)
def test_parallel_matches_sequential(cls, dtype, atol):
    model = _make(cls, num_layers=2, dtype=dtype)
    x = _inputs(4, 50, 5, dtype=dtype)
    lengths = torch.tensor([50, 1, 23, 37])
    par_out, par_last = model(x, lengths)
    seq_out, seq_last = model.forward_sequential(x, lengths)
    torch.testing.assert_close(par_out, seq_out, atol=atol, rtol=0)
    torch.testing.assert_close(par_last, seq_last, atol=atol, rtol=0)


@pytest.mark.parametrize("cls", ARCHS, ids=IDS)
def test_last_is_output_at_true_last_step(cls):
    model = _make(cls, num_layers=2)
    x = _inputs(4, 9, 5)
    lengths = torch.tensor([9, 1, 4, 6])
    for fn in (model, model.forward_sequential):
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
    for fn in (model, model.forward_sequential):
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
def test_parallel_scan_stable_on_long_sequences(cls):
    model = _make(cls, input_size=2, hidden_size=16, num_layers=2).train()
    x = 3.0 * _inputs(2, 1000, 2)
    outputs, last = model(x)
    assert torch.isfinite(outputs).all() and torch.isfinite(last).all()
    (outputs.square().mean()).backward()
    for name, param in model.named_parameters():
        assert torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize("cls", [MinGRU, MinLSTM], ids=["MinGRU", "MinLSTM"])
def test_log_space_scan_tracks_sequential_at_t1000(cls):
    model = _make(cls, input_size=2, hidden_size=16, dtype=torch.float64)
    x = 3.0 * _inputs(2, 1000, 2, dtype=torch.float64)
    par, _ = model(x)
    seq, _ = model.forward_sequential(x)
    torch.testing.assert_close(par, seq, atol=1e-8, rtol=1e-8)
