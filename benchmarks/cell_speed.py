"""Training-step time of every registered architecture on the adding problem, one CPU thread, relative to nn.LSTM.

One step is what rnnbench.train does per update: forward through build_model(arch, ...) (core + linear
readout), MSE on the last step, backward, gradient-norm clipping, Adam step, and IndRNN's recurrent-weight
clip. Batch 64, input 2 (adding), equal hidden size for all archs, one thread, flush-denormal on (as
rnnbench.train.configure_cpu sets it). Each sequence length runs in rounds: every round times one step of
every arch in turn, so a noisy moment on the machine hits all archs alike; the table shows the median over
rounds (after warm-up steps) and the ratio to 'lstm' at the same T.

    .venv/bin/python benchmarks/cell_speed.py [--seq-lens 100,1000] [--hidden-size 64] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from flows import cli
from rnnbench.archs import ARCHS
from rnnbench.model import build_model
from rnnbench.problems import get_problem

BATCH = 64
WARMUP = 2
BASELINE = "lstm"


class Trainer:
    """One arch's model, optimizer and fixed batch; step() is one timed training update."""

    def __init__(self, arch: str, seq_len: int, hidden_size: int, seed: int = 0) -> None:
        problem = get_problem("adding")
        x, y = problem.generate(BATCH, seq_len, np.random.default_rng(seed))
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        torch.manual_seed(seed)
        self.model = build_model(arch, problem.input_size, problem.output_size, problem.target_kind, hidden_size)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.clip_weights = getattr(self.model.core, "clip_recurrent_weights_", None)

    def step(self) -> float:
        start = time.perf_counter()
        loss = F.mse_loss(self.model(self.x), self.y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        if self.clip_weights is not None:
            self.clip_weights()
        return time.perf_counter() - start


def measure(archs: list[str], seq_len: int, hidden_size: int, repeats: int) -> dict[str, float]:
    """Median seconds per step for each arch at one T, with rounds interleaved over the archs."""
    trainers = {arch: Trainer(arch, seq_len, hidden_size) for arch in archs}
    for _ in range(WARMUP):
        for trainer in trainers.values():
            trainer.step()
    times: dict[str, list[float]] = {arch: [] for arch in archs}
    for _ in range(repeats):
        for arch, trainer in trainers.items():
            times[arch].append(trainer.step())
    return {arch: statistics.median(values) for arch, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/cell_speed.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq-lens", type=cli.ints, default=[100, 1000], help="comma-separated T (default 100,1000)")
    parser.add_argument("--hidden-size", type=int, default=64, help="hidden size of every arch (default 64)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per T, median taken (>= 5; default 7)")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error(f"--repeats must be at least 5, got {args.repeats}")
    if args.hidden_size < 1 or any(t < 2 for t in args.seq_lens):
        parser.error(f"need --hidden-size >= 1 and every T >= 2, got {args.hidden_size} and {args.seq_lens}")

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    archs = list(ARCHS)
    print(f"adding problem: batch {BATCH}, input 2, hidden {args.hidden_size}, 1 thread, flush-denormal on; "
          f"median of {args.repeats} interleaved steps after {WARMUP} warm-up; torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible")

    results: dict[int, dict[str, float]] = {}
    for seq_len in args.seq_lens:
        start = time.perf_counter()
        results[seq_len] = measure(archs, seq_len, args.hidden_size, args.repeats)
        print(f"  T={seq_len}: measured in {time.perf_counter() - start:.1f} s", flush=True)

    header = f"{'arch':<10}" + "".join(f"{f'T={t} ms/step':>16}{'x lstm':>8}" for t in args.seq_lens)
    print()
    print(header)
    print("-" * len(header))
    for arch in archs:
        cells = []
        for seq_len in args.seq_lens:
            ms = results[seq_len][arch] * 1e3
            ratio = results[seq_len][arch] / results[seq_len][BASELINE]
            cells.append(f"{ms:>16.2f}{ratio:>8.2f}")
        print(f"{arch:<10}" + "".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
