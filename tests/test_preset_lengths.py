"""Every preset's lengths as pre-registered: selective_copy's context holds real filler (>= 4x its tokens)."""

from __future__ import annotations

import pytest

from rnnbench.config import PRESETS, ProblemGrid, from_preset
from rnnbench.problems import get_problem


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_selective_copy_has_real_filler_in_every_preset(preset):
    problem = get_problem("selective_copy")
    for spec in from_preset(preset).every_stage():
        if spec.problem == "selective_copy":
            assert spec.seq_len >= problem.filler_factor * problem.n_tokens, (preset, spec.seq_len)
            assert not spec.min_len or spec.min_len >= problem.filler_factor * problem.n_tokens


def test_selective_copy_runs_with_filler_where_a_preset_has_no_grid_for_it():
    problem = get_problem("selective_copy")
    assert min(ProblemGrid.default("selective_copy").seq_lens) >= problem.filler_factor * problem.n_tokens
