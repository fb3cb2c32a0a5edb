"""Variable-length training beyond the last-step problems (copy_sequence, selective_copy, sequential_xor per
step, copy_memory): each sequence's own layout, target mask, loss, metric and baseline, equal to scoring every
sequence alone without padding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnnbench import datasets
from rnnbench.config import from_preset
from rnnbench.datasets import Dataset, DatasetSpec
from rnnbench.losses import masked_loss
from rnnbench.model import build_model
from rnnbench.problems import PROBLEMS, check_min_len, get_problem
from rnnbench.problems.base import one_hot, per_sequence_mean
from rnnbench.train import Batches, score, train_and_evaluate
from schemas.dataset import validate_table
from schemas.errors import ValidationError
from tasks import dataset_store

pytestmark = pytest.mark.timeout(120)

DATA = [3, 1, 4, 1, 5, 2, 6, 5, 3, 5]


def failed_rows(checks, name):
    return np.flatnonzero(~checks[name][1]).tolist()


def schema_message(name, seq_len, min_len, x, y, lengths):
    spec = DatasetSpec(name, seq_len, "train", 0, len(x), min_len)
    with pytest.raises(ValidationError) as info:
        validate_table(datasets.to_table(spec, x, y, lengths), "mem", expected=spec)
    return str(info.value)


def test_every_problem_with_a_length_free_answer_trains_on_variable_lengths():
    assert sorted(k for k, p in PROBLEMS.items() if p.supports_variable_length) == [
        "adding", "copy_memory", "copy_sequence", "flip_flop", "group_word", "mqar", "parity", "selective_copy",
        "sequential_xor", "temporal_order"]
    with pytest.raises(ValueError, match="problem 'sequential_digits' has no variable-length form; problems with "
                                         "one: adding, copy_memory, copy_sequence"):
        check_min_len("sequential_digits", 5, 64)
    with pytest.raises(ValueError, match=r"min_len=8 must lie in \[16, seq_len=40\]"):
        get_problem("selective_copy").check_min_len(8, 40)


def test_notebook_problems_variable_length_hand_checked():
    """sequential_xor, T = 5, lengths 3 and 5: 1 0 0 | . . -> targets - 1 0 | 0 0 (mask steps 1-2);
    1 1 0 1 1 -> - 0 1 1 0 (steps 1-4). copy_memory, T = 4, length 2: v, noise, then zeros; read at step 1."""
    xor = get_problem("sequential_xor")
    x = np.array([[1, 0, 0, 0, 0], [1, 1, 0, 1, 1]], dtype=np.float32)[:, :, None]
    y = np.array([[0, 1, 0, 0, 0], [0, 0, 1, 1, 0]], dtype=np.float32)[:, :, None]
    lengths = np.array([3, 5], dtype=np.int32)
    assert all(ok.all() for _, ok in xor.semantic_checks(x, y, lengths).values())
    assert xor.mask_for(5, lengths).astype(int).tolist() == [[0, 1, 1, 0, 0], [0, 1, 1, 1, 1]]
    bad_x, bad_y = x.copy(), y.copy()
    bad_x[0, 4, 0] = 1.0  # a bit in the padding
    bad_y[1, 3, 0] = 0.0  # a wrong xor on a real step
    checks = xor.semantic_checks(bad_x, bad_y, lengths)
    assert failed_rows(checks, "padding_is_zero") == [0] and failed_rows(checks, "target_is_xor_of_neighbours") == [1]
    # predicting every bit right but in row 0's padding: accuracy 1 on each sequence's own target steps
    pred = np.where(y > 0.5, 5.0, -5.0)
    pred[0, 3:] = 5.0  # wrong for stored zeros, but padding
    assert xor.metrics(pred, y, xor.mask_for(5, lengths))["accuracy"] == 1.0
    memory = get_problem("copy_memory")
    v = np.linspace(0.1, 1.0, 10, dtype=np.float32)
    cx = np.zeros((1, 4, 10), dtype=np.float32)
    cx[0, 0], cx[0, 1] = v, 0.05
    cy = v.reshape(1, 1, 10)
    assert all(ok.all() for _, ok in memory.semantic_checks(cx, cy, np.array([2])).values())
    cx[0, 3, 0] = 0.05  # noise after the true end
    assert failed_rows(memory.semantic_checks(cx, cy, np.array([2])), "padding_is_zero") == [0]
    assert failed_rows(memory.semantic_checks(cx, cy, np.array([4])), "noise_in_0_to_0.1") == []


# ---- copy_sequence -----------------------------------------------------------------------------------------


def _copy_variable():
    """T = 4, delays 2 and 4 (22 and 24 real steps of 24):
    row 0: 3 1 4 1 5 2 6 5 3 5 _ : _ _ _ _ _ _ _ _ _ _ | . .   target: 12 blanks, the 10 symbols, 0 0
    row 1: 3 1 4 1 5 2 6 5 3 5 _ _ _ : _ _ _ _ _ _ _ _ _ _     target: 14 blanks, the 10 symbols."""
    ids = np.array([DATA + [0, 9] + [0] * 10 + [-1, -1], DATA + [0, 0, 0, 9] + [0] * 10])
    y = np.array([[0] * 12 + DATA + [0, 0], [0] * 14 + DATA], dtype=np.float32)[:, :, None]
    return one_hot(ids, 10), y, np.array([2, 4], dtype=np.int32)


def test_copy_sequence_variable_hand_checked_layout_mask_and_checks():
    p = get_problem("copy_sequence")
    x, y, lengths = _copy_variable()
    assert all(ok.all() for _, ok in p.semantic_checks(x, y, lengths).values())
    mask = p.mask_for(4, lengths)
    assert mask.shape == (2, 24) and mask.sum(axis=1).tolist() == [22, 24] and not mask[0, 22:].any()
    assert p.input_steps(lengths).tolist() == [22, 24]
    gx, gy, gl = p.generate_variable(300, 4, 2, np.random.default_rng(0))
    assert sorted(set(gl.tolist())) == [2, 3, 4]
    assert all(ok.all() for _, ok in p.semantic_checks(gx, gy, gl).values())
    # each generated row, cut to its real steps, is what the fixed-length generator lays out at its delay
    for row in range(5):
        length = int(gl[row])
        steps = p.input_steps(length)
        ids = gx[row, :steps].argmax(axis=-1)
        assert ids[length + 9] == 9 and np.all(gx[row, steps:] == 0)
        assert np.array_equal(gy[row, length + 10:steps, 0], ids[:10])


def test_copy_sequence_variable_corruptions_are_caught():
    p = get_problem("copy_sequence")
    x, y, lengths = _copy_variable()
    x, y, lengths = np.concatenate([x] * 3), np.concatenate([y] * 3), np.concatenate([lengths] * 3)
    x[0, 23, 2] = 1.0  # a symbol in row 0's padding
    x[1, 13], x[1, 12] = x[1, 12].copy(), x[1, 13].copy()  # delimiter one step early for delay 4
    y[2, 22, 0] = 3  # a target in the padding
    y[3, 14, 0] = 7  # first recalled symbol wrong
    checks = p.semantic_checks(x, y, lengths)
    assert failed_rows(checks, "padding_is_zero") == [0]
    assert failed_rows(checks, "blanks_and_delimiter_in_place") == [1]
    assert failed_rows(checks, "target_zero_in_padding") == [2]
    assert failed_rows(checks, "target_recalls_data_symbols") == [3]
    message = schema_message("copy_sequence", 4, 2, x, y, lengths)
    assert "check 'padding_is_zero': 1 of 6 rows failed" in message
    assert "check 'target_zero_in_padding': 1 of 6 rows failed" in message


def test_copy_sequence_variable_metrics_read_each_sequences_own_recall_steps():
    p = get_problem("copy_sequence")
    _, y, lengths = _copy_variable()
    mask = p.mask_for(4, lengths)
    # sure of every target, except row 0's first recalled symbol (step 12) and a wrong guess in row 0's padding
    logits = np.full((2, 24, 9), -20.0, dtype=np.float32)
    np.put_along_axis(logits, y.astype(np.int64), 20.0, axis=-1)
    logits[0, 12] = 0.0
    logits[0, 12, 7] = 1.0
    logits[0, 23] = 0.0
    logits[0, 23, 8] = 50.0  # padding: must not count
    out = p.metrics(logits, y, mask)
    assert out["recall_accuracy"] == pytest.approx((9 / 10 + 1.0) / 2)
    # row 0's uncertain step: target 3 has logit 0 among eight 0s and one 1 -> ln(8 + e) nats; every other kept
    # step costs ~0; the cross-entropy is the mean over row 0's 22 real steps, not 24
    step = math.log(8 + math.e)
    assert out["cross_entropy"] == pytest.approx((step / 22 + 0.0) / 2, abs=1e-6)
    # the memoryless predictor: 10 ln 8 over each sequence's own real steps
    per = p.memoryless_sequence_metric(y, mask, lengths)
    assert per.tolist() == pytest.approx([10 * math.log(8) / 22, 10 * math.log(8) / 24])
    assert p.baseline_for(4, 2) == pytest.approx(10 * math.log(8) * (1 / 22 + 1 / 23 + 1 / 24) / 3)
    assert p.score(p.baseline_for(4, 2), 4, 2) == pytest.approx(0.0)


# ---- selective_copy ----------------------------------------------------------------------------------------

TOKENS = list(range(1, 15)) + [7, 3]


def _selective_variable():
    """T = 18, contexts of 16 (all tokens, no filler) and 18 (filler at steps 0 and 9): 16 query markers
    after each context, then 2 padding steps in row 0. Targets: the 16 tokens at the query steps."""
    row0 = TOKENS + [15] * 16 + [-1, -1]
    row1 = [0] + TOKENS[:8] + [0] + TOKENS[8:] + [15] * 16
    y = np.zeros((2, 34), dtype=np.float32)
    y[0, 16:32] = TOKENS
    y[1, 18:34] = TOKENS
    return one_hot(np.array([row0, row1]), 16), y[:, :, None], np.array([16, 18], dtype=np.int32)


def test_selective_copy_variable_hand_checked_layout_mask_and_checks():
    p = get_problem("selective_copy")
    x, y, lengths = _selective_variable()
    assert all(ok.all() for _, ok in p.semantic_checks(x, y, lengths).values())
    mask = p.mask_for(18, lengths)
    assert np.flatnonzero(mask[0]).tolist() == list(range(16, 32))
    assert np.flatnonzero(mask[1]).tolist() == list(range(18, 34))
    gx, gy, gl = p.generate_variable(300, 30, 16, np.random.default_rng(1))
    assert gl.min() == 16 and gl.max() == 30
    assert all(ok.all() for _, ok in p.semantic_checks(gx, gy, gl).values())
    ids = gx.argmax(axis=-1)
    for row in range(5):
        context = ids[row, :gl[row]]
        tokens = context[context != 0]
        assert len(tokens) == 16 and np.array_equal(gy[row, gl[row]:gl[row] + 16, 0], tokens)
        assert np.all(gx[row, gl[row] + 16:] == 0)
    # the memoryless predictor (token 1) on the hand-made rows: row 0 asks 1 once, row 1 once: 1/16 each
    assert p.memoryless_sequence_metric(y, mask, lengths).tolist() == [1 / 16, 1 / 16]


def test_selective_copy_variable_corruptions_are_caught():
    p = get_problem("selective_copy")
    x, y, lengths = _selective_variable()
    x, y, lengths = np.concatenate([x] * 2), np.concatenate([y] * 2), np.concatenate([lengths] * 2)
    x[0, 33] = one_hot(np.array([15]), 16)  # a 17th query marker, in the padding
    x[1, 20] = one_hot(np.array([0]), 16)  # a query step holds filler
    y[2, 32, 0] = 5  # a target in the padding
    x[3, 0] = one_hot(np.array([4]), 16)  # a 17th token in the context
    checks = p.semantic_checks(x, y, lengths)
    assert failed_rows(checks, "padding_is_zero") == [0]
    assert failed_rows(checks, "queries_are_markers") == [1]
    assert failed_rows(checks, "target_zero_in_padding") == [2]
    assert failed_rows(checks, "context_has_16_tokens_in_1_to_14") == [3]
    message = schema_message("selective_copy", 18, 16, x, y, lengths)
    assert "check 'queries_are_markers': 1 of 4 rows failed" in message


# ---- loss, metric and batches ------------------------------------------------------------------------------


def test_per_sequence_mask_in_loss_and_mean_hand_checked():
    # 2 sequences x 3 steps x 2 classes; row 0 keeps steps 0-1, row 1 keeps step 2 only
    pred = torch.zeros(2, 3, 2)
    pred[1, 2] = torch.tensor([0.0, math.log(3.0)])  # p(class 1) = 3/4
    y = torch.tensor([[[0.0], [1.0], [1.0]], [[0.0], [0.0], [1.0]]])
    mask = torch.tensor([[True, True, False], [False, False, True]])
    want = (2 * math.log(2.0) + math.log(4 / 3)) / 3
    loss = masked_loss("ce", pred.requires_grad_(), y, mask)
    assert loss.item() == pytest.approx(want, rel=1e-6)
    loss.backward()
    assert pred.grad[0, 2].abs().sum() == 0 and pred.grad[1, :2].abs().sum() == 0
    values = np.array([[1.0, 3.0, 100.0], [100.0, 100.0, 5.0]])
    assert per_sequence_mean(values, mask.numpy()).tolist() == [2.0, 5.0]
    assert per_sequence_mean(values, np.array([True, False, False])).tolist() == [1.0, 100.0]


@pytest.mark.parametrize("name,seq_len,min_len", [("copy_sequence", 6, 2), ("selective_copy", 20, 16),
                                                  ("sequential_xor", 9, 3)])
@pytest.mark.parametrize("arch", ["lstm", "gru", "mingru", "lru"])
def test_padded_batch_scores_as_each_sequence_alone(name, seq_len, min_len, arch):
    """Loss and metrics of a padded variable-length batch equal those computed on each sequence cut to its
    real steps: padding never reaches the recurrence, the loss or the score (classic cells packed, on the
    CPU fast path; modern cells causal)."""
    p = get_problem(name)
    x, y, lengths = p.generate_variable(12, seq_len, min_len, np.random.default_rng(4))
    torch.manual_seed(0)
    model = build_model(arch, p.input_size, p.output_size, p.target_kind, 6).eval()
    data = Dataset(x=x, y=y, meta={}, lengths=lengths)
    batches = Batches(data, batch_size=12, seed=0, problem=p, seq_len=seq_len)
    bx, by, steps, mask = batches.get(1, "cpu")
    assert mask.shape == (12, p.input_steps(seq_len)) and steps.tolist() == p.input_steps(lengths).tolist()
    pred = model(bx, steps)
    loss = masked_loss(p.loss, pred, by, mask)
    alone_sum, alone_count, alone_scores = 0.0, 0, []
    for row in range(12):  # one batch holds the whole split, in stored order
        length = int(lengths[row])
        n = p.input_steps(length)
        one = model(torch.from_numpy(x[row:row + 1, :n]))
        m = torch.from_numpy(p.target_mask(length))
        alone_sum += masked_loss(p.loss, one, torch.from_numpy(y[row:row + 1, :n]), m).item() * int(m.sum())
        alone_count += int(m.sum())
        alone_scores.append(p.metrics(one.detach().numpy(), y[row:row + 1, :n], p.target_mask(length)))
    assert loss.item() == pytest.approx(alone_sum / alone_count, rel=1e-5)
    scored = score(p, model, data, seq_len, torch.device("cpu"))
    for key in alone_scores[0]:
        if key != "se" and not key.endswith("_se"):  # a standard error of one sequence is undefined (NaN)
            want = np.mean([s[key] for s in alone_scores])
            assert scored[key] == pytest.approx(want, rel=1e-5), key


@pytest.mark.parametrize("name,seq_len,min_len", [("copy_sequence", 8, 2), ("selective_copy", 24, 16),
                                                  ("sequential_xor", 12, 4), ("copy_memory", 12, 4)])
def test_variable_length_sweep_trains_and_scores_per_step_problems(tmp_path, name, seq_len, min_len):
    config = from_preset("smoke", out=str(tmp_path), archs=["lstm", "minlstm"], seeds=1,
                         grids=[{"problem": name, "seq_lens": [seq_len], "min_len": min_len, "hidden_size": 8,
                                 "steps": 10}])
    for spec in config.datasets():
        dataset_store.build(spec, config.dataset_root)
    problem = get_problem(name)
    for run in config.runs():
        row = train_and_evaluate(run, dataset_store.loader(config.dataset_root)).row
        assert row["status"] == "ok" and row["min_len"] == min_len
        assert row["baseline"] == pytest.approx(problem.baseline_for(seq_len, min_len))
        assert math.isfinite(row["test_metric"]) and row["baseline_se"] > 0
