"""The `kernel` column: which implementation ran, predicted as it is observed, and a stored result from another
kernel is trained again, not reused."""

from __future__ import annotations

import logging

import pytest

from rnnbench import results
from rnnbench.config import ProblemGrid, from_preset
from rnnbench.kernels import KERNELS, expected_kernel
from rnnbench.train import train_and_evaluate
from tasks import dataset_store
from tasks.stored import load_checked, load_checked_all


def test_expected_kernel_follows_device_switch_and_extension(monkeypatch):
    monkeypatch.setenv("RNNBENCH_FASTPATH", "1")
    assert expected_kernel("gru", "cpu") == "fastpath"
    assert expected_kernel("gru", "cpu", compiled=False) == "nn"
    assert expected_kernel("lstm", "cpu", proj_size=4) == "nn"
    assert expected_kernel("lstm", "cuda") == "nn"
    assert expected_kernel("mingru", "cpu") == "recurrent-compiled"
    assert expected_kernel("lru", "cpu", compiled=False) == "recurrent-torch"
    assert expected_kernel("minlstm", "cuda") == "parallel-scan"
    assert expected_kernel("indrnn", "cpu") == "recurrent-torch"
    monkeypatch.setenv("RNNBENCH_FASTPATH", "classic")
    assert expected_kernel("gru", "cpu") == "fastpath" and expected_kernel("mingru", "cpu") == "parallel-scan"
    monkeypatch.setenv("RNNBENCH_FASTPATH", "0")
    assert expected_kernel("rnn_tanh", "cpu") == "nn" and expected_kernel("lru", "cpu") == "parallel-scan"
    assert expected_kernel("some_plugin_arch", "cpu") is None
    with pytest.raises(ValueError, match="'tpu'.*'cpu', 'cuda'"):
        expected_kernel("gru", "tpu")


def _config(tmp_path, archs):
    root = str(tmp_path / "data")
    grid = ProblemGrid(problem="adding", seq_lens=[10], hidden_size=8, steps=20)
    config = from_preset("smoke", archs=archs, grids=[grid], data_root=root, out=str(tmp_path / "out"),
                         eval_points=2)
    for dataset in config.datasets():
        dataset_store.build(dataset, root)
    return config


def _rows(config):
    return {spec.arch: train_and_evaluate(spec, dataset_store.loader(config.dataset_root)).row
            for spec in config.runs()}


def test_each_row_records_the_kernel_it_was_predicted_to_run_on(tmp_path):
    # the fast tier runs with RNNBENCH_FASTPATH=0 (tests/conftest.py): torch's own kernels
    rows = _rows(_config(tmp_path, ["gru", "mingru", "indrnn"]))
    assert {arch: row["kernel"] for arch, row in rows.items()} == {
        "gru": "nn", "mingru": "parallel-scan", "indrnn": "recurrent-torch"}
    assert all(row["kernel"] == expected_kernel(arch, "cpu") and row["kernel"] in KERNELS
               for arch, row in rows.items())


@pytest.mark.slow
def test_with_the_fast_paths_on_the_compiled_kernels_run(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNBENCH_FASTPATH", "1")
    rows = _rows(_config(tmp_path, ["gru", "mingru"]))
    assert rows["gru"]["kernel"] == "fastpath" and rows["mingru"]["kernel"] == "recurrent-compiled"
    assert all(row["kernel"] == expected_kernel(arch, "cpu") for arch, row in rows.items())


def test_a_result_stored_from_another_kernel_is_not_reused(tmp_path, caplog, monkeypatch):
    config = _config(tmp_path, ["gru"])
    (spec,) = config.runs()
    out = config.out
    results.save(out, spec, train_and_evaluate(spec, dataset_store.loader(config.dataset_root)))
    logger = logging.getLogger("test_kernels")
    # stored from nn.* (the fast tier): reused where nn.* would run it again, or where the device is not known
    assert load_checked(out, spec, logger, device_type="cpu") is not None
    assert load_checked(out, spec, logger) is not None
    # the same kernel (cuDNN is nn too) on another device: its timings are a CPU's, so it is a GPU sweep's job to
    # train again (the device is part of a stored result's key)
    assert load_checked_all(out, [spec], logger, device_type="cuda") == {}
    assert load_checked(out, spec, logger, device_type="cuda") is None
    # where this process would run the C++ fast path, the nn.* result is trained again, and the log says why
    monkeypatch.setenv("RNNBENCH_FASTPATH", "1")
    with caplog.at_level(logging.INFO, logger="test_kernels"):
        assert load_checked(out, spec, logger, device_type="cpu", compiled=True) is None
        assert load_checked_all(out, [spec], logger, device_type="cpu") == {}
        # the extension did not load here: nn.* would run it, so the stored result is this process's own
        assert load_checked(out, spec, logger, device_type="cpu", compiled=False) is not None
    assert "ran on kernel 'nn', this sweep would run it on 'fastpath'" in caplog.text
