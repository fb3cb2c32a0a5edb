"""Tests for the memory problems in rnnbench.problems, against the definitions in docs/PROBLEMS.md.

Semantic rules, baselines, scores and solved rules are checked on small hand-made examples whose expected
values were worked out by hand; generation is checked for shapes, ranges, determinism and (on large n)
the statistics that the analytic baselines rely on.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnbench.problems import PROBLEMS, get_problem
from rnnbench.problems.adding import Adding
from rnnbench.problems.copy_memory import CopyMemory
from rnnbench.problems.sequential_xor import SequentialXor

pytestmark = pytest.mark.timeout(60)

NAMES = ["adding", "copy_memory", "sequential_xor"]  # the five newer ones: tests/test_new_problems.py
# name -> (input_size, output_size, target steps as a function of T)
SIZES = {
    "copy_memory": (10, 10, lambda t: 1),
    "sequential_xor": (1, 1, lambda t: t),
    "adding": (2, 1, lambda t: 1),
}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def failed_rows(checks: dict[str, tuple[str, np.ndarray]], name: str) -> list[int]:
    """Row indices that fail the named semantic check."""
    return np.flatnonzero(~checks[name][1]).tolist()


def all_ok(checks: dict[str, tuple[str, np.ndarray]]) -> bool:
    return all(bool(ok.all()) for _, ok in checks.values())


# ---- registry and sequence lengths -----------------------------------------------------------------------


def test_registry_has_the_three_problems():
    assert set(NAMES) <= set(PROBLEMS)
    for name in NAMES:
        assert get_problem(name).name == name


def test_get_problem_unknown_lists_valid_names():
    with pytest.raises(ValueError) as info:
        get_problem("copy")
    message = str(info.value)
    assert "'copy'" in message
    for name in NAMES:
        assert name in message


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [1, 0, -3])
def test_check_seq_len_rejects_too_short(name, bad):
    with pytest.raises(ValueError, match=rf"seq_len={bad}\b.*>= 2"):
        get_problem(name).check_seq_len(bad)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [2.5, "10", None, True])
def test_check_seq_len_rejects_non_int(name, bad):
    with pytest.raises(ValueError) as info:
        get_problem(name).check_seq_len(bad)
    assert repr(bad) in str(info.value)
    assert "integer" in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_check_seq_len_accepts_ints(name):
    problem = get_problem(name)
    for ok in (2, 3, 100, np.int64(50)):
        problem.check_seq_len(ok)


# ---- generation: shapes, dtypes, ranges, determinism -----------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seq_len", [2, 3, 17])
def test_generate_shapes_and_dtypes(name, seq_len):
    problem = get_problem(name)
    x, y = problem.generate(7, seq_len, rng())
    n_in, n_out, steps = SIZES[name]
    assert (problem.input_size, problem.output_size) == (n_in, n_out)
    assert x.shape == (7, seq_len, n_in)
    assert y.shape == (7, steps(seq_len), n_out) == (7, problem.target_steps(seq_len), n_out)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert problem.target_mask(seq_len).shape == (problem.target_steps(seq_len),)
    assert problem.target_mask(seq_len).dtype == bool


@pytest.mark.parametrize("name", NAMES)
def test_generated_data_passes_its_own_checks_and_ranges(name):
    problem = get_problem(name)
    x, y = problem.generate(2000, 12, rng(3))
    assert all_ok(problem.semantic_checks(x, y))
    assert np.isfinite(x).all() and np.isfinite(y).all()
    assert problem.x_range[0] <= x.min() and x.max() <= problem.x_range[1]
    assert problem.y_range[0] <= y.min() and y.max() <= problem.y_range[1]
    for name_, (column, ok) in problem.semantic_checks(x, y).items():
        assert column in ("x", "y"), name_
        assert ok.shape == (2000,) and ok.dtype == bool


def test_value_ranges_per_problem():
    x, y = CopyMemory().generate(500, 6, rng(1))
    assert x[:, 0].min() >= 0 and x[:, 0].max() < 1 and x[:, 0].max() > 0.9
    assert x[:, 1:].min() >= 0 and x[:, 1:].max() <= 0.1
    x, y = SequentialXor().generate(500, 6, rng(1))
    assert set(np.unique(x)) == {0.0, 1.0} and set(np.unique(y)) == {0.0, 1.0}
    assert (y[:, 0] == 0).all()
    x, y = Adding().generate(500, 6, rng(1))
    assert set(np.unique(x[:, :, 1])) == {0.0, 1.0}
    assert (x[:, :, 1].sum(axis=1) == 2).all()
    assert 0 <= x[:, :, 0].min() and x[:, :, 0].max() < 1
    assert 0 <= y.min() and y.max() < 2


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_arrays_different_seed_different(name):
    problem = get_problem(name)
    x1, y1 = problem.generate(50, 9, rng(42))
    x2, y2 = problem.generate(50, 9, rng(42))
    x3, _ = problem.generate(50, 9, rng(43))
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert x1.tobytes() == x2.tobytes() and y1.tobytes() == y2.tobytes()
    assert not np.array_equal(x1, x3)


# ---- copy_memory: hand-checked ---------------------------------------------------------------------------


def _copy_rows() -> tuple[np.ndarray, np.ndarray]:
    """Three valid rows, T = 4, D = 10: step 0 a vector, steps 1..3 small noise, target = step 0."""
    x = np.zeros((3, 4, 10), dtype=np.float32)
    x[0, 0] = np.linspace(0, 1, 10)
    x[1, 0] = 0.25
    x[2, 0] = 1.0
    x[:, 1:] = 0.05
    x[2, 3] = 0.1  # the largest allowed noise
    y = x[:, :1].copy()
    return x, y


def test_copy_target_equals_step0():
    x, y = CopyMemory().generate(20, 5, rng(7))
    assert np.array_equal(y[:, 0], x[:, 0])


def test_copy_hand_checked_valid_rows():
    x, y = _copy_rows()
    assert all_ok(CopyMemory().semantic_checks(x, y))


def test_copy_semantic_checks_flag_corrupted_rows():
    x, y = _copy_rows()
    y[1, 0, 4] = 0.26  # target differs from step 0 in one component
    x[2, 2, 0] = 0.5  # noise above 0.1 at a later step (still inside [0, 1])
    x[0, 3, 9] = -0.01  # negative noise
    checks = CopyMemory().semantic_checks(x, y)
    assert checks["target_equals_step0"][0] == "y"
    assert checks["noise_in_0_to_0.1"][0] == "x"
    assert failed_rows(checks, "target_equals_step0") == [1]
    assert failed_rows(checks, "noise_in_0_to_0.1") == [0, 2]


def test_copy_baseline_score_solved():
    p = CopyMemory()
    assert p.baseline(50) == pytest.approx(1 / 12)
    assert p.higher_is_better is False and p.metric_name == "mse"
    assert p.solved(0.00833, 50) is True  # <= 0.1 / 12 = 0.008333...
    assert p.solved(0.1 / 12, 50) is True
    assert p.solved(0.0084, 50) is False
    assert p.score(0.00833, 50) == pytest.approx(0.9, abs=1e-3)  # 1 - 0.00833 * 12 = 0.90004
    assert p.score(1 / 12, 50) == pytest.approx(0.0)
    assert p.score(0.0, 50) == pytest.approx(1.0)
    assert p.score(1 / 6, 50) == pytest.approx(-1.0)


def test_copy_metric_mse_hand_checked():
    p = CopyMemory()
    y = np.zeros((2, 1, 10), dtype=np.float32)
    pred = y.copy()
    pred[0, 0, :] = 0.5  # squared error 0.25 on 10 of 20 values -> MSE 0.125
    assert p.metrics(pred, y, p.target_mask(5))["mse"] == pytest.approx(0.125)


# ---- sequential_xor: hand-checked ------------------------------------------------------------------------


def test_xor_hand_checked_example():
    """The docstring's example: x 1 0 0 1 1 -> y - 1 0 1 0 (step 0 stored as 0)."""
    p = SequentialXor()
    x = np.array([1, 0, 0, 1, 1], dtype=np.float32).reshape(1, 5, 1)
    y = np.array([0, 1, 0, 1, 0], dtype=np.float32).reshape(1, 5, 1)
    assert all_ok(p.semantic_checks(x, y))
    assert p.target_mask(5).tolist() == [False, True, True, True, True]


def test_xor_generated_targets_follow_rule():
    x, y = SequentialXor().generate(100, 8, rng(5))
    xb = x[:, :, 0].astype(int)
    assert np.array_equal(y[:, 1:, 0], (xb[:, 1:] ^ xb[:, :-1]).astype(np.float32))
    assert (y[:, 0, 0] == 0).all()


def test_xor_semantic_checks_flag_corrupted_rows():
    p = SequentialXor()
    bits = np.array([[1, 0, 0, 1, 1], [0, 0, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 0]], dtype=np.float32)
    targets = np.array([[0, 1, 0, 1, 0], [0, 0, 1, 0, 1], [0, 0, 0, 0, 0], [0, 1, 1, 1, 1]], dtype=np.float32)
    x, y = bits[:, :, None].copy(), targets[:, :, None].copy()
    assert all_ok(p.semantic_checks(x, y))
    y[1, 3, 0] = 1 - y[1, 3, 0]  # flipped target
    y[3, 0, 0] = 1  # step 0 must be stored as 0
    x[2, 2, 0] = 2  # not a bit
    checks = p.semantic_checks(x, y)
    assert checks["inputs_are_bits"][0] == "x" and checks["target_is_xor_of_neighbours"][0] == "y"
    assert failed_rows(checks, "inputs_are_bits") == [2]
    # row 2's targets no longer match its (non-bit) inputs either: 1 != 2 at steps 2 and 3
    assert failed_rows(checks, "target_is_xor_of_neighbours") == [1, 2, 3]


def test_xor_baseline_score_solved():
    p = SequentialXor()
    assert p.baseline(10) == 0.5
    assert p.higher_is_better is True and p.metric_name == "accuracy" and p.loss == "bce"
    assert p.score(0.75, 10) == pytest.approx(0.5)
    assert p.score(0.5, 10) == pytest.approx(0.0)
    assert p.score(1.0, 10) == pytest.approx(1.0)
    assert p.solved(0.99, 10) is True
    assert p.solved(0.9899, 10) is False


def test_xor_accuracy_excludes_step0():
    p = SequentialXor()
    y = np.array([0, 1, 0, 1, 0], dtype=np.float32).reshape(1, 5, 1)
    logits = np.where(y > 0.5, 3.0, -3.0).astype(np.float32)
    logits[0, 0, 0] = 5.0  # wrong at step 0: must not count
    assert p.metrics(logits, y, p.target_mask(5))["accuracy"] == 1.0
    logits[0, 2, 0] = 5.0  # wrong at step 2: 3 of 4 counted steps right
    assert p.metrics(logits, y, p.target_mask(5))["accuracy"] == 0.75


# ---- adding: hand-checked --------------------------------------------------------------------------------


def _adding_row(values, mask, target) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack([np.asarray(values, np.float32), np.asarray(mask, np.float32)], axis=-1)[None]
    return x, np.array(target, dtype=np.float32).reshape(1, 1, 1)


def test_adding_hand_checked_example():
    """The docstring's example: values 0.5 0.9 0.1 0.8 0.2 0.3, mask at 0 and 4 -> 0.5 + 0.2 = 0.7."""
    p = Adding()
    values = [0.5, 0.9, 0.1, 0.8, 0.2, 0.3]
    x, y = _adding_row(values, [1, 0, 0, 0, 1, 0], np.float32(0.5) + np.float32(0.2))
    assert y[0, 0, 0] == pytest.approx(0.7)
    assert all_ok(p.semantic_checks(x, y))
    x, y = _adding_row(values, [1, 0, 0, 0, 1, 0], 0.75)
    assert failed_rows(p.semantic_checks(x, y), "target_is_sum_of_marked") == [0]


def test_adding_generated_target_is_sum_of_marked():
    x, y = Adding().generate(200, 10, rng(9))
    marked = (x[:, :, 0] * x[:, :, 1]).sum(axis=1)
    np.testing.assert_allclose(y[:, 0, 0], marked, atol=1e-6)
    assert (x[:, :5, 1].sum(axis=1) == 1).all() and (x[:, 5:, 1].sum(axis=1) == 1).all()


def test_adding_semantic_checks_flag_corrupted_rows():
    p = Adding()
    values = np.array([0.5, 0.9, 0.1, 0.8, 0.2, 0.3], dtype=np.float32)
    masks = [
        [1, 0, 0, 0, 1, 0],  # 0 ok
        [1, 0, 0, 1, 1, 0],  # 1 three ones
        [1, 1, 0, 0, 0, 0],  # 2 two ones, both in the first half
        [0, 0, 0, 0, 0, 0],  # 3 no ones
        [0, 0, 0.5, 0, 1, 0],  # 4 not binary
        [0, 1, 0, 0, 0, 1],  # 5 ok
    ]
    x = np.zeros((6, 6, 2), dtype=np.float32)
    x[:, :, 0] = values
    x[:, :, 1] = masks
    sums = [0.5 + 0.2, 0.5 + 0.8 + 0.2, 0.5 + 0.9, 0.0, 0.05 + 0.2, 0.9 + 0.3]
    y = np.array(sums, dtype=np.float32).reshape(6, 1, 1)
    y[0, 0, 0] = values[0] + values[4]  # exact float32 sums for the rows meant to be right
    y[5, 0, 0] = values[1] + values[5]
    checks = p.semantic_checks(x, y)
    assert failed_rows(checks, "mask_is_binary") == [4]
    assert failed_rows(checks, "mask_has_one_one_per_half") == [1, 2, 3, 4]
    # rows 1-3 hold the sum of whatever is marked, so only the mask check catches them; row 4's 0.5 marks nothing
    assert failed_rows(checks, "target_is_sum_of_marked") == [4]
    y[5, 0, 0] += 0.01
    y[1, 0, 0] = values[0] + values[4]  # two of the three marked values
    assert failed_rows(p.semantic_checks(x, y), "target_is_sum_of_marked") == [1, 4, 5]


def test_adding_baseline_score_solved():
    p = Adding()
    assert p.baseline(100) == pytest.approx(1 / 6)
    assert p.solved(0.01, 100) is True
    assert p.solved(0.0101, 100) is False
    assert p.score(1 / 12, 100) == pytest.approx(0.5)
    assert p.score(0.01, 100) == pytest.approx(0.94)


def test_adding_metrics_include_within_tolerance():
    p = Adding()
    y = np.array([1.0, 0.5, 1.5, 0.2], dtype=np.float32).reshape(4, 1, 1)
    pred = y + np.array([0.0, 0.03, -0.05, 0.1], dtype=np.float32).reshape(4, 1, 1)
    out = p.metrics(pred, y, p.target_mask(10))
    assert set(out) == {"mse", "se", "within_0.04"}
    assert out["within_0.04"] == pytest.approx(0.5)  # errors 0, 0.03 inside; 0.05, 0.1 outside
    assert out["mse"] == pytest.approx((0.03**2 + 0.05**2 + 0.1**2) / 4, rel=1e-4)


# ---- statistics on large n -------------------------------------------------------------------------------


def test_adding_mask_positions_uniform_in_each_half():
    n, t = 100_000, 10
    x, _ = Adding().generate(n, t, rng(11))
    mask = x[:, :, 1]
    first, second = mask[:, :5].argmax(axis=1), 5 + mask[:, 5:].argmax(axis=1)
    counts_first = np.bincount(first, minlength=5)
    counts_second = np.bincount(second, minlength=t)[5:]
    # each position expects n/5 = 20,000 (sd ~ 126); 5 % is ~ 8 sd
    for counts in (counts_first, counts_second):
        assert counts.sum() == n
        np.testing.assert_allclose(counts, n / 5, rtol=0.05)


def test_copy_noise_bounded_and_spread():
    x, _ = CopyMemory().generate(20_000, 20, rng(12))
    noise = x[:, 1:]
    assert noise.min() >= 0 and noise.max() <= 0.1
    assert noise.max() > 0.099 and noise.mean() == pytest.approx(0.05, rel=0.01)


@pytest.mark.parametrize("name", NAMES)
def test_constant_prediction_scores_the_analytic_baseline(name):
    """A model with no memory (a constant) scores the analytic baseline on generated data, within 3 %."""
    p = get_problem(name)
    seq_len = 20
    x, y = p.generate(40_000, seq_len, rng(13))
    constant = {"copy_memory": 0.5, "adding": 1.0, "sequential_xor": 0.0}[name]  # xor: logit 0 -> predicts 0
    pred = np.full_like(y, constant)
    metric = p.metrics(pred, y, p.target_mask(seq_len))[p.metric_name]
    assert metric == pytest.approx(p.baseline(seq_len), rel=0.03)
    assert p.score(metric, seq_len) == pytest.approx(0.0, abs=0.03)
    assert not p.solved(metric, seq_len)


# ---- what every registered problem declares ----------------------------------------------------------------
RULES = {  # the pre-registered rules (docs/PROBLEMS.md), as the report prints them
    "copy_memory": "test MSE <= 0.1 x baseline (1/12)", "sequential_xor": "per-step test accuracy >= 0.99",
    "adding": "test MSE <= 0.01", "copy_sequence": "test accuracy on the 10 recalled symbols >= 0.99",
    "selective_copy": "per-token test accuracy at the 16 query steps >= 0.99",
    "temporal_order": "test accuracy >= 0.99", "parity": "test accuracy >= 0.99",
    "sequential_digits": "test accuracy >= 0.95", "sequential_digits_permuted": "test accuracy >= 0.95",
    "group_word": "per-step test accuracy from step 2 on >= 0.99",
    "mqar": "test accuracy at the answer steps >= 0.99", "flip_flop": "test accuracy at the reads >= 1",
}


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_declared_threshold_is_where_the_rule_flips(name):
    from rnnbench import report

    p = get_problem(name)
    seq_len = p.default_grid.seq_lens[0]
    assert p.solved_rule() == RULES[name]
    threshold = p.solved_threshold(seq_len)
    assert report.solved_threshold(name, seq_len) == threshold
    if name == "copy_sequence":  # its rule reads recall accuracy, not its primary metric (cross-entropy)
        assert threshold is None
        return
    beyond = np.nextafter(threshold, -np.inf if p.higher_is_better else np.inf)
    assert p.solved(threshold, seq_len) and not p.solved(float(beyond), seq_len)
    assert not p.solved(p.baseline(seq_len), seq_len)


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_declared_default_grid_runs_at_lengths_the_problem_allows(name):
    p = get_problem(name)
    for seq_len in p.default_grid.seq_lens:
        p.check_seq_len(seq_len)
    assert p.default_grid.hidden_size >= 1 and p.default_grid.steps >= 1
