"""Variable-length sequences: packed training, readout at each sequence's true end, padding changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnbench import datasets
from rnnbench.archs import ARCHS
from rnnbench.config import from_preset
from rnnbench.model import build_model
from rnnbench.train import train_and_evaluate
from schemas.dataset import validate_table
from schemas.errors import ValidationError
from tasks import dataset_store

CLASSIC = ["rnn_tanh", "rnn_relu", "gru", "lstm"]


def _batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 3, 5, 1])
    x = torch.randn(4, 7, 3, generator=gen)
    return x, lengths


@pytest.mark.parametrize("arch", list(ARCHS))
def test_padding_changes_nothing_at_real_steps(arch):
    torch.manual_seed(0)
    core = ARCHS[arch].build(3, 6).double().eval()
    x, lengths = _batch()
    x = x.double()
    garbage = x.clone()
    for row, n in enumerate(lengths.tolist()):
        garbage[row, n:] = 1e3 * torch.randn_like(garbage[row, n:])
    out_a, last_a = core(x, lengths)
    out_b, last_b = core(garbage, lengths)
    for row, n in enumerate(lengths.tolist()):
        assert torch.allclose(out_a[row, :n], out_b[row, :n], atol=1e-10)
    assert torch.allclose(last_a, last_b, atol=1e-10)


@pytest.mark.parametrize("arch", CLASSIC)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_last_is_the_true_end_of_each_sequence(arch, bidirectional):
    """`last` equals running each sequence alone, unpadded: for a bidirectional model, the forward state at
    the true end joined with the backward direction's final state (it has read the whole sequence)."""
    torch.manual_seed(0)
    core = ARCHS[arch].build(3, 6, num_layers=2, bidirectional=bidirectional).double().eval()
    x, lengths = _batch()
    _, last = core(x.double(), lengths)
    for row, n in enumerate(lengths.tolist()):
        _, alone = core(x[row:row + 1, :n].double())
        assert torch.allclose(last[row], alone[0], atol=1e-10), (row, n)


def test_bidirectional_last_is_not_the_output_at_the_last_index():
    torch.manual_seed(0)
    core = ARCHS["gru"].build(3, 6, bidirectional=True).double().eval()
    x, _ = _batch()
    outputs, last = core(x.double())
    # the backward half of outputs[:, -1] has seen one step; `last` carries the backward final state
    assert torch.allclose(last[:, :6], outputs[:, -1, :6])
    assert torch.allclose(last[:, 6:], outputs[:, 0, 6:])
    assert not torch.allclose(last[:, 6:], outputs[:, -1, 6:])


def test_variable_length_adding_file_validates_and_corrupt_padding_is_caught(tmp_path):
    spec = datasets.DatasetSpec("adding", 30, "train", 0, 500, min_len=10)
    path = dataset_store.build(spec, str(tmp_path)).path
    data = dataset_store.load(path, expected=spec)
    assert data.lengths is not None and data.lengths.min() >= 10 and data.lengths.max() <= 30
    assert len(set(data.lengths.tolist())) > 10
    real = np.arange(30)[None, :] < data.lengths[:, None]
    assert np.all(data.x[~real] == 0)
    x, y, lengths = datasets.generate_arrays(spec)
    row = int(np.argmin(lengths))
    x[row, -1, 0] = 0.5  # a value in the padding
    with pytest.raises(ValidationError, match=r"column 'x', check 'padding_is_zero': 1 of 500 rows failed"):
        validate_table(datasets.to_table(spec, x, y, lengths), "mem")


def test_variable_length_needs_a_problem_that_has_it():
    with pytest.raises(ValueError, match="problem 'sequential_digits' has no variable-length form"):
        from_preset("smoke", grids=[{"problem": "sequential_digits", "seq_lens": [64], "min_len": 5,
                                     "hidden_size": 8, "steps": 10}]).runs()


def test_training_packs_variable_length_sequences(tmp_path):
    config = from_preset("smoke", out=str(tmp_path), archs=["lstm", "mingru"],
                         grids=[{"problem": "adding", "seq_lens": [20], "min_len": 8, "hidden_size": 8, "steps": 20}])
    for spec in config.datasets():
        dataset_store.build(spec, config.dataset_root)
    for run in config.runs():
        result = train_and_evaluate(run, dataset_store.loader(config.dataset_root))
        assert result.row["status"] == "ok" and result.row["min_len"] == 8


def test_model_readout_uses_lengths_for_last_problems():
    torch.manual_seed(0)
    model = build_model("lstm", 3, 1, "last", 6).double().eval()
    x, lengths = _batch()
    pred = model(x.double(), lengths)
    alone = torch.cat([model(x[i:i + 1, :n].double()) for i, n in enumerate(lengths.tolist())])
    assert pred.shape == (4, 1, 1) and torch.allclose(pred, alone, atol=1e-10)
