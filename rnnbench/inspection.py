"""Parameter tables, closed-form parameter counts and I/O shapes of every registered recurrent core."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable

import torch
from torch import nn

from rnnbench.archs import ARCHS, get_arch
from rnnbench.archs.classic import CELLS, GATES, ClassicCore, make_rnn

# Closed-form parameter counts of the cores (the readout is not counted). Notation: I input width, H hidden
# size, L layers, D directions (2 if bidirectional), b = 1 with bias else 0, G gates, P projection size
# (0 = none), H_out = P or H, N the LRU's complex state size. Every formula below is read off the module's
# __init__ and checked against the built module for random sizes in tests/test_inspect.py.
#
# classic (nn.RNN G=1, nn.GRU G=3, nn.LSTM G=4), per layer and direction, with in = I on layer 0 and
# in = D*H_out above it (the next layer reads both directions' projected outputs):
#     weight_ih G*H*in + weight_hh G*H*H_out + bias_ih, bias_hh 2*G*H*b + weight_hr P*H
#   total = D*(G*H*(I + H_out) + 2*G*H*b + P*H) + (L-1)*D*(G*H*(D+1)*H_out + 2*G*H*b + P*H)
#
# indrnn, per layer: input Linear in*H + H*b, elementwise recurrent weight u of H (in = I, then H)
#   total = H*I + (L-1)*H*H + L*H*(1 + b)
#
# mingru, per layer: one fused Linear for gate and candidate, in -> 2H
#   total = 2*H*(I + (L-1)*H) + 2*L*H*b
#
# minlstm, per layer: one fused Linear for forget, input and candidate, in -> 3H
#   total = 3*H*(I + (L-1)*H) + 3*L*H*b
#
# lru: encoder Linear I -> H, then per block LayerNorm(H) (weight H, bias H*b), the LRU layer
# (nu_log, theta_log, gamma_log 3N; B_re, B_im, C_re, C_im 4*N*H; D H) and the GLU Linear H -> 2H
#   total = I*H + H*b + L*(2*H*H + 4*N*H + 3*N + 2*H + 3*H*b),   N = state_size or H


def _classic_count(arch: str, I: int, H: int, L: int, D: int, P: int, b: int) -> int:  # noqa: E741
    G, H_out = GATES[arch], P or H
    first = G * H * (I + H_out) + 2 * G * H * b + P * H
    upper = G * H * (D + 1) * H_out + 2 * G * H * b + P * H
    return D * first + (L - 1) * D * upper


def _classic_text(arch: str, I: int, H: int, L: int, D: int, P: int, b: int) -> str:  # noqa: E741
    G, H_out = GATES[arch], P or H
    first = G * H * (I + H_out) + 2 * G * H * b + P * H
    upper = G * H * (D + 1) * H_out + 2 * G * H * b + P * H
    return (f"D*(G*H*(I+H_out) + 2*G*H*b + P*H) + (L-1)*D*(G*H*(D+1)*H_out + 2*G*H*b + P*H) "
            f"with G={G} H={H} P={P} H_out={H_out} I={I} D={D} L={L} b={b}: "
            f"{D}*{first} + {L - 1}*{D}*{upper}")


def _modern_counts(I: int, H: int, L: int, b: int, N: int) -> dict[str, tuple[int, str]]:  # noqa: E741
    # (value, text) per modern arch; the text repeats the formula comment above with the numbers put in
    return {
        "indrnn": (H * I + (L - 1) * H * H + L * H * (1 + b),
                   f"H*I + (L-1)*H*H + L*H*(1+b) with H={H} I={I} L={L} b={b}: "
                   f"{H * I} + {(L - 1) * H * H} + {L * H * (1 + b)}"),
        "mingru": (2 * H * (I + (L - 1) * H) + 2 * L * H * b,
                   f"2*H*(I + (L-1)*H) + 2*L*H*b with H={H} I={I} L={L} b={b}: "
                   f"{2 * H * (I + (L - 1) * H)} + {2 * L * H * b}"),
        "minlstm": (3 * H * (I + (L - 1) * H) + 3 * L * H * b,
                    f"3*H*(I + (L-1)*H) + 3*L*H*b with H={H} I={I} L={L} b={b}: "
                    f"{3 * H * (I + (L - 1) * H)} + {3 * L * H * b}"),
        "lru": (I * H + H * b + L * (2 * H * H + 4 * N * H + 3 * N + 2 * H + 3 * H * b),
                f"I*H + H*b + L*(2*H*H + 4*N*H + 3*N + 2*H + 3*H*b) with H={H} N={N} I={I} L={L} b={b}: "
                f"{I * H} + {H * b} + {L}*{2 * H * H + 4 * N * H + 3 * N + 2 * H + 3 * H * b}"),
    }


def _constructor(arch: str) -> Callable[..., nn.Module] | None:
    # the registry's builders take **options (they import their module lazily), so their signatures say
    # nothing: ask the built-in core classes themselves (None for an arch a plugin added)
    from rnnbench.archs.indrnn import IndRNN
    from rnnbench.archs.lru import LRU
    from rnnbench.archs.mingru import MinGRU
    from rnnbench.archs.minlstm import MinLSTM

    modern = {"indrnn": IndRNN, "mingru": MinGRU, "minlstm": MinLSTM, "lru": LRU}
    get_arch(arch)
    return ClassicCore.__init__ if arch in CELLS else modern[arch].__init__ if arch in modern else None


def _arch_kwarg_names(arch: str) -> set[str]:
    """Keyword options of the arch's core beyond the ones every inspection function takes explicitly (for an arch
    a plugin added, the options it declares)."""
    fixed = {"self", "arch", "input_size", "hidden_size", "num_layers", "bias", "dropout", "bidirectional",
             "proj_size"}
    constructor = _constructor(arch)
    if constructor is None:
        return {option.name for option in get_arch(arch).arch_options}
    return {name for name in inspect.signature(constructor).parameters if name not in fixed}


def _positive(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")


def check_options(arch: str, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                  proj_size: int = 0, bias: bool = True, dropout: float = 0.0, **arch_kwargs) -> None:
    """Raise ValueError naming the bad value, before any module is built (the messages reach the CLI)."""
    spec = get_arch(arch)
    _positive(input_size, "input_size")
    _positive(hidden_size, "hidden_size")
    _positive(num_layers, "num_layers")
    if bidirectional and "bidirectional" not in spec.options:
        with_it = ", ".join(sorted(n for n, a in ARCHS.items() if "bidirectional" in a.options))
        raise ValueError(f"arch {arch!r} has no bidirectional form; archs with one: {with_it}")
    if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
        raise ValueError(f"proj_size must be a non-negative integer (0 = none), got {proj_size!r}")
    if proj_size and "proj_size" not in spec.options:
        raise ValueError(f"proj_size={proj_size} is an LSTM option; arch {arch!r} has none")
    if proj_size and proj_size >= hidden_size:
        raise ValueError(f"proj_size={proj_size} must be smaller than hidden_size={hidden_size}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout={dropout} must be in [0, 1)")
    if dropout > 0 and num_layers == 1:
        raise ValueError(f"dropout={dropout} acts between layers; it needs num_layers > 1")
    unknown = sorted(set(arch_kwargs) - _arch_kwarg_names(arch))
    if unknown:
        known = ", ".join(sorted(_arch_kwarg_names(arch))) or "none"
        raise ValueError(f"arch {arch!r} takes no option {unknown[0]!r}; its own options: {known}")
    state_size = arch_kwargs.get("state_size")
    if state_size is not None:
        _positive(state_size, "state_size")


def build_core(arch: str, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
               proj_size: int = 0, bias: bool = True, dropout: float = 0.0, **arch_kwargs) -> nn.Module:
    """The core exactly as the registry builds it (what rnnbench.model.build_model wraps with a readout)."""
    check_options(arch, input_size, hidden_size, num_layers, bidirectional, proj_size, bias, dropout, **arch_kwargs)
    spec = get_arch(arch)
    options = dict(num_layers=num_layers, bias=bias, dropout=dropout, **arch_kwargs)
    if "bidirectional" in spec.options:
        options["bidirectional"] = bidirectional
    if "proj_size" in spec.options:
        options["proj_size"] = proj_size
    return spec.build(input_size, hidden_size, **options)


def parameter_table(arch: str, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                    proj_size: int = 0, bias: bool = True, dropout: float = 0.0, **arch_kwargs) -> list[dict]:
    """[{name, shape}] of the core's parameters, in registration order.

    Classic cores report the names relative to their inner nn.RNN/GRU/LSTM (weight_ih_l0, weight_hr_l0,
    weight_hh_l1_reverse, ...), i.e. without ClassicCore's "rnn." prefix, so they match PyTorch's docs.
    """
    core = build_core(arch, input_size, hidden_size, num_layers, bidirectional, proj_size, bias, dropout,
                      **arch_kwargs)
    module = core.rnn if isinstance(core, ClassicCore) else core
    return [{"name": name, "shape": tuple(p.shape)} for name, p in module.named_parameters()]


def count(table: list[dict]) -> int:
    """Total number of parameters in a parameter_table."""
    total = 0
    for row in table:
        size = 1
        for dim in row["shape"]:
            size *= dim
        total += size
    return total


def _formula(arch: str, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, proj_size: int,
             bias: bool, dropout: float, arch_kwargs: dict) -> tuple[int, str]:
    check_options(arch, input_size, hidden_size, num_layers, bidirectional, proj_size, bias, dropout, **arch_kwargs)
    I, H, L, b = input_size, hidden_size, num_layers, int(bias)  # noqa: E741
    if arch in CELLS:
        D, P = (2 if bidirectional else 1), proj_size
        return _classic_count(arch, I, H, L, D, P, b), _classic_text(arch, I, H, L, D, P, b)
    N = arch_kwargs.get("state_size") or H
    modern = _modern_counts(I, H, L, b, N)
    if arch not in modern:
        raise ValueError(f"arch {arch!r} has no closed-form parameter count; rnnbench/inspection.py has one for "
                         f"{', '.join([*CELLS, *modern])}")
    return modern[arch]


def params_formula(arch: str, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                   proj_size: int = 0, bias: bool = True, dropout: float = 0.0, **arch_kwargs) -> int:
    """The closed-form parameter count of the core (see the formulas at the top of this module); builds nothing."""
    return _formula(arch, input_size, hidden_size, num_layers, bidirectional, proj_size, bias, dropout,
                    arch_kwargs)[0]


def formula_text(arch: str, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 proj_size: int = 0, bias: bool = True, dropout: float = 0.0, **arch_kwargs) -> str:
    """The closed form, its variables' values, its terms and its value, e.g. '... : 1*2560 + 1*1*3360 = 5920'."""
    value, text = _formula(arch, input_size, hidden_size, num_layers, bidirectional, proj_size, bias, dropout,
                           arch_kwargs)
    return f"{text} = {value}"


@torch.no_grad()
def io_shapes(arch: str, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
              proj_size: int = 0, bias: bool = True, dropout: float = 0.0, batch_size: int = 5, seq_len: int = 8,
              batch_first: bool = True, **arch_kwargs) -> dict[str, tuple[int, ...]]:
    """Shapes of input, output, h_n (and c_n for LSTM) for one zero batch.

    Classic archs run a fresh nn.RNN/GRU/LSTM built with the same options and the requested batch_first,
    so seq-first shapes are PyTorch's own: input (T,B,I), output (T,B,D*H_out), h_n (D*L,B,H_out),
    c_n (D*L,B,H). (ClassicCore itself is always batch-first.)

    Modern cores are batch-first only and return (outputs, last) rather than a per-layer state stack: their
    h_n is the shape of `last`, (B, H), the top layer's output at each sequence's last step. Asking for
    seq-first shapes of a modern arch is a ValueError, since those cores cannot take such input.
    """
    check_options(arch, input_size, hidden_size, num_layers, bidirectional, proj_size, bias, dropout, **arch_kwargs)
    _positive(batch_size, "batch_size")
    _positive(seq_len, "seq_len")
    shape = (batch_size, seq_len, input_size) if batch_first else (seq_len, batch_size, input_size)
    x = torch.zeros(shape)
    if arch in CELLS:
        rnn = make_rnn(arch, input_size, hidden_size, num_layers, bias, dropout, bidirectional, proj_size,
                       batch_first=batch_first).eval()
        with warnings.catch_warnings():
            # a CPU-backend notice (oneDNN has no projected LSTM), not a problem with the options
            warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
            output, state = rnn(x)
        shapes = {"input": tuple(x.shape), "output": tuple(output.shape)}
        if isinstance(state, tuple):
            shapes |= {"h_n": tuple(state[0].shape), "c_n": tuple(state[1].shape)}
        else:
            shapes["h_n"] = tuple(state.shape)
        return shapes
    if not batch_first:
        raise ValueError(f"arch {arch!r} takes batch-first input only (batch, seq, feature); drop --seq-first")
    core = build_core(arch, input_size, hidden_size, num_layers, bidirectional, proj_size, bias, dropout,
                      **arch_kwargs).eval()
    output, last = core(x)
    return {"input": tuple(x.shape), "output": tuple(output.shape), "h_n": tuple(last.shape)}


__all__ = ["build_core", "check_options", "count", "formula_text", "io_shapes", "parameter_table",
           "params_formula"]
