"""The columns of a metrics row, filled as far as the spec allows (torch-free: the driver builds failed rows)."""

from __future__ import annotations

import platform
import socket
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata

from rnnbench.archs.options import option_columns
from rnnbench.config import RunSpec
from rnnbench.problems.options import problem_option_columns


@dataclass
class RunResult:
    row: dict  # the in-distribution row (eval_len == seq_len)
    curve: list[dict] = field(default_factory=list)
    # the same model scored at each other --eval-lens length, and on each held-out split (test_split)
    eval_rows: list[dict] = field(default_factory=list)


def failed_row(spec: RunSpec, error: str) -> dict:
    """The row of a job that raised: recorded (and reported), never stored, so a later sweep retries it. Built in
    the driver, so no Ray node is asked for (the job's own node is unknown there)."""
    row = base_row(spec, on_worker=False)
    row.update(status="failed", error=error[:2000])
    return row


@cache
def _torch_version() -> str:
    # the installed distribution's version, without importing torch (2-3 s) in the driver
    return metadata.version("torch")


def ray_node_id() -> str | None:
    """The Ray node running this job (None outside a Ray worker): tells apart nodes that share a host name."""
    try:
        import ray

        if in_ray_task():
            return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - no Ray, no node id
        pass
    return None


def in_ray_task() -> bool:
    """Whether this code runs inside a Ray task (a worker process), not in a driver. Ray's public get_task_id() is
    None outside a task; it logs a warning when called in a driver, so only code that runs in tasks asks."""
    import ray

    return ray.is_initialized() and ray.get_runtime_context().get_task_id() is not None


def base_row(spec: RunSpec, on_worker: bool = True) -> dict:
    """The columns every metrics row has, whatever became of the job. `on_worker`: built where the job ran (its
    Ray node is recorded), not in the driver."""
    problem = spec.problem_def()
    m = spec.model
    # the arch's own options as the run resolves and builds them (defaults and derived values included); one
    # column per known option, None where another arch's
    values = m.arch_values(spec.arch, spec.seq_len, spec.hidden_size)
    options = {column: values[option.name] if arch == spec.arch else None
               for column, (arch, option) in option_columns().items()}
    # the problem's own settings likewise (every one resolved), None on other problems' rows
    options.update({column: spec.problem_options[option.name] if name == spec.problem else None
                    for column, (name, option) in problem_option_columns().items()})
    return {
        "run_id": spec.run_id, "problem": spec.problem, "arch": spec.arch, "seq_len": spec.seq_len,
        "eval_len": spec.seq_len, "test_split": "test",
        "min_len": spec.min_len,
        "seed": spec.seed, "role": spec.role, "hidden_size": spec.hidden_size, "num_layers": m.num_layers,
        "bidirectional": m.bidirectional, "dropout": m.dropout, "bias": m.bias, "proj_size": m.proj_size,
        "forget_bias": values.get("forget_bias", m.forget_bias), "recurrent_init": m.recurrent_init, **options,
        "steps": spec.steps, "lr": spec.lr,
        "batch_size": spec.batch_size, "clip_norm": spec.clip_norm, "n_train": spec.n_train, "n_val": spec.n_val,
        "n_test": spec.n_test, "early_stop": spec.early_stop, "epochs": None,
        "metric_name": problem.metric_name, "higher_is_better": problem.higher_is_better,
        "baseline": problem.baseline_for(spec.seq_len, spec.min_len), "solved_rule": problem.solved_rule(),
        "params": None, "state_size": None, "test_metric": None, "test_se": None, "baseline_se": None,
        "memoryless_metric": None, "diff_se": None,
        "test_metric_last": None,
        "val_metric_best": None, "val_se_best": None, "stopped_early": False, "stop_margin": None,
        "best_step": None, "steps_to_solve": None, "score": None, "solved": False,
        "outcome": "failed",
        "within_tolerance": None, "final_train_loss": None, "steps_done": 0, "status": "failed", "error": None,
        "train_seconds": None, "steps_per_second": None, "device": None, "kernel": None,
        "node": socket.gethostname(),
        "ray_node_id": ray_node_id() if on_worker else None,
        "torch_version": _torch_version(), "python_version": platform.python_version(),
    }
