"""GPU check (issue 16 item 4), ready to run on a CUDA machine. NOT YET RUN ON A GPU: it was written and checked
on a CPU-only machine, where it stops at once with a message (exit status 2).

    .venv/bin/python benchmarks/gpu_check.py [--budget-s 450] [--skip-cells] [--skip-packing] [--skip-slice]

Three parts, within one time budget (default 450 s, under the 8 minutes asked for; each part gets a share and
is cut short, saying so, when its share runs out):

1. cells: one training step of every registered arch (build_model + readout, MSE, backward, clipping, Adam, as
   in benchmarks/cell_speed.py) on the GPU, adding problem, B=64, H=64, T=200 and T=1000, median of interleaved
   rounds; ms/step and the ratio to cuDNN's LSTM (build_model('lstm') on CUDA runs torch's nn.LSTM, which is
   cuDNN; the CPU fast path is never used on CUDA). Each classic cell also prints which path it ran.
2. packing: K = 1, 4, 8, 16 copies of one small training job (LSTM, H=64, T=200, B=64 on adding) started
   together as Ray tasks that each ask for 1/K of the GPU (fractional shares, as `--gpus-per-job` does) and one
   CPU; every job counts its steps over the same window. Printed: each job's steps/s as a fraction of the solo
   job's (K=1), min and median, and total throughput. Goal: >= 8 jobs on one GPU at >= 0.80 of solo each.
3. slice: `python -m flows.compare --preset full --subset 1/N --steps S --gpus-per-job 1/8` end to end (the
   Prefect API, Ray, datasets, training, report), with the update budget cut to S so that it fits; prints wall
   time, jobs finished and the device each ran on. If this checkout has no `full` preset, it runs
   `--preset smoke` instead and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PACK_COUNTS = (1, 4, 8, 16)
PACK_GOAL_JOBS, PACK_GOAL_FRACTION = 8, 0.80


def no_cuda_exit() -> None:
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible to torch (torch " + torch.__version__ + ", CUDA build: "
              + str(torch.version.cuda) + "). This script measures a GPU and has nothing to do here; run it on a "
              "CUDA machine. Nothing was measured.", file=sys.stderr)
        sys.exit(2)


class Clock:
    """The whole run's deadline, and each part's share of what is left."""

    def __init__(self, budget_s: float) -> None:
        self.end = time.monotonic() + budget_s

    def left(self) -> float:
        return self.end - time.monotonic()


# ---- 1. cells -------------------------------------------------------------------------------------------------

def _trainer(arch: str, seq_len: int, hidden: int, device):
    import numpy as np
    import torch
    import torch.nn.functional as F

    from rnnbench.model import build_model
    from rnnbench.problems import get_problem

    problem = get_problem("adding")
    x, y = problem.generate(64, seq_len, np.random.default_rng(0))
    x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    torch.manual_seed(0)
    model = build_model(arch, problem.input_size, problem.output_size, problem.target_kind, hidden).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    clip = getattr(model.core, "clip_recurrent_weights_", None)

    def step() -> float:
        torch.cuda.synchronize(device) if device.type == "cuda" else None
        start = time.perf_counter()
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if clip is not None:
            clip()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    return model, step


def cells(clock: Clock, share_s: float, seq_lens=(200, 1000), hidden: int = 64, rounds: int = 7) -> None:
    import torch

    from rnnbench.archs import ARCHS

    stop = time.monotonic() + share_s
    dev = torch.device("cuda")
    print(f"\n1. cells on {torch.cuda.get_device_name(dev)}: adding, B=64, H={hidden}; ms/step, median of {rounds} "
          f"interleaved rounds; ratio to cuDNN's LSTM", flush=True)
    for seq_len in seq_lens:
        if time.monotonic() > stop:
            print(f"  T={seq_len}: skipped, the part's time share is spent")
            continue
        steppers = {arch: _trainer(arch, seq_len, hidden, dev) for arch in ARCHS}
        for _, step in steppers.values():
            step()
            step()
        times: dict[str, list[float]] = {arch: [] for arch in steppers}
        for _ in range(rounds):
            for arch, (_, step) in steppers.items():
                times[arch].append(step())
            if time.monotonic() > stop:
                break
        base = statistics.median(times["lstm"])
        print(f"  T={seq_len}")
        for arch, (model, _) in steppers.items():
            ms = statistics.median(times[arch]) * 1e3
            path = getattr(model.core, "last_path", "")
            note = f"  ({path.replace('nn: ', 'nn.* / cuDNN: ')})" if path else ""
            print(f"    {arch:<10}{ms:>10.2f} ms{ms / (base * 1e3):>8.2f} x cuDNN LSTM{note}")
        del steppers
        torch.cuda.empty_cache()


# ---- 2. packing ---------------------------------------------------------------------------------------------

def _packed_job(arch: str, seq_len: int, hidden: int, start_at: float, window_s: float) -> dict:
    """One small training job: warm up, wait for the common start, count steps over the window."""
    import torch

    torch.set_num_threads(1)
    dev = torch.device("cuda")
    _, step = _trainer(arch, seq_len, hidden, dev)
    for _ in range(10):
        step()
    late = time.time() > start_at
    while time.time() < start_at:
        time.sleep(0.005)
    steps, began = 0, time.perf_counter()
    while time.perf_counter() - began < window_s:
        step()
        steps += 1
    return {"steps_per_s": steps / (time.perf_counter() - began), "late": late}


def packing(clock: Clock, share_s: float, arch: str = "lstm", seq_len: int = 200, hidden: int = 64) -> None:
    import ray

    stop = time.monotonic() + share_s
    cpus = os.cpu_count() or 1
    print(f"\n2. packing: K copies of one small job ({arch}, H={hidden}, T={seq_len}, B=64), each a Ray task with "
          f"num_gpus=1/K and num_cpus=1 ({cpus} CPUs here); steps/s of each job as a fraction of the solo job's",
          flush=True)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a loopback cluster of this script's own
    ray.init(num_cpus=cpus, num_gpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    job = ray.remote(_packed_job)
    solo = None
    try:
        for k in PACK_COUNTS:
            window = 20.0
            setup = 15.0 + 1.5 * k  # process start, CUDA context and warm-up of K fresh workers
            if time.monotonic() + setup + window + 10 > stop:
                print(f"  K={k}: skipped, the part's time share is spent")
                continue
            if k > cpus:
                print(f"  K={k}: skipped, {cpus} CPUs cannot give each job its own")
                continue
            start_at = time.time() + setup
            refs = [job.options(num_gpus=1.0 / k, num_cpus=1).remote(arch, seq_len, hidden, start_at, window)
                    for _ in range(k)]
            results = ray.get(refs, timeout=setup + window + 120)
            speeds = [r["steps_per_s"] for r in results]
            late = sum(r["late"] for r in results)
            if k == 1:
                solo = speeds[0]
            fractions = sorted(s / solo for s in speeds) if solo else []
            verdict = ""
            if k >= PACK_GOAL_JOBS and fractions:
                verdict = "PASS" if fractions[0] >= PACK_GOAL_FRACTION else "FAIL"
                verdict = f"  goal (>= {PACK_GOAL_JOBS} jobs at >= {PACK_GOAL_FRACTION:.0%} each): {verdict}"
            print(f"  K={k:>2}: steps/s per job median {statistics.median(speeds):7.1f}, total {sum(speeds):8.1f}; "
                  f"fraction of solo min {fractions[0]:.2f} median {statistics.median(fractions):.2f}"
                  + (f"; {late} job(s) started late" if late else "") + verdict, flush=True)
    finally:
        ray.shutdown()


# ---- 3. slice -----------------------------------------------------------------------------------------------

def slice_run(clock: Clock, share_s: float, jobs: int = 16, steps: int = 2000) -> None:
    from rnnbench.config import PRESETS, from_preset

    if "full" in PRESETS:
        full = from_preset("full")
        total = len(full.all_runs() if hasattr(full, "all_runs") else full.runs())
        every = max(1, total // jobs)
        args = ["--preset", "full", "--subset", f"1/{every}", "--steps", str(steps)]
        what = f"a 1/{every} slice of the full preset ({total} jobs), {steps} updates per job"
    else:
        args = ["--preset", "smoke"]
        what = "the smoke preset (this checkout has no 'full' preset)"
    out = tempfile.mkdtemp(prefix="gpu-check-slice-")
    cmd = [sys.executable, "-m", "flows.compare", *args, "--gpus-per-job", "0.125", "--out", out]
    print(f"\n3. end to end: {what}\n  {' '.join(cmd[1:])}", flush=True)
    timeout = max(30.0, min(share_s, clock.left() - 5))
    start = time.perf_counter()
    env = dict(os.environ, DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false", RAY_USAGE_STATS_ENABLED="0")
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        status = f"exit {proc.returncode}"
        tail = proc.stderr.strip().splitlines()[-5:]
    except subprocess.TimeoutExpired:
        status, tail = f"stopped after {timeout:.0f} s (its time share)", []
    wall = time.perf_counter() - start
    devices: dict[str, int] = {}
    for path in Path(out, "runs").glob("*.json"):
        row = json.loads(path.read_text()).get("row", {})
        devices[str(row.get("device"))] = devices.get(str(row.get("device")), 0) + 1
    print(f"  {status}, {wall:.0f} s wall; jobs finished: {sum(devices.values())}, by device: {devices or '-'}; "
          f"results in {out}")
    for line in tail:
        print(f"    | {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/gpu_check.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-s", type=float, default=450, help="time for all parts (default 450 s)")
    parser.add_argument("--skip-cells", action="store_true")
    parser.add_argument("--skip-packing", action="store_true")
    parser.add_argument("--skip-slice", action="store_true")
    args = parser.parse_args(argv)
    no_cuda_exit()
    import torch

    clock = Clock(args.budget_s)
    print(f"gpu_check: torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
          f"{torch.cuda.get_device_name(0)}; budget {args.budget_s:.0f} s")
    shares = {"cells": 0.20, "packing": 0.40, "slice": 0.40}
    if not args.skip_cells:
        cells(clock, shares["cells"] * args.budget_s)
    if not args.skip_packing:
        packing(clock, min(shares["packing"] * args.budget_s, clock.left() - 60))
    if not args.skip_slice:
        slice_run(clock, clock.left() - 5)
    print(f"\ngpu_check: done in {args.budget_s - clock.left():.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
