"""The GPU path's code side, checked on CPU: Ray options per chunk, numerics recorded per run, device-keyed results."""

from __future__ import annotations

import inspect
import logging

import ray

from rnnbench import numerics, results, scheduling, train
from rnnbench.config import ProblemGrid, from_preset
from rnnbench.sizing import run_memory_bytes
from schemas.metrics import Metrics, metrics_frame, validated
from tasks import dataset_store
from tasks.stored import load_checked, load_checked_all


def _config(tmp_path, archs, seq_lens=(10,)):
    root = str(tmp_path / "data")
    grid = ProblemGrid(problem="adding", seq_lens=list(seq_lens), hidden_size=8, steps=20)
    config = from_preset("smoke", archs=archs, grids=[grid], data_root=root, out=str(tmp_path / "out"),
                         eval_points=2)
    for dataset in config.datasets():
        dataset_store.build(dataset, root)
    return config


def test_gpu_tasks_reuse_their_worker_and_every_task_asks_for_its_jobs_memory(tmp_path):
    config = from_preset("smoke", data_root=str(tmp_path / "d"), out=str(tmp_path / "o"))
    chunk = config.runs()[:3]
    largest = max(run_memory_bytes(spec) for spec in chunk)
    cpu = scheduling.task_options({"num_cpus": 1}, chunk)
    gpu = scheduling.task_options({"num_cpus": 1, "num_gpus": 0.25}, chunk)
    assert cpu == {"num_cpus": 1, "memory": largest}
    # Ray's own default for a task with num_gpus > 0 is max_calls=1 (a new process and CUDA context per task)
    assert gpu == {"num_cpus": 1, "num_gpus": 0.25, "memory": largest, "max_calls": 0}
    assert largest > 400 * 2**20  # the worker's own share is counted
    # Ray takes them as remote options (what prefect-ray's remote_options hands to ray.remote)
    ray.remote(**gpu)(lambda: None)
    assert scheduling.chunk_target_s({"num_gpus": 0.25}) > scheduling.chunk_target_s({"num_cpus": 1})


def test_numerics_are_set_for_every_arch_and_recorded_per_run(tmp_path):
    config = _config(tmp_path, ["gru", "mingru"])
    rows = [train.train_and_evaluate(spec, dataset_store.loader(config.dataset_root)).row for spec in config.runs()]
    expected = ("matmul.tf32=off cudnn.tf32=off cudnn.deterministic=on cudnn.benchmark=off")
    assert numerics.current() == expected
    assert [row["numerics"] for row in rows] == [expected, expected]
    frame = validated(metrics_frame(rows), Metrics, "rows")
    assert frame["numerics"].to_list() == [expected, expected]


def test_the_training_loop_synchronises_once_per_evaluation_not_per_step():
    source = inspect.getsource(train.train_and_evaluate)
    assert source.count("torch.cuda.synchronize") == 1
    loop = source[source.index("for step in range"):]
    # the one sync sits after the per-step `continue`, i.e. at evaluation points only
    assert loop.index("continue") < loop.index("torch.cuda.synchronize")


def test_a_stored_result_is_keyed_by_its_device(tmp_path):
    config = _config(tmp_path, ["gru"])
    (spec,) = config.runs()
    result = train.train_and_evaluate(spec, dataset_store.loader(config.dataset_root))
    results.save(config.out, spec, result)
    logger = logging.getLogger("test_gpu_options")
    assert results.load(config.out, spec, "cpu") is not None and results.load(config.out, spec) is not None
    assert results.load(config.out, spec, "cuda") is None
    assert load_checked(config.out, spec, logger, device_type="cuda") is None
    assert load_checked_all(config.out, [spec], logger, device_type="cuda") == {}
    assert list(load_checked_all(config.out, [spec], logger, device_type="cpu")) == [spec.run_id]
    assert results.device_type_of("cuda:0") == "cuda" and results.device_type_of(None) is None
