"""The CPU fast path (rnnbench/archs/fastpath.py + fastpath.cpp) against nn.RNN/GRU/LSTM with the same weights.

Outputs, final states and the gradients with respect to the input, h0, c0 and every weight must equal nn.*'s:
max |fast - nn| <= 1e-5 * max |nn| per tensor in float32, 1e-10 in float64. nn.* runs packed sequences
(pack_padded_sequence, as ClassicCore does) where the fast path runs the padded batch with lengths.

Tests of the compiled path (`@compiled`) are slow (they run the compiler, or load what it built, which a fresh
machine has to build first) and skipped where there is no compiler; every other test, the fallback's included,
runs everywhere.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnbench.archs import fastpath
from rnnbench.archs.classic import ClassicCore

ARCHS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
B, T = 4, 7
LENGTHS = [7, 3, 5, 1]
# 8 settings of 5 two-valued options that hold every pair of values of every two options
PAIRWISE = [(1, 0, 0, 0, 1), (0, 1, 1, 1, 1), (1, 1, 0, 1, 0), (0, 0, 1, 0, 0), (1, 0, 1, 1, 0), (0, 1, 0, 0, 1),
            (1, 1, 1, 1, 1), (0, 0, 0, 0, 0)]


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def extension():
    """The compiled operators, built (or loaded from the cache) in this process. A machine with a compiler must
    build them: a failed build fails the tests that asked for them."""
    if fastpath.compiler() is None:
        pytest.skip("no C++ compiler: the fast path falls back to nn.* (test_without_a_working_compiler_...)")
    status = fastpath.status()
    assert status["available"], status["reason"]


def compiled(test):
    """Marks a test of the compiled path: slow, and skipped where there is no compiler."""
    return pytest.mark.slow(pytest.mark.usefixtures("extension")(test))


def _rnn(arch, input_size, hidden, dtype, **kwargs):
    cls = {"lstm": nn.LSTM, "gru": nn.GRU}.get(arch, nn.RNN)
    if arch.startswith("rnn_"):
        kwargs["nonlinearity"] = arch.removeprefix("rnn_")
    return cls(input_size, hidden, **kwargs).to(dtype)


def _reference(rnn, x, lengths, hx):
    if lengths is None:
        return rnn(x, hx)
    packed = pack_padded_sequence(x, lengths, batch_first=rnn.batch_first, enforce_sorted=False)
    out, state = rnn(packed, hx)
    out, _ = pad_packed_sequence(out, batch_first=rnn.batch_first, total_length=x.shape[1 if rnn.batch_first else 0])
    return out, state


def _flat(state):
    return list(state) if isinstance(state, tuple) else [state]


def _assert_close(actual, expected, tol, what):
    assert actual.shape == expected.shape, what
    scale = expected.abs().max().item()
    err = (actual - expected).abs().max().item()
    assert err <= tol * max(scale, 1e-30), f"{what}: max error {err:.3g} against max |nn| {scale:.3g}"


def _compare(arch, dtype, *, num_layers=1, bidirectional=False, bias=True, lengths=False, h0=False, input_size=3,
             hidden=5, batch_first=True, seed=0):
    torch.manual_seed(seed)
    rnn = _rnn(arch, input_size, hidden, dtype, num_layers=num_layers, bias=bias, bidirectional=bidirectional,
               batch_first=batch_first)
    assert fastpath.unsupported(rnn, torch.zeros(B, T, input_size, dtype=dtype)) is None
    gen = torch.Generator().manual_seed(seed + 1)
    shape = (B, T, input_size) if batch_first else (T, B, input_size)
    x = torch.randn(shape, generator=gen, dtype=dtype, requires_grad=True)
    lens = torch.tensor(LENGTHS) if lengths else None
    dirs = 2 if bidirectional else 1
    hx = None
    if h0:
        def state():
            return torch.randn(num_layers * dirs, B, hidden, generator=gen, dtype=dtype, requires_grad=True)
        hx = (state(), state()) if arch == "lstm" else state()
    ref_out, ref_state = _reference(rnn, x, lens, hx)
    out, state_ = fastpath.run(rnn, x, lens, hx)
    outputs_ref, outputs = [ref_out, *_flat(ref_state)], [out, *_flat(state_)]
    # an upstream gradient on every output: the outputs and the final states
    grads = [torch.randn(o.shape, generator=gen, dtype=dtype) for o in outputs_ref]
    inputs = [x, *rnn.parameters(), *([] if hx is None else _flat(hx))]
    names = ["x", *(n for n, _ in rnn.named_parameters()), *([] if hx is None else ["h0", "c0"][:len(_flat(hx))])]
    g_ref = torch.autograd.grad(outputs_ref, inputs, grads)
    g_fast = torch.autograd.grad(outputs, inputs, grads)
    tol = TOL[dtype]
    where = (f"{arch} {dtype} layers={num_layers} bidir={bidirectional} bias={bias} lengths={lengths} h0={h0} "
             f"D={input_size} batch_first={batch_first}")
    for i, (a, b) in enumerate(zip(outputs, outputs_ref, strict=True)):
        _assert_close(a, b, tol, f"{where}: output {i}")
    for name, a, b in zip(names, g_fast, g_ref, strict=True):
        _assert_close(a, b, tol, f"{where}: d/d{name}")


@compiled
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidir"])
def test_outputs_and_every_gradient_equal_nn(arch, dtype, num_layers, bidirectional):
    """Every supported option: bias, variable lengths, a given h0 (and c0), a small input (projected inside the
    fused loop) and a wide one (projected as one product), both layouts. float64: every combination; float32
    (nn.LSTM's oneDNN kernel is slow to set up for each new shape): every pair of settings, all on, all off."""
    combos = itertools.product([True, False], [False, True], [False, True], [3, 20], [True, False])
    if dtype == torch.float32:
        values = ([False, True], [False, True], [False, True], [3, 20], [False, True])
        combos = [tuple(v[k] for v, k in zip(values, row, strict=True)) for row in PAIRWISE]
    for bias, lengths, h0, input_size, batch_first in combos:
        _compare(arch, dtype, num_layers=num_layers, bidirectional=bidirectional, bias=bias, lengths=lengths,
                 h0=h0, input_size=input_size, batch_first=batch_first)


@compiled
@pytest.mark.parametrize("arch", ARCHS)
def test_wide_hidden_upper_layers_and_long_sequences(arch):
    """H=24, bidirectional, 2 layers: the upper layer's input (48) takes the wide-input route; T=60 in float64."""
    torch.manual_seed(3)
    rnn = _rnn(arch, 2, 24, torch.float64, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(3, 60, 2, dtype=torch.float64, requires_grad=True)
    lens = torch.tensor([60, 17, 42])
    out_ref, st_ref = _reference(rnn, x, lens, None)
    out, st = fastpath.run(rnn, x, lens)
    loss_ref = out_ref.square().sum() + sum(s.sum() for s in _flat(st_ref))
    loss = out.square().sum() + sum(s.sum() for s in _flat(st))
    g_ref = torch.autograd.grad(loss_ref, [x, *rnn.parameters()])
    g = torch.autograd.grad(loss, [x, *rnn.parameters()])
    _assert_close(out, out_ref, 1e-10, "outputs")
    for a, b in zip(g, g_ref, strict=True):
        _assert_close(a, b, 1e-10, "gradient")


@compiled
@pytest.mark.parametrize("arch", ARCHS)
def test_dropout_between_layers_draws_the_same_mask_as_nn(arch):
    """Dropout is applied as nn.* applies it (same op, same tensor shape, same order of draws), so for a seed
    the outputs and gradients are nn.*'s."""
    rnn = _rnn(arch, 3, 6, torch.float64, num_layers=3, dropout=0.4, bidirectional=True, batch_first=True).train()
    x = torch.randn(B, T, 3, dtype=torch.float64)
    torch.manual_seed(11)
    out_ref, _ = rnn(x)
    g_ref = torch.autograd.grad(out_ref.sum(), list(rnn.parameters()))
    torch.manual_seed(11)
    out, _ = fastpath.run(rnn, x)
    g = torch.autograd.grad(out.sum(), list(rnn.parameters()))
    _assert_close(out, out_ref, 1e-10, "outputs")
    for a, b in zip(g, g_ref, strict=True):
        _assert_close(a, b, 1e-10, "gradient")


@compiled
@pytest.mark.parametrize("arch", ARCHS)
def test_inference_without_grad_equals_training_forward(arch):
    torch.manual_seed(0)
    rnn = _rnn(arch, 3, 5, torch.float32, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(B, T, 3)
    lens = torch.tensor(LENGTHS)
    with torch.no_grad():
        out_nograd, st_nograd = fastpath.run(rnn, x, lens)
        out_ref, st_ref = _reference(rnn, x, lens, None)
    out, st = fastpath.run(rnn, x, lens)
    assert out.requires_grad and not out_nograd.requires_grad
    assert torch.equal(out_nograd, out.detach())
    for a, b, c in zip(_flat(st_nograd), _flat(st), _flat(st_ref), strict=True):
        assert torch.equal(a, b.detach())
        _assert_close(a, c, 1e-5, "state")
    _assert_close(out_nograd, out_ref, 1e-5, "outputs")


@compiled
@pytest.mark.parametrize("arch", ARCHS)
def test_deterministic_for_a_seed(arch):
    def once():
        torch.manual_seed(5)
        core = ClassicCore(arch, 2, 16, num_layers=2, dropout=0.2, bidirectional=True).train()
        x = torch.randn(8, 30, 2)
        lens = torch.randint(1, 31, (8,))
        outputs, last = core(x, lens)
        (outputs.square().mean() + last.sum()).backward()
        assert core.last_path == "fastpath"
        return [outputs.detach(), last.detach(), *(p.grad for p in core.parameters())]
    for a, b in zip(once(), once(), strict=True):
        assert torch.equal(a, b)


@compiled
@pytest.mark.parametrize("arch", ARCHS)
def test_classic_core_same_results_either_path(arch):
    """ClassicCore end to end (outputs, `last` at each sequence's true end, gradients), fast path vs nn.*."""
    torch.manual_seed(0)
    kwargs = dict(num_layers=2, bidirectional=True, recurrent_init="orthogonal")
    if arch == "lstm":
        kwargs["forget_bias"] = 1.0
    fast = ClassicCore(arch, 3, 6, **kwargs).double()
    slow = ClassicCore(arch, 3, 6, **kwargs).double()
    slow.fast_path = False
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(B, T, 3, dtype=torch.float64)
    lens = torch.tensor(LENGTHS)
    results = []
    for core in (fast, slow):
        outputs, last = core(x, lens)
        (outputs.sum() + last.square().sum()).backward()
        results.append([outputs, last, *(p.grad for p in core.parameters())])
    assert fast.last_path == "fastpath" and slow.last_path == "nn: fast_path=False"
    for a, b in zip(*results, strict=True):
        _assert_close(a, b, 1e-10, "ClassicCore")


@compiled
def test_forget_bias_is_an_init_the_fast_path_uses():
    torch.manual_seed(0)
    core = ClassicCore("lstm", 2, 4, forget_bias=3.0)
    assert torch.all(core.rnn.bias_ih_l0[4:8] == 3.0) and torch.all(core.rnn.bias_hh_l0[4:8] == 0.0)
    x = torch.randn(2, 5, 2)
    out, _ = core(x)
    core.fast_path = False
    ref, _ = core(x)
    _assert_close(out, ref, 1e-5, "forget_bias")


def test_what_falls_back_to_nn(monkeypatch):
    # the path on, as by default: each case below is refused before the extension is needed (nothing is built)
    monkeypatch.setenv("RNNBENCH_FASTPATH", "1")
    x = torch.randn(2, 5, 3)
    lstm_proj = ClassicCore("lstm", 3, 6, proj_size=4)
    lstm_proj(x)
    assert lstm_proj.last_path == "nn: LSTM proj_size"
    half = ClassicCore("gru", 3, 6).to(torch.bfloat16)
    half(x.to(torch.bfloat16))
    assert half.last_path == "nn: dtype torch.bfloat16"
    unbatched = nn.GRU(3, 6)
    assert fastpath.unsupported(unbatched, torch.randn(5, 3)) is not None
    bad_lengths = ClassicCore("gru", 3, 6)
    with pytest.raises(RuntimeError):  # nn.* raises its own error for a length of 0
        bad_lengths(x, torch.tensor([5, 0]))
    assert bad_lengths.last_path.startswith("nn: lengths out of range")


@pytest.mark.parametrize("value,classic,modern", [
    # a value that turns either path on runs the compiled operators (the modern cells' recurrence uses them too)
    pytest.param(None, True, True, marks=pytest.mark.slow), pytest.param("1", True, True, marks=pytest.mark.slow),
    ("0", False, False), ("off", False, False), pytest.param("classic", True, False, marks=pytest.mark.slow),
    pytest.param("modern", False, True, marks=pytest.mark.slow)])
def test_switched_by_environment(monkeypatch, request, value, classic, modern):
    """RNNBENCH_FASTPATH turns each CPU fast path on or off: the classic cells' C++ path and the modern cells'
    recurrent form (off: their parallel scan, the GPU's form)."""
    from rnnbench.archs import ARCHS
    from rnnbench.archs.scan import pick_form

    if classic or modern:
        request.getfixturevalue("extension")
    if value is None:
        monkeypatch.delenv("RNNBENCH_FASTPATH", raising=False)
    else:
        monkeypatch.setenv("RNNBENCH_FASTPATH", value)
    core = ClassicCore("rnn_tanh", 3, 6)
    core(torch.randn(2, 5, 3))
    assert (core.last_path == "fastpath") is classic, core.last_path
    if not classic:
        assert core.last_path == f"nn: RNNBENCH_FASTPATH={value}"
    assert pick_form("cpu", 100) == ("recurrent" if modern else "parallel")
    assert pick_form("cuda", 100) == "parallel"
    # the form changes the speed, not the numbers
    torch.manual_seed(0)
    lru = ARCHS["lru"].build(3, 6).double()
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    assert torch.allclose(lru(x)[0], lru.forward_sequential(x)[0], atol=1e-10)


def test_a_bad_switch_value_is_named(monkeypatch):
    monkeypatch.setenv("RNNBENCH_FASTPATH", "fastest")
    with pytest.raises(ValueError, match="RNNBENCH_FASTPATH='fastest': allowed values are 1, on, .* classic, modern"):
        fastpath.enabled()


@compiled
def test_built_once_then_loaded_from_the_cache():
    path = fastpath.build()
    assert path.exists() and path == fastpath.library_path()
    assert fastpath.status()["library"] == str(path)


FALLBACK_SCRIPT = """
import json
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from rnnbench.archs import ARCHS, fastpath, mix, scan
from rnnbench.archs.classic import ClassicCore, make_rnn

report = {"status": fastpath.status(), "paths": set(), "differ": []}
lengths_cases = {"padded": None, "lengths": torch.tensor([7, 3, 5, 1])}
for arch in ("rnn_tanh", "rnn_relu", "gru", "lstm"):
    for case, lengths in lengths_cases.items():
        torch.manual_seed(0)
        core = ClassicCore(arch, 3, 5, num_layers=2, dropout=0.25, bidirectional=True).double().train()
        ref = make_rnn(arch, 3, 5, num_layers=2, dropout=0.25, bidirectional=True).double().train()
        ref.load_state_dict(core.rnn.state_dict())
        x = torch.randn(4, 7, 3, dtype=torch.float64)
        results = []
        for model in (core, ref):
            x_ = x.clone().requires_grad_()
            torch.manual_seed(1)  # the same dropout masks
            if model is core:
                out, last = core(x_, lengths)
                report["paths"].add(core.last_path)
            else:
                if lengths is None:
                    out, state = ref(x_)
                else:
                    packed = pack_padded_sequence(x_, lengths, batch_first=True, enforce_sorted=False)
                    out, state = ref(packed)
                    out, _ = pad_packed_sequence(out, batch_first=True, total_length=7)
                h_n = state[0] if arch == "lstm" else state
                last = torch.cat(list(h_n[-2:]), dim=-1)  # the top layer's two directions at each true end
            loss = out.square().sum() + last.sum()
            results.append([out, last, *torch.autograd.grad(loss, [x_, *model.parameters()])])
        names = ["outputs", "last", "d/dx", *(n for n, _ in ref.named_parameters())]
        report["differ"] += [f"{arch} {case}: {name}" for name, a, b in zip(names, *results, strict=True)
                             if not torch.equal(a, b)]

# the modern cells' compiled pieces step aside too: their torch form runs, and an LRU trains on it
linear = torch.nn.Linear(6, 12).double()
v, res = torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 6, dtype=torch.float64)
report["modern_compiled"] = [mix._compiled(v, res, linear) is not None,
                             scan._compiled(torch.rand(6), torch.randn(9, 2, 6), 0, None) is not None]
report["glu_equal"] = torch.equal(mix.glu_residual(v, res, linear), mix.reference(v, res, linear))
torch.manual_seed(0)
lru = ARCHS["lru"].build(3, 6).double()
x = torch.randn(2, 7, 3, dtype=torch.float64)
out, last = lru(x)
(out.sum() + last.sum()).backward()
report["lru"] = [torch.allclose(out, lru.forward_sequential(x)[0], atol=1e-10),
                 all(p.grad is not None and bool(p.grad.isfinite().all()) for p in lru.parameters())]
report["paths"] = sorted(report["paths"])
print(json.dumps(report))
"""


def test_without_a_working_compiler_every_cell_falls_back_to_nn(tmp_path):
    """On any machine: a compiler that fails (CXX names it) makes the fast path step aside, saying why and naming
    the compiler. ClassicCore then gives nn.*'s outputs, `last` and every gradient (with lengths, two layers, both
    directions, dropout), and the modern cells run their torch form. The failure is remembered: a second process
    falls back the same way without running the compiler again. Fresh processes, since a process builds (or
    fails to) once."""
    calls = tmp_path / "calls"
    fake = tmp_path / "failing-c++"
    fake.write_text(f"#!/bin/sh\necho called >> '{calls}'\necho 'failing-c++: refusing to compile' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = dict(os.environ, RNNBENCH_EXT_DIR=str(tmp_path / "ext"), CXX=str(fake), RNNBENCH_FASTPATH="1")
    for attempt in ("first", "second"):
        proc = subprocess.run([sys.executable, "-c", FALLBACK_SCRIPT], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout.splitlines()[-1])
        status = report["status"]
        assert not status["available"] and status["enabled"] and status["library"] is None, status
        assert status["reason"].startswith("C++ fast path unavailable, using nn.*: "), status
        assert str(fake) in status["reason"], status["reason"]
        if attempt == "second":
            assert "an earlier build failed" in status["reason"], status["reason"]
        # the warning names the compiler (and, on the first attempt, relays what it printed)
        warning = next((line for line in proc.stderr.splitlines() if "C++ fast path unavailable" in line), "")
        assert str(fake) in warning, proc.stderr
        if attempt == "first":
            assert "failing-c++: refusing to compile" in proc.stderr
        assert report["paths"] == [f"nn: {status['reason']}"], report["paths"]
        assert report["differ"] == []
        assert report["modern_compiled"] == [False, False]
        assert report["glu_equal"] and report["lru"] == [True, True]
    assert calls.read_text().splitlines() == ["called"]  # once: the second process read the remembered failure
    assert list((tmp_path / "ext").glob("*.failed")) and not list((tmp_path / "ext").glob("*.so"))


@compiled
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("hidden", [32, 64, 128, 256, 40])
def test_every_width_the_row_kernels_are_compiled_for(arch, hidden):
    """The fused loops are compiled for H = 32, 64, 128, 256 (the width fixed at compile time) and for any other
    width (40): each equals nn.* with every option on, small and wide inputs, and with none."""
    for dtype in (torch.float64, torch.float32):
        for on in (True, False):
            _compare(arch, dtype, num_layers=2 if on else 1, bidirectional=on, bias=on, lengths=on, h0=on,
                     input_size=3 if on else 20, hidden=hidden, batch_first=on)


@compiled
@pytest.mark.parametrize("arch", ARCHS)
def test_float32_at_the_benchmarks_size(arch):
    """B=64, H=64, input 2, T=200 (benchmarks/cell_speed.py): outputs and weight gradients within 1e-5 of nn.*."""
    torch.manual_seed(0)
    rnn = _rnn(arch, 2, 64, torch.float32, batch_first=True)
    x = torch.randn(64, 200, 2)
    out_ref, _ = rnn(x)
    out, _ = fastpath.run(rnn, x)
    grad = torch.randn_like(out_ref)
    g_ref = torch.autograd.grad(out_ref, list(rnn.parameters()), grad)
    g = torch.autograd.grad(out, list(rnn.parameters()), grad)
    _assert_close(out, out_ref, 1e-5, "outputs")
    for (name, _), a, b in zip(rnn.named_parameters(), g, g_ref, strict=True):
        _assert_close(a, b, 1e-5, name)


def test_gpu_check_says_why_it_stops_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("a CUDA machine: the script would run")
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py"], capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 2
    assert "no CUDA device" in proc.stderr and "Nothing was measured" in proc.stderr


# ---- the modern cells' linear recurrence, compiled ----------------------------------------------------------


def _recurrence_and_grads(a, b, h0, switch, monkeypatch):
    from rnnbench.archs.scan import linear_recurrence

    monkeypatch.setenv("RNNBENCH_FASTPATH", switch)
    a, b = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    h0 = None if h0 is None else h0.detach().clone().requires_grad_()
    h, last = linear_recurrence(a, b, dim=0, h0=h0)
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(h.shape, dtype=h.dtype, generator=gen)
    w_last = torch.randn(last.shape, dtype=h.dtype, generator=gen)
    ((h * w.conj()).real.sum() + (last * w_last.conj()).real.sum()).backward()
    return [h, last, a.grad, b.grad] + ([] if h0 is None else [h0.grad])


@compiled
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64, torch.complex128])
@pytest.mark.parametrize("varying", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
def test_compiled_linear_recurrence_equals_the_loop(dtype, varying, with_h0, monkeypatch):
    """h_t = a_t h_{t-1} + b_t and its gradients (PyTorch's complex convention) from the compiled loop equal the
    loop of torch operators: a per step and unit (minGRU, minLSTM) or a diagonal broadcast over the batch
    (LRU's lambda), with and without a carried state."""
    from rnnbench.archs import scan

    gen = torch.Generator().manual_seed(0)
    steps, batch, units = 9, 3, 5
    shape = (steps, batch, units) if varying else (units,)
    radius = 0.95 * torch.rand(shape, dtype=torch.float64, generator=gen)
    angle = torch.rand(shape, dtype=torch.float64, generator=gen)
    a = (torch.polar(radius, angle) if dtype.is_complex else radius).to(dtype)
    b = torch.randn(steps, batch, units, dtype=dtype, generator=gen)
    h0 = torch.randn(batch, units, dtype=dtype, generator=gen) if with_h0 else None
    assert scan._compiled(a, b, 0, h0) is not None  # the compiled path runs this case
    fast = _recurrence_and_grads(a, b, h0, "1", monkeypatch)
    loop = _recurrence_and_grads(a, b, h0, "classic", monkeypatch)
    tol = 1e-5 if dtype in (torch.float32, torch.complex64) else 1e-12
    for got, want in zip(fast, loop, strict=True):
        assert torch.allclose(got, want, rtol=tol, atol=tol * want.abs().max().item())


@compiled
def test_compiled_recurrence_where_it_applies():
    from rnnbench.archs import scan

    assert scan._compiled(torch.rand(4), torch.randn(6, 2, 4), 0, None) is not None


def test_compiled_recurrence_only_where_it_applies(monkeypatch):
    """Where it does not apply the loop of torch operators runs, whether or not the extension is built."""
    from rnnbench.archs import scan

    a, b = torch.rand(4), torch.randn(6, 2, 4)
    assert scan._compiled(a, b, 1, None) is None  # batch-major: the loop
    assert scan._compiled(a.to(torch.bfloat16), b.to(torch.bfloat16), 0, None) is None
    monkeypatch.setenv("RNNBENCH_FASTPATH", "classic")
    assert scan._compiled(a, b, 0, None) is None
