"""Tests for the five problems of PROBLEMS.md "Five more problems" and the "ce" loss kind they use.

Hand-made rows (worked out by hand in each test) pin the layouts, targets and semantic checks; corrupted
files must be rejected by the dataset schema; generation is deterministic per seed; and on a stored test
split the memoryless predictor reproduces each problem's analytic baseline within 3 standard errors.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from rnnbench import datasets
from rnnbench.datasets import DatasetSpec
from rnnbench.losses import masked_loss
from rnnbench.model import build_model
from rnnbench.problems import PROBLEMS, check_min_len, get_problem
from rnnbench.problems import sequential_digits as digits_module
from rnnbench.problems.base import decode_one_hot, one_hot, sequence_cross_entropy
from rnnbench.problems.copy_sequence import CopySequence
from rnnbench.problems.parity import Parity
from rnnbench.problems.selective_copy import SelectiveCopy
from rnnbench.problems.sequential_digits import SequentialDigits, SequentialDigitsPermuted
from rnnbench.problems.temporal_order import TemporalOrder, windows
from schemas.dataset import validate_table
from schemas.errors import ValidationError
from tasks import dataset_store

pytestmark = pytest.mark.timeout(60)

NEW = ["copy_sequence", "selective_copy", "temporal_order", "parity", "sequential_digits",
       "sequential_digits_permuted"]
# name -> (T used in these tests, input_size, output_size = classes, input steps, target steps)
SIZES = {
    "copy_sequence": (5, 10, 9, 25, 25),
    "selective_copy": (20, 16, 16, 36, 36),
    "temporal_order": (12, 8, 4, 12, 1),
    "parity": (9, 2, 2, 9, 1),
    "sequential_digits": (64, 1, 10, 64, 1),
    "sequential_digits_permuted": (64, 1, 10, 64, 1),
}
# the order of one-hot channels in temporal_order
a, b, c, d, B, E, X, Y = range(8)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def spec_for(name: str, n: int = 40, split: str = "train", seed: int = 3, min_len: int = 0) -> DatasetSpec:
    return DatasetSpec(name, SIZES[name][0], split, seed, n, min_len)


def failed_rows(checks: dict[str, tuple[str, np.ndarray]], name: str) -> list[int]:
    return np.flatnonzero(~checks[name][1]).tolist()


def all_ok(checks: dict[str, tuple[str, np.ndarray]]) -> bool:
    return all(bool(ok.all()) for _, ok in checks.values())


def rejected(name: str, seq_len: int, x: np.ndarray, y: np.ndarray, lengths: np.ndarray | None = None,
             min_len: int = 0) -> str:
    """The dataset schema's error message for these arrays stored as a file of `name` (must be rejected)."""
    spec = DatasetSpec(name, seq_len, "train", 0, len(x), min_len)
    with pytest.raises(ValidationError) as info:
        validate_table(datasets.to_table(spec, x, y, lengths), "mem", expected=spec)
    return str(info.value)


def accepted(name: str, seq_len: int, x: np.ndarray, y: np.ndarray, lengths: np.ndarray | None = None,
             min_len: int = 0) -> None:
    spec = DatasetSpec(name, seq_len, "train", 0, len(x), min_len)
    validate_table(datasets.to_table(spec, x, y, lengths), "mem", expected=spec)


def classes(values, n_steps: int | None = None) -> np.ndarray:
    """Class indices -> a stored target of width 1, shape (rows, steps, 1)."""
    y = np.asarray(values, dtype=np.float32)
    return y.reshape(len(y), -1 if n_steps is None else n_steps, 1)


# ---- registry, sizes, generation -------------------------------------------------------------------------


def test_registry_has_the_new_problems_under_their_own_names():
    for name in NEW:
        assert get_problem(name).name == name
    assert {"adding", "copy_memory", "sequential_xor"} <= set(PROBLEMS)


@pytest.mark.parametrize("name", NEW)
def test_sizes_and_target_layout(name):
    problem = get_problem(name)
    seq_len, n_in, n_out, in_steps, target_steps = SIZES[name]
    x, y, lengths = datasets.generate_arrays(spec_for(name, n=7))
    assert lengths is None
    assert (problem.input_size, problem.output_size, problem.loss, problem.target_width) == (n_in, n_out, "ce", 1)
    assert problem.input_steps(seq_len) == in_steps and problem.target_steps(seq_len) == target_steps
    assert x.shape == (7, in_steps, n_in) and y.shape == (7, target_steps, 1)
    assert x.dtype == np.float32 and y.dtype == np.float32
    mask = problem.target_mask(seq_len)
    assert mask.shape == (target_steps,) and mask.dtype == bool and mask.any()


def test_existing_problems_keep_their_layout():
    for name, width in (("adding", 1), ("copy_memory", 10), ("sequential_xor", 1)):
        problem = get_problem(name)
        assert problem.target_width == problem.output_size == width
        assert problem.input_steps(13) == 13


@pytest.mark.parametrize("name", NEW)
def test_generated_data_passes_its_checks_ranges_and_the_schema(name, tmp_path):
    problem = get_problem(name)
    spec = spec_for(name, n=500)
    x, y = datasets.generate(spec)
    checks = problem.semantic_checks(x, y)
    assert all_ok(checks)
    for check, (column, ok) in checks.items():
        assert column in ("x", "y"), check
        assert ok.shape == (500,) and ok.dtype == bool, check
    assert problem.x_range[0] <= x.min() and x.max() <= problem.x_range[1]
    assert problem.y_range[0] <= y.min() and y.max() <= problem.y_range[1]
    assert np.array_equal(y, np.rint(y))  # class indices
    path = dataset_store.build(spec, str(tmp_path)).path
    loaded = dataset_store.load(path, expected=spec)
    assert np.array_equal(loaded.x, x) and np.array_equal(loaded.y, y)
    _, _, _, in_steps, target_steps = SIZES[name]
    assert loaded.meta["x_shape"] == f"{in_steps},{problem.input_size}"
    assert loaded.meta["y_shape"] == f"{target_steps},1"


@pytest.mark.parametrize("name", NEW)
def test_same_seed_same_bytes_other_seed_or_split_differs(name):
    spec = spec_for(name, n=60)
    x1, y1 = datasets.generate(spec)
    x2, y2 = datasets.generate(spec)
    assert x1.tobytes() == x2.tobytes() and y1.tobytes() == y2.tobytes()
    x3, _ = datasets.generate(DatasetSpec(spec.problem, spec.seq_len, spec.split, spec.seed + 1, spec.n_rows))
    x4, _ = datasets.generate(DatasetSpec(spec.problem, spec.seq_len, "test", spec.seed, spec.n_rows))
    assert not np.array_equal(x1, x3) and not np.array_equal(x1, x4)


@pytest.mark.parametrize("name, too_short", [("copy_sequence", 1), ("selective_copy", 15), ("temporal_order", 9),
                                             ("parity", 1)])
def test_too_short_seq_len_is_refused(name, too_short):
    problem = get_problem(name)
    with pytest.raises(ValueError, match=rf"seq_len={too_short}\b.*>= {too_short + 1}"):
        problem.check_seq_len(too_short)
    problem.check_seq_len(too_short + 1)


def test_variable_length_only_where_defined():
    assert sorted(k for k, p in PROBLEMS.items() if p.supports_variable_length) == [
        "adding", "copy_memory", "copy_sequence", "flip_flop", "group_word", "mqar", "parity", "selective_copy",
        "sequential_xor", "temporal_order"]
    for name in ("sequential_digits", "sequential_digits_permuted"):
        with pytest.raises(ValueError, match="problems with one: adding, copy_memory, copy_sequence, flip_flop, "
                                             "group_word, mqar, parity, selective_copy, sequential_xor, "
                                             "temporal_order"):
            check_min_len(name, 5, 64)
        with pytest.raises(ValueError, match=f"min_len=5: problem '{name}' has no variable-length form"):
            get_problem(name).check_min_len(5, 64)


# ---- one-hot helpers and the "ce" loss and metric ----------------------------------------------------------


def test_one_hot_round_trip_and_padding():
    ids = np.array([[2, 0, -1], [1, 1, -1]])
    x = one_hot(ids, 3)
    assert x.tolist() == [[[0, 0, 1], [1, 0, 0], [0, 0, 0]], [[0, 1, 0], [0, 1, 0], [0, 0, 0]]]
    x[1, 0] = [0, 0.5, 0.5]  # sums to 1 but is not one-hot
    got, valid, empty = decode_one_hot(x)
    assert got[0].tolist()[:2] == [2, 0]
    assert valid.tolist() == [[True, True, False], [False, True, False]]
    assert empty.tolist() == [[False, False, True], [False, False, True]]


def test_ce_loss_hand_checked():
    # 2 sequences x 3 steps x 4 classes; step 0 masked out
    pred = torch.zeros(2, 3, 4)
    pred[0, 1] = torch.tensor([0.0, math.log(3.0), 0.0, 0.0])  # p(class 1) = 3/6
    y = torch.tensor([[[2.0], [1.0], [3.0]], [[0.0], [0.0], [1.0]]])
    mask = torch.tensor([False, True, True])
    # kept steps: ln 2 (p = 1/2) and three uniform ones, ln 4 each
    want = (math.log(2.0) + 3 * math.log(4.0)) / 4
    loss = masked_loss("ce", pred.requires_grad_(), y, mask)
    assert loss.item() == pytest.approx(want, rel=1e-6)
    loss.backward()
    assert pred.grad[:, 0].abs().sum() == 0 and pred.grad[:, 1:].abs().sum() > 0
    with pytest.raises(ValueError, match="valid kinds: bce, ce, mse"):
        masked_loss("hinge", pred, y, mask)


def test_ce_accuracy_per_sequence_over_masked_steps():
    problem = SelectiveCopy()
    mask = np.array([False, True, True, True])
    y = classes([[5, 1, 2, 3], [0, 4, 4, 4]])
    pred = np.zeros((2, 4, 16), dtype=np.float32)
    pred[0, [1, 2, 3], [1, 2, 9]] = 1.0  # right, right, wrong
    pred[1, [0, 1, 2, 3], [7, 4, 4, 4]] = 1.0  # step 0 is wrong but masked out
    assert problem.sequence_metric(pred, y, mask).tolist() == pytest.approx([2 / 3, 1.0])
    out = problem.metrics(pred, y, mask)
    assert out["accuracy"] == pytest.approx(5 / 6)
    assert out["se"] == pytest.approx(np.std([2 / 3, 1.0], ddof=1) / math.sqrt(2))


def test_sequence_cross_entropy_hand_checked():
    # logits (0, ln 3): p = (1/4, 3/4); class 1 costs ln(4/3), class 0 costs ln 4
    pred = np.array([[[0.0, math.log(3)], [0.0, math.log(3)]], [[0.0, 0.0], [50.0, -50.0]]])
    y = classes([[1, 0], [1, 0]])
    got = sequence_cross_entropy(pred, y, np.array([True, True]))
    assert got.tolist() == pytest.approx([(math.log(4 / 3) + math.log(4)) / 2, (math.log(2) + 0.0) / 2])
    assert sequence_cross_entropy(pred, y, np.array([True, False])).tolist() == pytest.approx(
        [math.log(4 / 3), math.log(2)])


@pytest.mark.parametrize("name", NEW)
def test_model_outputs_fit_the_targets_and_the_loss(name):
    """A model built from the problem's sizes produces logits that the loss and the metrics take as they are."""
    problem = get_problem(name)
    seq_len = SIZES[name][0]
    x, y = datasets.generate(spec_for(name, n=4))
    torch.manual_seed(0)
    model = build_model("gru", problem.input_size, problem.output_size, problem.target_kind, 8)
    pred = model(torch.from_numpy(x))
    assert pred.shape == (4, problem.target_steps(seq_len), problem.output_size)
    mask = problem.target_mask(seq_len)
    loss = masked_loss(problem.loss, pred, torch.from_numpy(y), torch.from_numpy(mask))
    assert torch.isfinite(loss)
    out = problem.metrics(pred.detach().numpy(), y, mask)
    assert math.isfinite(out[problem.metric_name]) and "se" in out


# ---- copy_sequence -----------------------------------------------------------------------------------------


def _copy_rows(rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The docstring's example, T = 2 (22 steps): 3 1 4 1 5 2 6 5 3 5, one blank, the delimiter, 10 blanks;
    target 12 blanks, then the 10 symbols."""
    data = [3, 1, 4, 1, 5, 2, 6, 5, 3, 5]
    ids = np.array([data + [0, 9] + [0] * 10] * rows)
    y = classes([[0] * 12 + data] * rows)
    return one_hot(ids, 10), y


def test_copy_sequence_hand_checked_example_and_generator_layout():
    p = CopySequence()
    x, y = _copy_rows()
    assert x.shape == (1, 22, 10) and y.shape == (1, 22, 1)
    assert all_ok(p.semantic_checks(x, y))
    gx, gy = p.generate(3, 2, rng(1))
    ids = gx.argmax(axis=-1)
    assert np.all((ids[:, :10] >= 1) & (ids[:, :10] <= 8))
    assert np.all(ids[:, 10] == 0) and np.all(ids[:, 11] == 9) and np.all(ids[:, 12:] == 0)
    assert np.all(gy[:, :12, 0] == 0) and np.array_equal(gy[:, 12:, 0], ids[:, :10])
    assert p.target_mask(2).all()


def test_copy_sequence_corruptions_are_caught():
    p = CopySequence()
    x, y = _copy_rows(6)
    x[1, 11], x[1, 10] = x[1, 10].copy(), x[1, 11].copy()  # delimiter one step early
    x[2, 4] = one_hot(np.array([9]), 10)  # a delimiter among the data symbols
    y[3, 12, 0] = 4  # first recalled symbol wrong (3 shown)
    y[4, 5, 0] = 2  # a symbol before the recall steps
    row5 = x[5].copy()
    x[5, 15, 0] = 0.5  # a blank that is not one-hot
    checks = p.semantic_checks(x, y)
    assert failed_rows(checks, "inputs_one_hot") == [5]
    assert failed_rows(checks, "blanks_and_delimiter_in_place") == [1]
    # row 2's data symbol 4 is now 9: out of range, and the target no longer recalls it
    assert failed_rows(checks, "data_symbols_in_1_to_8") == [2]
    assert failed_rows(checks, "target_recalls_data_symbols") == [2, 3]
    assert failed_rows(checks, "target_blank_until_recall") == [4]
    x[5] = row5  # a file stores token ids: a step that is not one-hot cannot even be written (encoding.Codec)
    message = rejected("copy_sequence", 2, x, y)
    assert "check 'blanks_and_delimiter_in_place': 1 of 6 rows failed" in message
    assert "check 'target_recalls_data_symbols': 2 of 6 rows failed" in message


def test_copy_sequence_baseline_metrics_and_solved_rule():
    p = CopySequence()
    assert p.baseline(2) == pytest.approx(10 * math.log(8) / 22)
    assert p.baseline(100) == pytest.approx(10 * 2.0794415 / 120)
    assert p.metric_name == "cross_entropy" and p.higher_is_better is False
    x, y = _copy_rows(2)
    mask = p.target_mask(2)
    # uniform logits over the 9 outputs: ln 9 at every step; argmax 0 = blank, so no symbol recalled
    out = p.metrics(np.zeros((2, 22, 9), dtype=np.float32), y, mask)
    assert out["cross_entropy"] == pytest.approx(math.log(9))
    assert out["recall_accuracy"] == 0.0 and out["se"] == 0.0
    # the memoryless predictor as logits: blank for sure, then uniform over 1..8 -> 10 ln 8 / 22
    logits = np.full((2, 22, 9), -1e4, dtype=np.float32)
    logits[:, :12, 0] = 0.0
    logits[:, 12:, 1:] = 0.0
    assert p.metrics(logits, y, mask)["cross_entropy"] == pytest.approx(p.baseline(2), rel=1e-6)
    # right at 9 of the 10 recall steps in row 0, all 10 in row 1: recall 19/20
    sure = np.full((2, 22, 9), -20.0, dtype=np.float32)
    np.put_along_axis(sure, y.astype(np.int64), 20.0, axis=-1)
    sure[0, 12] = 0.0
    sure[0, 12, 7] = 1.0
    out = p.metrics(sure, y, mask)
    assert out["recall_accuracy"] == pytest.approx(0.95)
    assert p.solved_from(out, 2) is False
    sure[0, 12, 3] = 2.0
    assert p.solved_from(p.metrics(sure, y, mask), 2) is True
    with pytest.raises(ValueError, match="solved_from"):
        p.solved(0.0, 2)
    assert p.score(p.baseline(2) / 2, 2) == pytest.approx(0.5)


def test_copy_sequence_memoryless_metric_is_exact_or_infinite():
    p = CopySequence()
    x, y = _copy_rows(3)
    y[1, 3, 0] = 5  # a symbol where the memoryless predictor is sure of blank
    y[2, 20, 0] = 0  # a blank where it spreads over 1..8
    per = p.memoryless_sequence_metric(y, p.target_mask(2))
    assert per[0] == pytest.approx(10 * math.log(8) / 22)
    assert np.isinf(per[1]) and np.isinf(per[2])


# ---- selective_copy ----------------------------------------------------------------------------------------

SEL_TOKENS = [7, 3, 14, 1, 2, 9, 9, 4, 11, 13, 5, 6, 8, 10, 12, 1]
SEL_FILLER_STEPS = [1, 5, 12, 19]  # T = 20: 16 tokens, 4 filler steps


def _selective_rows(rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """T = 20: tokens at every context step but 1, 5, 12 and 19, then 16 markers; target = tokens in order."""
    context = [0] * 20
    positions = [s for s in range(20) if s not in SEL_FILLER_STEPS]
    for pos, token in zip(positions, SEL_TOKENS, strict=True):
        context[pos] = token
    ids = np.array([context + [15] * 16] * rows)
    return one_hot(ids, 16), classes([[0] * 20 + SEL_TOKENS] * rows)


def test_selective_copy_hand_checked_example_and_mask():
    p = SelectiveCopy()
    x, y = _selective_rows()
    assert x[0, 0, 7] == 1 and x[0, 1, 0] == 1 and x[0, 2, 3] == 1 and x[0, 20, 15] == 1
    assert all_ok(p.semantic_checks(x, y))
    assert p.target_mask(20).tolist() == [False] * 20 + [True] * 16
    assert p.baseline(20) == pytest.approx(1 / 14)


def test_selective_copy_generator_tokens_sorted_positions():
    p = SelectiveCopy()
    x, y = p.generate(300, 16, rng(2))  # T = 16: every context step holds a token
    ids = x.argmax(axis=-1)
    assert np.all((ids[:, :16] >= 1) & (ids[:, :16] <= 14)) and np.all(ids[:, 16:] == 15)
    assert np.array_equal(y[:, 16:, 0], ids[:, :16])
    x, y = p.generate(2000, 40, rng(3))
    ids = x.argmax(axis=-1)[:, :40]
    # each context position holds a token with probability 16/40 = 0.4 (sd of a column's mean ~0.011)
    np.testing.assert_allclose((ids > 0).mean(axis=0), 0.4, atol=0.05)
    assert set(np.unique(y[:, 40:])) == set(range(1, 15))


def test_selective_copy_corruptions_are_caught():
    p = SelectiveCopy()
    x, y = _selective_rows(6)
    y[1, 20, 0], y[1, 21, 0] = 3, 7  # first two targets swapped
    x[2, 1] = one_hot(np.array([3]), 16)  # a 17th token (step 1 was filler)
    x[3, 25] = one_hot(np.array([0]), 16)  # a query step turned into filler
    y[4, 3, 0] = 2  # a target before the queries
    x[5, 0] = one_hot(np.array([15]), 16)  # a marker in the context instead of token 7
    checks = p.semantic_checks(x, y)
    assert failed_rows(checks, "inputs_one_hot") == []
    # row 5 still has 16 non-filler steps, but one is the marker 15
    assert failed_rows(checks, "context_has_16_tokens_in_1_to_14") == [2, 5]
    assert failed_rows(checks, "queries_are_markers") == [3]
    # row 2's first 16 tokens now start 7 3 3 ...; row 5's start 15 3 ...
    assert failed_rows(checks, "target_is_tokens_in_order") == [1, 2, 5]
    assert failed_rows(checks, "target_zero_before_queries") == [4]
    assert "check 'queries_are_markers': 1 of 6 rows failed" in rejected("selective_copy", 20, x, y)


# ---- temporal_order ----------------------------------------------------------------------------------------


def test_temporal_order_windows_hand_checked():
    # T = 100: H&S exp. 6a's t1 in [10, 20), t2 in [50, 60); T = 10: t1 = 1, t2 = 5; T = 15: 0.1T = 1.5
    assert [w.tolist() for w in windows(np.array([100, 10, 15]))] == [[10, 1, 2], [20, 2, 3], [50, 5, 8],
                                                                       [60, 6, 9]]


def _order_rows(rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The docstring's example, T = 10: B X a b c Y d a b E -> (X, Y) -> class 1."""
    ids = np.array([[B, X, a, b, c, Y, d, a, b, E]] * rows)
    return one_hot(ids, 8), classes([1] * rows)


def test_temporal_order_hand_checked_example():
    p = TemporalOrder()
    x, y = _order_rows()
    assert all_ok(p.semantic_checks(x, y))
    ids = np.array([[B, Y, a, b, c, Y, d, a, b, E], [B, X, a, b, c, X, d, a, b, E]])
    assert all_ok(p.semantic_checks(one_hot(ids, 8), classes([3, 0])))  # YY -> 3, XX -> 0
    assert p.baseline(10) == 0.25 and p.solved(0.99, 10) and not p.solved(0.98, 10)


def test_temporal_order_generator_positions_and_classes():
    n, seq_len = 4000, 50
    x, y = TemporalOrder().generate(n, seq_len, rng(4))
    ids = x.argmax(axis=-1)
    assert np.all(ids[:, 0] == B) and np.all(ids[:, -1] == E)
    steps, where = np.nonzero(ids >= X)[1], np.nonzero(ids >= X)[0]
    assert np.array_equal(np.bincount(where, minlength=n), np.full(n, 2))
    # T = 50: t1 in [5, 10), t2 in [25, 30), each position equally likely (n/5 = 800 each, sd ~ 25)
    counts = np.bincount(steps, minlength=seq_len)
    assert set(np.flatnonzero(counts)) == set(range(5, 10)) | set(range(25, 30))
    np.testing.assert_allclose(counts[counts > 0], n / 5, rtol=0.15)
    np.testing.assert_allclose(np.bincount(y[:, 0, 0].astype(int), minlength=4), n / 4, rtol=0.1)


def test_temporal_order_corruptions_are_caught():
    p = TemporalOrder()
    x, y = _order_rows(6)
    x[1, [5, 6]] = x[1, [6, 5]]  # Y moved out of its window (to step 6)
    x[2, 9] = one_hot(np.array([a]), 8)  # no E at the end
    y[3, 0, 0] = 2  # YX instead of XY
    x[4, 3] = one_hot(np.array([X]), 8)  # a third relevant symbol, outside both windows
    row5 = x[5].copy()
    x[5, 2] *= 0.5  # not one-hot
    checks = p.semantic_checks(x, y)
    assert failed_rows(checks, "inputs_one_hot") == [5]
    assert failed_rows(checks, "B_first_E_last_only") == [2]
    assert failed_rows(checks, "one_X_or_Y_in_each_window") == [1, 4]
    # row 1: no Y inside window 2 any more, so its input now reads as class 0
    assert failed_rows(checks, "target_is_class_of_pair") == [1, 3]
    x[5] = row5  # a file stores token ids: a step that is not one-hot cannot even be written (encoding.Codec)
    message = rejected("temporal_order", 10, x, y)
    assert "check 'one_X_or_Y_in_each_window': 2 of 6 rows failed" in message


def test_temporal_order_variable_length_layout_and_padding():
    p = TemporalOrder()
    x, y, lengths = p.generate_variable(500, 40, 10, rng(5))
    assert lengths.dtype == np.int32 and lengths.min() >= 10 and lengths.max() <= 40
    ids, valid, empty = decode_one_hot(x)
    real = np.arange(40)[None, :] < lengths[:, None]
    assert np.all(valid == real) and np.all(empty == ~real)
    assert np.all(ids[np.arange(500), lengths - 1] == E)
    assert all_ok(p.semantic_checks(x, y, lengths))
    accepted("temporal_order", 40, x, y, lengths, min_len=10)
    row = int(np.argmin(lengths))
    x[row, -1, a] = 1.0  # a distractor in the padding
    assert "check 'padding_is_zero': 1 of 500 rows failed" in rejected("temporal_order", 40, x, y, lengths, 10)


# ---- parity ------------------------------------------------------------------------------------------------


def test_parity_hand_checked_examples():
    """1010100 -> 3 ones -> odd -> 1; 1111000 -> 4 -> even -> 0; 0000000 -> 0."""
    p = Parity()
    bits = np.array([[1, 0, 1, 0, 1, 0, 0], [1, 1, 1, 1, 0, 0, 0], [0] * 7])
    x = one_hot(bits, 2)
    assert x[0, :, 1].tolist() == [1, 0, 1, 0, 1, 0, 0] and x[0, :, 0].tolist() == [0, 1, 0, 1, 0, 1, 1]
    assert all_ok(p.semantic_checks(x, classes([1, 0, 0])))
    checks = p.semantic_checks(x, classes([0, 0, 1]))
    assert failed_rows(checks, "target_is_parity") == [0, 2]
    x[1, 4] = [1, 1]  # both channels hot
    assert failed_rows(p.semantic_checks(x, classes([1, 0, 0])), "bits_one_hot") == [1]
    gx, gy = p.generate(200, 7, rng(6))
    assert np.array_equal(gy[:, 0, 0], gx[:, :, 1].sum(axis=1) % 2)
    assert p.baseline(7) == 0.5 and p.solved(0.99, 7) and not p.solved(0.985, 7)


def test_parity_variable_length_hand_checked():
    """T = 6, lengths 4, 6, 2: 1110|.. -> 1; 100001 -> 0; 10|.... -> 1 (padding all zero)."""
    p = Parity()
    bits = np.array([[1, 1, 1, 0, -1, -1], [1, 0, 0, 0, 0, 1], [1, 0, -1, -1, -1, -1]])
    x, y, lengths = one_hot(bits, 2), classes([1, 0, 1]), np.array([4, 6, 2], dtype=np.int32)
    assert all_ok(p.semantic_checks(x, y, lengths))
    accepted("parity", 6, x, y, lengths, min_len=2)
    x[0, 5] = [0, 1]  # a one after the true end: parity over 4 bits unchanged, padding broken
    checks = p.semantic_checks(x, y, lengths)
    assert failed_rows(checks, "padding_is_zero") == [0] and failed_rows(checks, "target_is_parity") == []
    assert "check 'padding_is_zero': 1 of 3 rows failed" in rejected("parity", 6, x, y, lengths, 2)


def test_parity_variable_length_generator():
    p = Parity()
    x, y, lengths = p.generate_variable(1000, 30, 3, rng(7))
    assert lengths.min() == 3 and lengths.max() == 30
    real = np.arange(30)[None, :] < lengths[:, None]
    assert np.all(x.sum(axis=-1) == real)
    assert np.array_equal(y[:, 0, 0], (x[:, :, 1] * real).sum(axis=1) % 2)
    with pytest.raises(ValueError, match=r"min_len=1 must lie in \[2, seq_len=30\]"):
        p.generate_variable(10, 30, 1, rng())


# ---- sequential_digits -------------------------------------------------------------------------------------


def test_digits_seq_len_is_64_only():
    for problem in (SequentialDigits(), SequentialDigitsPermuted()):
        problem.check_seq_len(64)
        with pytest.raises(ValueError, match=r"seq_len=100 is not allowed.*seq_len=64"):
            problem.check_seq_len(100)
        with pytest.raises(ValueError, match=r"seq_len=32\b"):
            DatasetSpec(problem.name, 32, "train", 0, 10).check()


def test_digits_splits_are_disjoint_fixed_and_cover_every_image():
    parts = digits_module.split_images()
    assert {k: len(v) for k, v in parts.items()} == {"test": 360, "val": 180, "train": 1257}
    every = np.concatenate(list(parts.values()))
    assert np.array_equal(np.sort(every), np.arange(1797))
    digits_module.split_images.cache_clear()
    again = digits_module.split_images()
    assert all(np.array_equal(parts[k], again[k]) for k in parts)


def test_digits_rows_come_only_from_their_split():
    pixels, labels = digits_module.load_images()
    p = SequentialDigits()
    for split in ("test", "val"):
        pool = digits_module.split_images()[split]
        x, y = p.generate_split(len(pool), 64, split, rng(8))
        got = {row.tobytes() for row in np.rint(x[:, :, 0] * 16).astype(np.uint8)}
        want = {pixels[i].tobytes() for i in pool}
        assert got == want  # each held-out image exactly once
    # train: 2 full passes and 5 more rows; each pass shows each training image once
    pool = digits_module.split_images()["train"]
    x, y = p.generate_split(2 * len(pool) + 5, 64, "train", rng(9))
    codes = np.rint(x[:, :, 0] * 16).astype(np.uint8)
    first_pass = {row.tobytes() for row in codes[: len(pool)]}
    assert first_pass == {pixels[i].tobytes() for i in pool}
    with pytest.raises(ValueError, match="generate_split"):
        p.generate(10, 64, rng())


def test_digits_image_zero_hand_checked():
    """load_digits image 0 is a 0 with first row 0 0 5 13 9 1 0 0 and last row 0 0 6 13 10 0 0 0."""
    split = next(k for k, v in digits_module.split_images().items() if 0 in v)
    n = len(digits_module.split_images()[split])
    x, y = SequentialDigits().generate_split(n, 64, split, rng(10))
    first = np.array([0, 0, 5, 13, 9, 1, 0, 0], dtype=np.float32) / 16
    last = np.array([0, 0, 6, 13, 10, 0, 0, 0], dtype=np.float32) / 16
    rows = np.flatnonzero(np.all(x[:, :8, 0] == first, axis=1) & np.all(x[:, 56:, 0] == last, axis=1))
    assert len(rows) == 1 and y[rows[0], 0, 0] == 0


def test_digits_permuted_reads_pixels_in_the_fixed_order():
    order = digits_module.pixel_order(True)
    assert order[:4].tolist() == [16, 36, 27, 8]  # np.random.default_rng(0).permutation(64)
    assert np.array_equal(order, np.random.default_rng(0).permutation(64))
    plain, y1 = SequentialDigits().generate_split(100, 64, "val", rng(11))
    permuted, y2 = SequentialDigitsPermuted().generate_split(100, 64, "val", rng(11))
    assert np.array_equal(y1, y2) and np.array_equal(permuted[:, :, 0], plain[:, order, 0])
    # a plain row is not a permuted-variant image, and the other way round
    assert failed_rows(SequentialDigitsPermuted().semantic_checks(plain[:3], y1[:3]), "image_is_a_digits_image") \
        == [0, 1, 2]


def test_digits_held_out_split_refuses_more_rows_than_images():
    with pytest.raises(ValueError, match="the test split holds 360 images; n_rows=361"):
        DatasetSpec("sequential_digits", 64, "test", 0, 361).check()
    DatasetSpec("sequential_digits", 64, "train", 0, 5000).check()
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        SequentialDigits().generate_split(10, 64, "dev", rng())


def test_digits_corruptions_are_caught():
    p = SequentialDigits()
    x, y = p.generate_split(5, 64, "test", rng(12))
    x, y = x.copy(), y.copy()
    x[1, 10, 0] = 0.3  # not a multiple of 1/16
    x[2, 20, 0] = 1.0 if x[2, 20, 0] < 1 else 0.0  # a valid level, but no longer a digits image
    y[3, 0, 0] = (y[3, 0, 0] + 1) % 10  # wrong label
    x[4, 0, 0] = np.nan
    checks = p.semantic_checks(x, y)
    assert failed_rows(checks, "pixels_in_sixteenths") == [1, 4]
    assert failed_rows(checks, "image_is_a_digits_image") == [1, 2, 4]
    assert failed_rows(checks, "label_matches_image") == [1, 2, 3, 4]
    message = rejected("sequential_digits", 64, x, y)
    assert "check 'label_matches_image': 4 of 5 rows failed" in message
    assert "check 'finite': 1 of 5 rows failed" in message


def test_digits_without_scikit_learn_names_the_extra(monkeypatch):
    digits_module.load_images.cache_clear()
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # what a missing package looks like to import
    try:
        with pytest.raises(ImportError, match=r'pip install -e "\.\[digits\]"'):
            SequentialDigits().generate_split(5, 64, "train", rng())
    finally:
        monkeypatch.undo()
        digits_module.load_images.cache_clear()
    assert SequentialDigits().generate_split(5, 64, "train", rng())[0].shape == (5, 64, 1)


# ---- empirical vs analytic baselines on stored test splits -------------------------------------------------

BASELINE_SPECS = {
    "copy_sequence": DatasetSpec("copy_sequence", 10, "test", 0, 2000),
    "selective_copy": DatasetSpec("selective_copy", 32, "test", 0, 2000),
    "temporal_order": DatasetSpec("temporal_order", 20, "test", 0, 2000),
    "parity": DatasetSpec("parity", 20, "test", 0, 2000),
    "parity_variable": DatasetSpec("parity", 20, "test", 0, 2000, min_len=5),
    "temporal_order_variable": DatasetSpec("temporal_order", 20, "test", 0, 2000, min_len=10),
    "copy_sequence_variable": DatasetSpec("copy_sequence", 30, "test", 0, 2000, min_len=2),
    "selective_copy_variable": DatasetSpec("selective_copy", 40, "test", 0, 2000, min_len=16),
    "copy_memory_variable": DatasetSpec("copy_memory", 20, "test", 0, 2000, min_len=4),
    "sequential_xor_variable": DatasetSpec("sequential_xor", 20, "test", 0, 2000, min_len=4),
    # the whole held-out split: 360 images, no more exist
    "sequential_digits": DatasetSpec("sequential_digits", 64, "test", 0, 360),
    "sequential_digits_permuted": DatasetSpec("sequential_digits_permuted", 64, "test", 0, 360),
    "adding": DatasetSpec("adding", 20, "test", 0, 2000),
    "copy_memory": DatasetSpec("copy_memory", 20, "test", 0, 2000),
    "sequential_xor": DatasetSpec("sequential_xor", 20, "test", 0, 2000),
    "group_word": DatasetSpec("group_word", 20, "test", 0, 2000),
    "group_word_z2": DatasetSpec("group_word", 20, "test", 0, 2000, options={"group": "z2"}),
    "group_word_a5": DatasetSpec("group_word", 20, "test", 0, 2000, options={"group": "a5"}),
    "group_word_variable": DatasetSpec("group_word", 20, "test", 0, 2000, min_len=2, options={"group": "s5"}),
    "mqar": DatasetSpec("mqar", 64, "test", 0, 2000),
    "mqar_variable": DatasetSpec("mqar", 64, "test", 0, 2000, min_len=32, options={"vocab": 16, "pairs": 4}),
    "flip_flop": DatasetSpec("flip_flop", 64, "test", 0, 2000),
    # the source's held-out test sets: sparse (few reads per sequence) and dense
    "flip_flop_sparse": DatasetSpec("flip_flop", 64, "test", 0, 2000, options={"p_i": 0.98}),
    "flip_flop_dense": DatasetSpec("flip_flop", 64, "test", 0, 2000, options={"p_i": 0.1}),
    "flip_flop_variable": DatasetSpec("flip_flop", 64, "test", 0, 2000, min_len=4),
}


@pytest.mark.parametrize("case", sorted(BASELINE_SPECS))
def test_stored_test_split_reproduces_the_analytic_baseline(case, tmp_path):
    spec = BASELINE_SPECS[case]
    problem = spec.problem_def()
    data = dataset_store.load(dataset_store.build(spec, str(tmp_path)).path, expected=spec)
    mask = problem.mask_for(spec.seq_len, data.lengths, data.x)
    per = problem.memoryless_sequence_metric(data.y, mask, data.lengths)
    empirical = problem.empirical_baseline(data.y, mask, data.lengths)
    se = per.std(ddof=1) / math.sqrt(len(per))
    analytic = problem.baseline_for(spec.seq_len, spec.min_len)
    assert empirical == pytest.approx(per.mean())
    assert abs(empirical - analytic) <= 3 * se + 1e-12, (empirical, analytic, se)
    assert problem.score(empirical, spec.seq_len, spec.min_len) == pytest.approx(0.0, abs=0.1)


def test_empirical_baseline_defaults_hand_checked():
    mask = np.array([True])
    # adding predicts 1.0: errors 0.5 and 0 -> 0.125; copy_memory predicts 0.5 on every component
    assert get_problem("adding").empirical_baseline(classes([1.5, 1.0]), mask) == pytest.approx(0.125)
    ones = np.ones((2, 1, 10), dtype=np.float32)
    assert get_problem("copy_memory").empirical_baseline(ones, mask) == pytest.approx(0.25)
    assert get_problem("sequential_xor").empirical_baseline(classes([[1, 1, 1]]), np.ones(3, bool)) == 0.5
    # parity predicts class 0 (even), right in 1 of 4 rows
    assert get_problem("parity").empirical_baseline(classes([1, 1, 0, 1]), mask) == 0.25
    # selective_copy predicts token 1 at the query steps: row 0 gets 1 of its 2 masked steps (1 4), row 1 both
    # (1 1); row 0's step 0 holds a 1 too but is masked out (counted, row 0 would get 2 of 3)
    y = classes([[1, 1, 4], [0, 1, 1]])
    assert get_problem("selective_copy").empirical_baseline(y, np.array([False, True, True])) == 0.75
    # sequential_digits predicts the most frequent digit of the training images
    _, labels = digits_module.load_images()
    train = labels[digits_module.split_images()["train"]]
    guess = SequentialDigits().memoryless_class()
    assert np.sum(train == guess) == np.bincount(train).max()
    y = classes([guess, guess, (guess + 1) % 10])
    assert SequentialDigits().empirical_baseline(y, mask) == pytest.approx(2 / 3)
