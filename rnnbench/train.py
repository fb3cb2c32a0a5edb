"""Train and evaluate one run: a pure function from a RunSpec and its validated datasets to metrics and a curve."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

import numpy as np
import torch

from rnnbench.config import RunSpec
from rnnbench.datasets import Dataset, DatasetSpec
from rnnbench.kernels import kernel_of, prepare
from rnnbench.losses import masked_loss
from rnnbench.memory import keep_freed_memory
from rnnbench.model import build_model, count_parameters, state_size
from rnnbench.numerics import apply as apply_numerics
from rnnbench.optim import Adam
from rnnbench.problems import Problem
from rnnbench.rows import RunResult, base_row
from rnnbench.verdicts import run_outcome

EVAL_CHUNK = 1024  # test rows per forward pass at evaluation: bounds memory at long T
# Early stopping's margin, in standard deviations of the gap between a checkpoint's validation and test metric.
# Why: stopping as soon as validation met the rule itself left a run that had just crossed it on either side
# of it on test (mingru/adding/T=50 seed 2: validation met MSE <= 0.01, test scored 0.01003). The two splits
# are independent draws, so for one checkpoint test - validation has standard deviation
# se_val * sqrt(1 + n_val / n_test) (the test split's se scales as 1/sqrt(n)). Stopping only when validation
# beats the rule by 1.645 of those leaves a stopped run short of the rule on test with probability <= 5% (one
# sided), where it would be ~50% at the threshold itself. A run that never clears the margin trains on to
# `steps`, and is then judged on test as any other.
EARLY_STOP_Z = 1.645


def stop_margin(n_val: int, n_test: int, z: float | None = None) -> float:
    """Early stopping's margin in validation standard errors: z * sqrt(1 + n_val / n_test) (EARLY_STOP_Z)."""
    return (EARLY_STOP_Z if z is None else z) * math.sqrt(1.0 + n_val / n_test)


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA when a GPU is visible to this process, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def configure_cpu(threads: int) -> None:
    torch.set_num_threads(threads)
    # gradients that fade through long sequences become subnormal, and subnormal arithmetic is
    # several times slower on x86 (measured on an Intel machine: an LSTM step went from 163 to 38 ms;
    # no change on an AMD EPYC)
    torch.set_flush_denormal(True)
    # a step's large tensors reuse freed memory instead of faulting in fresh pages (rnnbench/memory.py)
    keep_freed_memory()


@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray, lengths: np.ndarray | None, dev: torch.device) -> np.ndarray:
    """Raw outputs for stored sequences, EVAL_CHUNK at a time (only a chunk is ever on the device)."""
    model.eval()
    out = []
    for i in range(0, len(x), EVAL_CHUNK):
        chunk_lengths = None if lengths is None else torch.from_numpy(lengths[i:i + EVAL_CHUNK].astype(np.int64))
        out.append(model(torch.from_numpy(np.array(x[i:i + EVAL_CHUNK])).to(dev), chunk_lengths).float().cpu())
    model.train()
    return torch.cat(out).numpy()


def score(problem: Problem, model: torch.nn.Module, data: Dataset, seq_len: int, dev: torch.device,
          mask: np.ndarray | None = None, paired: bool = False) -> dict:
    """The problem's metrics on a stored split of length `seq_len` (variable-length: each sequence fed its own
    `input_steps(L)` real steps and scored on its own target steps). `mask`: the split's `mask_for`, when the
    caller scores it more than once. `paired`: also the predictor with no memory on the same sequences
    (`memoryless`, its metric) and the standard error of the mean per-sequence difference (`diff_se`), for the
    paired beats-baseline test (rnnbench.verdicts.run_outcome)."""
    steps = None if data.lengths is None else problem.input_steps(data.lengths)
    if mask is None:
        mask = problem.mask_for(seq_len, data.lengths, data.x)
    pred = predict(model, data.x, steps, dev)
    out = problem.metrics(pred, data.y, mask)
    if paired:
        reference = problem.memoryless_sequence_metric(data.y, mask, data.lengths)
        diff = problem.sequence_metric(pred, data.y, mask) - reference
        out["memoryless"] = float(reference.mean())
        out["diff_se"] = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
    return out


class Batches:
    """Training batches from the stored training split, in epochs shuffled by the run seed. The split stays in
    host memory; only the current batch goes to the device. `problem` and `seq_len` give each batch its target
    mask and, for variable-length splits, each sequence's real steps."""

    def __init__(self, data: Dataset, batch_size: int, seed: int, problem: Problem | None = None,
                 seq_len: int | None = None) -> None:
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.per_epoch = len(data) // batch_size  # the short tail of an epoch is left for the next shuffle
        self.order = np.empty(0, dtype=np.int64)
        variable = data.lengths is not None
        if variable and problem is None:
            raise ValueError("a variable-length split needs its problem and seq_len to be batched")
        self.steps = problem.input_steps(data.lengths.astype(np.int64)) if variable else None
        self.mask = None if problem is None else torch.from_numpy(data.mask(problem, seq_len))
        self.per_sequence_mask = self.mask is not None and self.mask.dim() == 2

    def get(self, step: int, dev: torch.device
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(x, y, real steps of each sequence or None, target mask or None) of update `step` (1-based): a pure
        function of (seed, step), so a resumed run sees the same."""
        epoch, index = divmod(step - 1, self.per_epoch)
        if index == 0 or not len(self.order):
            self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.data))
        rows = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        # the split stays compact in memory (token ids): only this batch is expanded to float32
        x, y = (torch.from_numpy(array).to(dev) for array in self.data.rows(rows))
        lengths = None if self.steps is None else torch.from_numpy(self.steps[rows])
        if self.per_sequence_mask:
            return x, y, lengths, self.mask[torch.from_numpy(rows)].to(dev)
        if self.mask is not None:
            self.mask = self.mask.to(dev)  # one mask for every batch: moved to the device once
        return x, y, lengths, self.mask

    def epochs(self, steps: int) -> float:
        return steps * self.batch_size / len(self.data)


def train_and_evaluate(spec: RunSpec, load: Callable[[DatasetSpec], Dataset], device: str = "auto",
                       threads: int = 1) -> RunResult:
    """Train `spec` on its stored train split, choose on its validation split, and score its test split.

    `load` returns a validated dataset for a spec (the caller decides how: the library never reads files
    unchecked). Every `eval_every` updates the whole validation split is scored: that makes the learning
    curve, keeps the best-on-validation checkpoint, and (with `early_stop`) ends the run once validation meets
    the solved rule by a margin (stop_margin of its standard errors) at two evaluations in a row. Only then is
    the test split loaded, and scored for the best checkpoint (`test_metric`) and the last one
    (`test_metric_last`). A NaN/inf loss ends the run as `diverged`
    (a result, not an error). Deterministic on CPU for a seed.
    """
    spec.check()
    problem = spec.problem_def()
    dev = pick_device(device)
    if dev.type == "cpu":
        configure_cpu(threads)
    numerics = apply_numerics()  # TF32 and determinism, the same for every arch (rnnbench/numerics.py)
    train_spec, val_spec, test_spec = spec.datasets()
    val = load(val_spec)
    val_mask = problem.mask_for(spec.seq_len, val.lengths, val.x)  # read at every evaluation
    batches = Batches(load(train_spec), spec.batch_size, spec.seed, problem, spec.seq_len)

    # the C++ extension is built and loaded here, before the clock starts: on a fresh machine its compilation
    # took ~25 s of the first job's timed training (31.5 s against 6.8 s for the same cell's other seeds)
    prepare(spec.arch, dev.type)
    torch.manual_seed(spec.seed)
    m = spec.model
    arch_values = m.arch_values(spec.arch, spec.seq_len, spec.hidden_size)  # the values base_row records
    model = build_model(spec.arch, problem.input_size, problem.output_size, problem.target_kind, spec.hidden_size,
                        num_layers=m.num_layers, bias=m.bias, dropout=m.dropout, bidirectional=m.bidirectional,
                        proj_size=m.proj_size, forget_bias=m.forget_bias, recurrent_init=m.recurrent_init,
                        arch_options=arch_values).to(dev)
    optimizer = Adam(model.parameters(), lr=spec.lr)
    clip_weights = getattr(model.core, "clip_recurrent_weights_", None)

    row = base_row(spec)
    row.update(params=count_parameters(model), device=str(dev), numerics=numerics,
               state_size=state_size(spec.arch, spec.hidden_size, m.num_layers, m.bidirectional, m.proj_size,
                                     arch_values.get("state_size")))
    curve: list[dict] = []
    sign = 1.0 if problem.higher_is_better else -1.0
    best: dict = {"value": -math.inf, "step": None, "state": None, "metric": None}
    met_before, steps_to_solve, stopped_early, val_se_best = False, None, False, None
    margin = stop_margin(spec.n_val, spec.n_test)
    window = torch.zeros((), device=dev)
    window_steps, train_seconds, status, last_loss, step = 0, 0.0, "ok", math.nan, 0
    segment_start = time.perf_counter()  # training time is summed between evaluations, never per step
    for step in range(1, spec.steps + 1):
        x, y, lengths, mask = batches.get(step, dev)
        loss = masked_loss(problem.loss, model(x, lengths), y, mask)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.clip_norm)
        optimizer.step()
        if clip_weights is not None:
            clip_weights()
        window += loss.detach()
        window_steps += 1
        if step % spec.eval_every and step != spec.steps:
            continue
        # one sync per evaluation, not per step (that would stall the GPU's queue every update): the clock stops
        # once the segment's queued GPU work is done
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        train_seconds += time.perf_counter() - segment_start
        # checked here, not every step: reading the loss forces a GPU sync
        last_loss = float(window) / window_steps
        if not math.isfinite(last_loss):
            status = "diverged"
            break
        val_scores = score(problem, model, val, spec.seq_len, dev, val_mask)
        value = val_scores[problem.metric_name]
        curve.append({"run_id": spec.run_id, "step": step, "train_loss": last_loss,
                      "val_metric": value if math.isfinite(value) else None})
        window.zero_()
        window_steps = 0
        if math.isfinite(value) and sign * value > best["value"]:
            best = {"value": sign * value, "step": step, "metric": value,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
            val_se_best = _finite(val_scores["se"])
        if steps_to_solve is None and problem.solved_from(val_scores, spec.seq_len):
            steps_to_solve = step
        # stop on a margin above the rule (EARLY_STOP_Z), at two evaluations in a row: one lucky evaluation of
        # a model still moving is not enough
        met = problem.solved_by_margin(val_scores, spec.seq_len, margin)
        if spec.early_stop and met and met_before:
            stopped_early = True
            break
        met_before = met
        segment_start = time.perf_counter()

    row["kernel"] = kernel_of(model.core, x) if step else None  # the last batch's forward: what ran
    row.update(status=status, steps_done=step, train_seconds=train_seconds, final_train_loss=last_loss,
               steps_per_second=step / train_seconds if train_seconds > 0 else None,
               epochs=batches.epochs(step), steps_to_solve=steps_to_solve, best_step=best["step"],
               val_metric_best=best["metric"], val_se_best=val_se_best, stopped_early=stopped_early,
               stop_margin=margin)
    if status == "ok":
        # the test split is read here, once training and every choice are over
        test = load(test_spec)
        test_mask = problem.mask_for(spec.seq_len, test.lengths, test.x)
        last = score(problem, model, test, spec.seq_len, dev, test_mask, paired=True)
        if best["state"] is not None:
            model.load_state_dict(best["state"])
        chosen = score(problem, model, test, spec.seq_len, dev, test_mask, paired=True) if best["step"] != step \
            else last
        row["baseline_se"] = problem.memoryless_se(test.y, test_mask, test.lengths)
        row.update(memoryless_metric=_finite(chosen["memoryless"]), diff_se=_finite(chosen["diff_se"]))
        metric = chosen[problem.metric_name]
        if not math.isfinite(metric):
            row["status"] = "diverged"
        else:
            solved = problem.solved_from(chosen, spec.seq_len)
            row.update(test_metric=metric, test_se=chosen["se"], test_metric_last=last[problem.metric_name],
                       score=problem.score(metric, spec.seq_len, spec.min_len), solved=solved,
                       within_tolerance=chosen.get("within_0.04"))
    row["outcome"] = run_outcome(row["status"], row["solved"], row["test_metric"], row["baseline"],
                                 problem.higher_is_better, row["diff_se"], row["memoryless_metric"])
    eval_rows = []
    if row["status"] == "ok":
        for dataset in spec.eval_datasets():  # the best-on-validation model, at each other length
            data = load(dataset)
            mask = problem.mask_for(dataset.seq_len, data.lengths, data.x)
            eval_rows.append(length_row(problem, row, dataset.seq_len,
                                        score(problem, model, data, dataset.seq_len, dev, mask, paired=True),
                                        problem.memoryless_se(data.y, mask, data.lengths)))
        # the same model on the problem's held-out test sets (flip_flop's sparse and dense instruction mixes): the
        # metric and baseline are the problem's own, only the data's settings differ
        for name, dataset in spec.held_out_datasets().items():
            data = load(dataset)
            mask = problem.mask_for(dataset.seq_len, data.lengths, data.x)
            held = length_row(problem, row, dataset.seq_len,
                              score(problem, model, data, dataset.seq_len, dev, mask, paired=True),
                              problem.memoryless_se(data.y, mask, data.lengths))
            eval_rows.append({**held, "test_split": name})
    return RunResult(row, curve, eval_rows)


def length_row(problem: Problem, row: dict, length: int, scores: dict, baseline_se: float) -> dict:
    """The metrics row of a trained model scored on the test set at another length: the run's row with the
    evaluation length, that length's metric, baseline, score, solved rule and outcome."""
    metric, baseline = scores[problem.metric_name], problem.baseline(length)
    finite = math.isfinite(metric)
    solved = finite and problem.solved_from(scores, length)
    out = {**row, "eval_len": length, "baseline": baseline, "test_metric": metric if finite else None,
           "test_se": scores["se"] if finite else None, "test_metric_last": None, "solved": solved,
           "score": problem.score(metric, length) if finite else None,
           "within_tolerance": scores.get("within_0.04"), "status": "ok" if finite else "diverged",
           "baseline_se": baseline_se, "memoryless_metric": _finite(scores.get("memoryless")),
           "diff_se": _finite(scores.get("diff_se"))}
    out["outcome"] = run_outcome(out["status"], solved, out["test_metric"], baseline, problem.higher_is_better,
                                 out["diff_se"], out["memoryless_metric"])
    return out


def _finite(value: float | None) -> float | None:
    """A stored number, or None where there is none (one test sequence has no spread; a diverged run no metric)."""
    return value if value is not None and math.isfinite(value) else None


def worker_device() -> str:
    """'cuda' when Ray gave this job a GPU share, 'cpu' when it gave none (Ray >= 2.60 no longer hides GPUs
    from zero-GPU tasks, so torch.cuda.is_available() alone would put CPU jobs on a GPU); 'auto' outside Ray."""
    try:
        import ray

        if ray.is_initialized() and ray.get_runtime_context().get_task_id() is not None:  # in a Ray task
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
