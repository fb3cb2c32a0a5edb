"""Train and evaluate one run: a pure function from a RunSpec and dataset files to a metrics row and a curve."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from rnnbench import dataset_store
from rnnbench.config import RunSpec
from rnnbench.model import build_model, count_parameters, state_size
from rnnbench.optim import Adam
from rnnbench.problems import get_problem
from rnnbench.rows import RunResult, base_row

EVAL_CHUNK = 1024  # test rows per forward pass at evaluation: bounds memory at long T


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA when a GPU is visible to this process, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def configure_cpu(threads: int) -> None:
    torch.set_num_threads(threads)
    # gradients that fade through long sequences become subnormal, and subnormal arithmetic is
    # several times slower on x86 (STACK-NOTES: an LSTM step went from 163 to 38 ms)
    torch.set_flush_denormal(True)


def masked_loss(kind: str, pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    p, t = pred[:, mask], y[:, mask]
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(p, t)
    return F.mse_loss(p, t)


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None) -> np.ndarray:
    model.eval()
    out = torch.cat([model(x[i:i + EVAL_CHUNK], None if lengths is None else lengths[i:i + EVAL_CHUNK])
                     for i in range(0, len(x), EVAL_CHUNK)])
    model.train()
    return out.float().cpu().numpy()


def train_and_evaluate(spec: RunSpec, data_root: str, device: str = "auto", threads: int = 1) -> RunResult:
    """Train `spec` for a fixed number of updates on its stored train split and score it on its test split.

    A NaN/inf loss ends the run as `diverged` (a result, not an error). Deterministic on CPU for a seed.
    """
    spec.check()
    problem = get_problem(spec.problem)
    dev = pick_device(device)
    if dev.type == "cpu":
        configure_cpu(threads)
    train_spec, test_spec = spec.datasets()
    train = dataset_store.load(train_spec.path(data_root), expected=train_spec)
    test = dataset_store.load(test_spec.path(data_root), expected=test_spec)

    torch.manual_seed(spec.seed)
    m = spec.model
    model = build_model(spec.arch, problem.input_size, problem.output_size, problem.target_kind, spec.hidden_size,
                        num_layers=m.num_layers, bias=m.bias, dropout=m.dropout, bidirectional=m.bidirectional,
                        proj_size=m.proj_size, forget_bias=m.forget_bias, recurrent_init=m.recurrent_init).to(dev)
    optimizer = Adam(model.parameters(), lr=spec.lr)
    clip_weights = getattr(model.core, "clip_recurrent_weights_", None)

    # copies: Arrow buffers are read-only, and torch needs writable memory
    x_train, y_train = torch.from_numpy(train.x.copy()).to(dev), torch.from_numpy(train.y.copy()).to(dev)
    x_test, y_test = torch.from_numpy(test.x.copy()).to(dev), test.y
    mask_np = problem.target_mask(spec.seq_len)
    mask = torch.from_numpy(mask_np).to(dev)
    x_probe, y_probe = x_test[: spec.eval_rows], y_test[: spec.eval_rows]
    # variable-length data: true lengths travel with each batch (packed by the classic cores); kept on the
    # CPU, where pack_padded_sequence wants them
    len_train = None if train.lengths is None else torch.from_numpy(train.lengths.astype(np.int64))
    len_test = None if test.lengths is None else torch.from_numpy(test.lengths.astype(np.int64))
    len_probe = None if len_test is None else len_test[: spec.eval_rows]

    row = base_row(spec)
    row.update(params=count_parameters(model), device=str(dev),
               state_size=state_size(spec.arch, spec.hidden_size, m.num_layers, m.bidirectional, m.proj_size))
    curve: list[dict] = []
    window = torch.zeros((), device=dev)
    window_steps, train_seconds, status, last_loss = 0, 0.0, "ok", math.nan
    B = spec.batch_size
    for step in range(1, spec.steps + 1):
        t0 = time.perf_counter()
        lo = ((step - 1) * B) % len(x_train)
        pred = model(x_train[lo:lo + B], None if len_train is None else len_train[lo:lo + B])
        loss = masked_loss(problem.loss, pred, y_train[lo:lo + B], mask)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.clip_norm)
        optimizer.step()
        if clip_weights is not None:
            clip_weights()
        window += loss.detach()
        window_steps += 1
        if dev.type == "cuda":
            torch.cuda.synchronize()
        train_seconds += time.perf_counter() - t0
        if step % spec.eval_every == 0 or step == spec.steps:
            # checked here, not every step: reading the loss forces a GPU sync
            last_loss = float(window) / window_steps
            if not math.isfinite(last_loss):
                status = "diverged"
                row["steps_done"] = step
                break
            probe = problem.metrics(predict(model, x_probe, len_probe), y_probe, mask_np)[problem.metric_name]
            curve.append({"run_id": spec.run_id, "step": step, "train_loss": last_loss, "test_metric": probe})
            window.zero_()
            window_steps = 0
        row["steps_done"] = step

    row.update(status=status, train_seconds=train_seconds, final_train_loss=last_loss,
               steps_per_second=row["steps_done"] / train_seconds if train_seconds > 0 else None)
    if status == "ok":
        scores = problem.metrics(predict(model, x_test, len_test), y_test, mask_np)
        metric = scores[problem.metric_name]
        if not math.isfinite(metric):
            row["status"] = "diverged"
        else:
            row.update(test_metric=metric, score=problem.score(metric, spec.seq_len),
                       solved=problem.solved(metric, spec.seq_len), within_tolerance=scores.get("within_0.04"))
    return RunResult(row, curve)


def worker_device() -> str:
    """'cuda' when Ray gave this job a GPU share, 'cpu' when it gave none (Ray >= 2.60 no longer hides GPUs
    from zero-GPU tasks, so torch.cuda.is_available() alone would put CPU jobs on a GPU); 'auto' outside Ray."""
    try:
        import ray

        if ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE:
            return "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001 - outside Ray there is nothing to ask
        pass
    return "auto"


def worker_threads() -> int:
    """Torch threads for one job: the CPUs Ray gave it (at least one)."""
    try:
        import ray

        if ray.is_initialized():
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
            return max(1, int(cpus))
    except Exception:  # noqa: BLE001 - outside Ray there is nothing to ask
        pass
    return max(1, int(os.environ.get("RNNBENCH_THREADS", "1")))
