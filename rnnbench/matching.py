"""Iso-parameter and iso-state races: each arch's hidden size chosen so its size is closest to one target."""

from __future__ import annotations

from rnnbench.problems import get_problem

MAX_HIDDEN = 4096
TOLERANCE = 0.10  # a race is refused when an arch cannot come within 10% of the target
MATCH_KINDS = ("params", "state")


def parse_match(text: str) -> tuple[str, int]:
    """'params=20000' or 'state=128' -> (kind, target); raises ValueError naming the value."""
    kind, targets = parse_match_targets(text)
    if len(targets) > 1:
        raise ValueError(f"match {text!r}: one target here, e.g. {kind}={targets[0]}")
    return kind, targets[0]


def parse_match_targets(text: str) -> tuple[str, list[int]]:
    """'state=64,256,1024' -> ('state', [64, 256, 1024]): a sweep runs every arch at each target, so a metric can
    be read against size (Zoology's recall against state size); raises ValueError naming the value."""
    kind, _, values = text.partition("=")
    parts = values.split(",")
    if kind not in MATCH_KINDS or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise ValueError(f"match {text!r}: expected params=N or state=N with N a positive integer (or several, "
                         "comma-separated: state=64,256)")
    targets = [int(p) for p in parts]
    if len(set(targets)) != len(targets):
        raise ValueError(f"match {text!r}: a target is given twice")
    return kind, targets


def model_size(kind: str, arch: str, problem_name: str, hidden_size: int, model, problem_options=None) -> int:
    """Parameters of the whole model (core by its closed form, plus the linear readout), or its state size, with
    the arch's own options as a run at this hidden size resolves them (e.g. --arch-option lru.state_size), on the
    problem with its settings (`problem_options`: its input and output sizes may depend on them)."""
    # imported here: the closed forms live beside the modules they count, which import torch
    from rnnbench.inspection import params_formula
    from rnnbench.model import state_size

    # no size depends on T (only IndRNN's derived bound does): any valid length resolves the options
    options = {k: v for k, v in model.arch_values(arch, 2, hidden_size).items() if v is not None}
    if kind == "state":
        return state_size(arch, hidden_size, model.num_layers, model.bidirectional, model.proj_size,
                          options.get("state_size"))
    problem = get_problem(problem_name, problem_options)
    core = params_formula(arch, problem.input_size, hidden_size, model.num_layers, model.bidirectional,
                          model.proj_size, model.bias, model.dropout, **options)
    features = (model.proj_size or hidden_size) * (2 if model.bidirectional else 1)
    return core + features * problem.output_size + problem.output_size


def closest(kind: str, target: int, arch: str, problem_name: str, model,
            problem_options=None) -> tuple[int, int, tuple[int, int]]:
    """(hidden size, its size, (nearest size below the target, nearest above)) for one arch. Sizes grow with
    the hidden size, so the scan stops at the first size past the target."""
    below, above = None, None
    low_h = model.proj_size + 1 if model.proj_size else 1
    for hidden in range(low_h, MAX_HIDDEN + 1):
        size = model_size(kind, arch, problem_name, hidden, model, problem_options)
        if size <= target:
            below = (hidden, size)
        else:
            above = (hidden, size)
            break
    candidates = [c for c in (below, above) if c is not None]
    hidden, size = min(candidates, key=lambda c: (abs(c[1] - target), c[0]))
    return hidden, size, (below[1] if below else None, above[1] if above else None)


def matched_hidden_sizes(match: str, problem_name: str, archs: list[str], model,
                         problem_options=None) -> dict[str, int]:
    """arch -> hidden size for `match` ('params=N' or 'state=N'); raises ValueError, with the nearest
    achievable sizes of every arch that cannot come within 10% of N."""
    kind, target = parse_match(match)
    chosen, misses = {}, []
    for arch in archs:
        low_h = model.proj_size + 1 if model.proj_size else 1
        smallest = model_size(kind, arch, problem_name, low_h, model, problem_options)
        if smallest == model_size(kind, arch, problem_name, low_h + 1, model, problem_options):
            fixed = ", ".join(k for k in model.arch_options if k.startswith(f"{arch}."))
            raise ValueError(f"--match {match}: {arch}'s {kind} size is {smallest} whatever its hidden size "
                             f"(set by {fixed or 'its options'}); leave {fixed or 'them'} out to let --match "
                             f"choose it, or race without {arch}")
        hidden, size, (below, above) = closest(kind, target, arch, problem_name, model, problem_options)
        chosen[arch] = hidden
        if abs(size - target) > TOLERANCE * target:
            near = " or ".join(str(v) for v in (below, above) if v is not None)
            misses.append(f"{arch} (nearest {near})")
    if misses:
        raise ValueError(f"--match {match}: on {problem_name}, no hidden size up to {MAX_HIDDEN} brings "
                         f"{', '.join(misses)} within 10% of {target}")
    return chosen
