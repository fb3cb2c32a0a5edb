"""Training-step time of every registered architecture on the adding problem, one CPU thread, relative to nn.LSTM.

One step is what rnnbench.train does per update: forward through build_model(arch, ...) (core + linear
readout), MSE on the last step, backward, gradient-norm clipping, Adam step, and IndRNN's recurrent-weight
clip. Batch 64, input 2 (adding), equal hidden size for all archs, one thread, flush-denormal on (as
rnnbench.train.configure_cpu sets it). Each sequence length runs in rounds: every round times one step of
every arch in turn, so a noisy moment on the machine hits all archs alike; the table shows the median over
rounds (after warm-up steps) and the ratio to 'lstm' at the same T.

    .venv/bin/python benchmarks/cell_speed.py [--seq-lens 100,1000] [--hidden-size 64] [--repeats 7]

A second table (modern_table below; `--modern-only` prints just it) sets each modern core (indrnn, mingru,
minlstm, lru), in the form it runs in on this device, against torch's own nn.LSTM with the same readout, the
same data and the same step, at the same T; `--forms` adds each scan-based core in its other form, which is
what rnnbench.archs.scan.pick_form's choice rests on; `--per-step` reads every step's output (the model of a
per-step problem: LRU then computes its top block at every step, not only at the last one).

A third table (fastpath_table below; `--fastpath-only` prints just it, `--skip-fastpath` leaves it out) times
each classic cell (rnn_tanh, rnn_relu, gru, lstm) on nn.* and on rnnbench.archs.fastpath side by side at one T
(`--fastpath-seq-len`, default 200), and measures in the same run what a step cannot do without: the
recurrent products, the gate arithmetic and the rest of the step (see step_floor); it prints each cell's ratio
to that floor. Each round runs three steps of each trainer and times the third (in training, one model's
steps follow each other: its data is in cache, not the other trainers'). Its clock is the thread's CPU time
(`--clock wall` for wall time): on a shared machine, time spent waiting for a core is not the step's.

    .venv/bin/python benchmarks/cell_speed.py --fastpath-only [--fastpath-seq-len 200] [--repeats 7]
"""

from __future__ import annotations

import argparse
import copy
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
from rnnbench.memory import keep_freed_memory
from rnnbench.model import build_model
from rnnbench.problems import get_problem

BATCH = 64
WARMUP = 2
BASELINE = "lstm"


class Trainer:
    """One arch's model, optimizer and fixed batch; step() is one timed training update."""

    def __init__(self, arch: str, seq_len: int, hidden_size: int, seed: int = 0, per_step: bool = False) -> None:
        problem = get_problem("adding")
        x, y = problem.generate(BATCH, seq_len, np.random.default_rng(seed))
        # per_step: the model read at every step (as for copy_sequence, selective_copy), the target repeated
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y).expand(-1, seq_len if per_step else 1, -1)
        torch.manual_seed(seed)
        self.model = build_model(arch, problem.input_size, problem.output_size,
                                 "per_step" if per_step else problem.target_kind, hidden_size)
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
    parser.add_argument("--modern-only", action="store_true", help="print only the modern cores against nn.LSTM")
    parser.add_argument("--fastpath-only", action="store_true", help="print only the classic cells: nn.* against "
                        "the fast path, and each against its measured floor")
    parser.add_argument("--skip-fastpath", action="store_true", help="leave that table out")
    parser.add_argument("--fastpath-seq-len", type=int, default=200, help="T of that table (default 200)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                        help="that table's clock: the thread's CPU time (default) or wall time")
    parser.add_argument("--per-step", action="store_true", help="in the modern cores' table, read every step's "
                        "output (a per-step problem's model) instead of the last step's")
    parser.add_argument("--forms", action="store_true", help="in the modern cores' table, also time each scan-based "
                        "core in its other form (the parallel scan, on a CPU: slow at long T)")
    parser.add_argument("--malloc-default", action="store_true", help="leave glibc's malloc at its defaults (by "
                        "default freed memory is kept for reuse, as rnnbench.train.configure_cpu sets it: see "
                        "rnnbench/memory.py)")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error(f"--repeats must be at least 5, got {args.repeats}")
    if args.hidden_size < 1 or any(t < 2 for t in args.seq_lens):
        parser.error(f"need --hidden-size >= 1 and every T >= 2, got {args.hidden_size} and {args.seq_lens}")

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    malloc = "glibc defaults (--malloc-default)" if args.malloc_default else keep_freed_memory()
    archs = list(ARCHS)
    print(f"malloc: {malloc}")
    print(f"adding problem: batch {BATCH}, input 2, hidden {args.hidden_size}, 1 thread, flush-denormal on; "
          f"median of {args.repeats} interleaved steps after {WARMUP} warm-up; torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible")
    if args.modern_only:
        return modern_table(args.seq_lens, args.hidden_size, args.repeats, args.forms, args.per_step)
    if args.fastpath_only:
        return fastpath_table(args.fastpath_seq_len, args.hidden_size, args.repeats, args.clock)

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
    if not args.skip_fastpath:
        fastpath_table(args.fastpath_seq_len, args.hidden_size, args.repeats, args.clock)
    return modern_table(args.seq_lens, args.hidden_size, args.repeats, args.forms, args.per_step)


# ---- the modern cores against torch's nn.LSTM (issue 16 item 2) -------------------------------------------------
MODERN = ("indrnn", "mingru", "minlstm", "lru")
NN_LSTM = "nn.LSTM"


class _TorchLSTM(torch.nn.Module):
    """The baseline, independent of how the registry builds 'lstm': torch.nn.LSTM, batch first, read at the last
    step by a linear layer, as build_model('lstm', ...) has it."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, per_step: bool = False) -> None:
        super().__init__()
        self.rnn = torch.nn.LSTM(input_size, hidden_size, batch_first=True)
        self.readout = torch.nn.Linear(hidden_size, output_size)
        self.per_step = per_step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rnn(x)[0]
        return self.readout(out) if self.per_step else self.readout(out[:, -1]).unsqueeze(1)


class FormTrainer(Trainer):
    """A Trainer for nn.LSTM or a modern core in a given form ('auto': the one pick_form chooses here)."""

    def __init__(self, name: str, seq_len: int, hidden_size: int, form: str = "auto", seed: int = 0,
                 per_step: bool = False) -> None:
        super().__init__("lstm" if name == NN_LSTM else name, seq_len, hidden_size, seed, per_step)
        if name == NN_LSTM:
            torch.manual_seed(seed)
            problem = get_problem("adding")
            self.model = _TorchLSTM(problem.input_size, hidden_size, problem.output_size, per_step)
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        else:
            self.model.core.form = form


def modern_table(seq_lens: list[int], hidden_size: int, repeats: int, forms: bool, per_step: bool = False) -> int:
    """Time nn.LSTM and each modern core (and, with `forms`, each scan core's other form) in interleaved rounds at
    each T; print ms/step and the ratio to nn.LSTM."""
    from rnnbench.archs.scan import pick_form

    chosen = pick_form("cpu", max(seq_lens))
    other = "parallel" if chosen == "recurrent" else "recurrent"
    rows = [(NN_LSTM, "auto")] + [(arch, "auto") for arch in MODERN]
    if forms:
        rows += [(arch, other) for arch in MODERN if arch != "indrnn"]  # IndRNN has a single form
    results: dict[int, dict[tuple[str, str], float]] = {}
    for seq_len in seq_lens:
        start = time.perf_counter()
        trainers = {(name, form): FormTrainer(name, seq_len, hidden_size, form, per_step=per_step)
                    for name, form in rows}
        for _ in range(WARMUP):
            for trainer in trainers.values():
                trainer.step()
        times: dict[tuple[str, str], list[float]] = {row: [] for row in rows}
        for _ in range(repeats):
            for row, trainer in trainers.items():
                times[row].append(trainer.step())
        results[seq_len] = {row: statistics.median(values) for row, values in times.items()}
        print(f"  modern cores, T={seq_len}: measured in {time.perf_counter() - start:.1f} s", flush=True)

    header = f"{'core (form)':<22}" + "".join(f"{f'T={t} ms/step':>16}{'x nn.LSTM':>11}" for t in seq_lens)
    print(f"\nmodern cores against torch.nn.LSTM (same readout, data, step; CPU form here: {chosen}; read at "
          f"{'every step' if per_step else 'the last step'})")
    print(header)
    print("-" * len(header))
    for name, form in rows:
        label = name if name == NN_LSTM else f"{name} ({chosen if form == 'auto' else form})"
        if name == "indrnn":
            label = "indrnn (loop)"
        cells = []
        for seq_len in seq_lens:
            seconds = results[seq_len][(name, form)]
            cells.append(f"{seconds * 1e3:>16.2f}{seconds / results[seq_len][(NN_LSTM, 'auto')]:>11.2f}")
        print(f"{label:<22}" + "".join(cells))
    return 0



# ---- the classic cells: nn.* against rnnbench.archs.fastpath, and each against its floor (issue 16 items 1, 3) ---
CLASSIC = ("rnn_tanh", "rnn_relu", "gru", "lstm")
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}
# Gate arithmetic per hidden unit and step, forward + backward, as a hand-written backward through time needs it:
# (sigmoids, tanhs, other flops). LSTM: forward 3 sigmoid + 2 tanh, 8 adds/multiplies (the 4 pre-activation
# sums, c = f*c + i*g, h = o*tanh(c)); backward 23 (dh + dy, dc through tanh(c), the four gate derivatives,
# dc to the previous step). GRU: forward 2 sigmoid + 1 tanh and 10; backward 17. RNN: 1 tanh (relu: a compare,
# counted with the flops) and 1 + 4. Plus the input projection: 2*D flops per gate forward and 2*D for dW_ih.
GATE_MATH = {"rnn_tanh": (0, 1, 5), "rnn_relu": (0, 0, 6), "gru": (2, 1, 27), "lstm": (3, 2, 31)}
FASTPATH_GOALS = {"rnn_tanh": 1.8, "rnn_relu": 1.8, "gru": 2.5, "lstm": 1.6}  # speed-up over nn.*, issue 16
FLOOR_GOAL = 1.5  # each cell's fast path within this factor of its floor
# numbers per sequence and step that a backward through time must store and read back: the activated gates,
# the LSTM's cell state or the GRU's W_hn h + b_hn, and the output (the next step's h_prev)
SAVED_PER_UNIT = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 5, "lstm": 6}
FASTPATH_UNTIMED = 2  # steps of a trainer before its timed step, in every round


def _clock(name: str):
    return time.thread_time if name == "cpu" else time.perf_counter


class PathTrainer(Trainer):
    """A classic cell's Trainer on nn.* (`fast=False`) or on the fast path, timed by `clock`."""

    def __init__(self, arch: str, seq_len: int, hidden_size: int, fast: bool, clock, seed: int = 0) -> None:
        super().__init__(arch, seq_len, hidden_size, seed)
        self.model.core.fast_path = fast
        self.clock = clock

    def step(self) -> float:
        start = self.clock()
        super().step()
        return self.clock() - start


def _median_time(fn, calls: int, clock, rounds: int = 5) -> float:
    """Seconds per call of fn: the median over `rounds` batches of `calls` calls."""
    fn()
    times = []
    for _ in range(rounds):
        start = clock()
        for _ in range(calls):
            fn()
        times.append((clock() - start) / calls)
    return statistics.median(times)


def step_floor(trainer: Trainer, arch: str, seq_len: int, hidden_size: int, clock) -> dict[str, float]:
    """What one training step of `arch` cannot do without, each part measured on this machine now (seconds):

    * products: per step the recurrent product h W_hh^T [B,H]x[H,GH] (forward) and dh += dgates W_hh
      [B,GH]x[GH,H] (backward), each timed as T calls on cache-resident operands, so ~1 us of call overhead
      per product is in the floor; and the weight gradient sum_t dgates_t^T h_t: the cheapest of T per-step
      products, T/8 products over 8 steps each, and one product over all steps;
    * gate arithmetic: the sigmoids and tanhs at the rate of torch's vectorised kernels on a cache-resident
      tensor, and the other flops (GATE_MATH, plus the input projection) at the recurrent product's flop rate;
    * rest: the readout, loss, their backward, gradient clipping and the Adam step on this model, timed alone.

    Not in it: moving data between these parts, and the memory traffic for what the backward needs; the
    latter is measured apart ("saved traffic": SAVED_PER_UNIT numbers per hidden unit and step, written once
    and read once, at this machine's streaming rate) and printed beside the floor, not added to it.
    """
    B, H, T, G = BATCH, hidden_size, seq_len, GATES[arch]
    GH, D = G * H, trainer.x.shape[-1]
    torch.manual_seed(0)
    h, w = torch.randn(B, H), torch.randn(GH, H) / H ** 0.5
    w_t, q, dh, dw = w.t().contiguous(), torch.randn(B, GH), torch.randn(B, H), torch.zeros(GH, H)
    hh = torch.empty(B, GH)
    fwd = _median_time(lambda: torch.mm(h, w_t, out=hh), T, clock)
    bwd = _median_time(lambda: dh.addmm_(q, w), T, clock)
    dw_step = _median_time(lambda: dw.addmm_(q.t(), h), T, clock)
    q8, h8 = torch.randn(8 * B, GH), torch.randn(8 * B, H)
    dw_8 = _median_time(lambda: dw.addmm_(q8.t(), h8), T // 8 or 1, clock) / 8
    q_all, h_all = torch.randn(T * B, GH), torch.randn(T * B, H)
    dw_once = _median_time(lambda: torch.mm(q_all.t(), h_all), 1, clock) / T
    rate = 2 * B * H * GH / fwd  # flop/s of the recurrent product, call overhead included
    block = torch.randn(64 * 1024)  # 256 KB: stays in cache
    out = torch.empty_like(block)
    sig = _median_time(lambda: torch.sigmoid(block, out=out), 20, clock) / block.numel()
    tanh = _median_time(lambda: torch.tanh(block, out=out), 20, clock) / block.numel()
    n_sig, n_tanh, flops = GATE_MATH[arch]
    flops += 4 * D * G  # input projection forward and its weight gradient
    gates = T * B * H * (n_sig * sig + n_tanh * tanh + flops / rate)

    model = copy.deepcopy(trainer.model)  # a copy: the timed trainer's model and Adam state stay untouched
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = {p: torch.randn_like(p) * 1e-3 for p in params}
    last = torch.randn(B, model.core.output_size, requires_grad=True)

    def rest() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(model.readout(last).unsqueeze(1), trainer.y)
        loss.backward()
        for p in params:
            if p.grad is None:
                p.grad = grads[p]
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    rest_s = _median_time(rest, 10, clock)
    saved = torch.empty(T * B * H * SAVED_PER_UNIT[arch])
    traffic = _median_time(lambda: (saved.fill_(1.0), saved.sum()), 3, clock)
    parts = {"fwd product": T * fwd, "bwd product": T * bwd, "dW product": T * min(dw_step, dw_8, dw_once),
             "gate arithmetic": gates, "rest of step": rest_s}
    parts["floor"] = sum(parts.values())
    parts["product us"] = fwd * 1e6
    parts["saved traffic"] = traffic
    return parts


def fastpath_table(seq_len: int, hidden_size: int, repeats: int, clock_name: str = "cpu") -> int:
    """Time each classic cell's training step on nn.* and on the fast path in interleaved rounds, measure each
    cell's floor in the same rounds, and print ms/step, the speed-up and the ratios to the floor."""
    from rnnbench.archs import fastpath

    clock = _clock(clock_name)
    status = fastpath.status()
    print(f"\nclassic cells, nn.* against rnnbench.archs.fastpath (T={seq_len}, {clock_name} clock, median of "
          f"{repeats} rounds of {FASTPATH_UNTIMED + 1} steps per trainer, the last timed; fast path: "
          f"{'built, ' + os.path.basename(status['library']) if status['available'] else status['reason']})",
          flush=True)
    start = time.perf_counter()
    trainers = {(arch, fast): PathTrainer(arch, seq_len, hidden_size, fast, clock)
                for arch in CLASSIC for fast in (False, True)}
    for _ in range(WARMUP):
        for trainer in trainers.values():
            trainer.step()
    for (arch, fast), trainer in trainers.items():
        want = "fastpath" if fast else "nn: fast_path=False"
        if trainer.model.core.last_path != want:
            print(f"  note: {arch} {'fast' if fast else 'nn.*'} ran as {trainer.model.core.last_path!r}")
    times: dict[tuple[str, bool], list[float]] = {key: [] for key in trainers}
    floors: dict[str, list[dict[str, float]]] = {arch: [] for arch in CLASSIC}
    for _ in range(repeats):
        for key, trainer in trainers.items():
            # untimed steps first: in training one model's steps follow each other, its data stays in cache
            for _ in range(FASTPATH_UNTIMED):
                trainer.step()
            times[key].append(trainer.step())
        for arch in CLASSIC:  # the floor's parts, measured in the same rounds as the steps
            floors[arch].append(step_floor(trainers[(arch, True)], arch, seq_len, hidden_size, clock))
    print(f"  measured in {time.perf_counter() - start:.1f} s", flush=True)

    med = {key: statistics.median(values) for key, values in times.items()}
    parts = {arch: {k: statistics.median(f[k] for f in floors[arch]) for k in floors[arch][0]} for arch in CLASSIC}
    header = (f"{'arch':<10}{'nn.* ms':>9}{'fast ms':>9}{'speed-up':>10}{'goal':>7}{'floor ms':>10}"
              f"{'nn/floor':>10}{'fast/floor':>12}{'fast/(floor+saved)':>20}   verdict")
    print(header)
    print("-" * len(header))
    ok = True
    for arch in CLASSIC:
        nn_s, fast_s, floor = med[(arch, False)], med[(arch, True)], parts[arch]["floor"]
        speedup, goal = nn_s / fast_s, FASTPATH_GOALS[arch]
        verdict = speedup >= goal and fast_s / floor <= FLOOR_GOAL
        ok &= verdict
        with_saved = floor + parts[arch]["saved traffic"]
        print(f"{arch:<10}{nn_s * 1e3:>9.2f}{fast_s * 1e3:>9.2f}{speedup:>9.2f}x{f'>={goal}':>7}{floor * 1e3:>10.2f}"
              f"{nn_s / floor:>10.2f}{fast_s / floor:>12.2f}{fast_s / with_saved:>20.2f}   "
              f"{'PASS' if verdict else 'FAIL'}")
    print("\nthe floor's parts, ms (median over rounds; recurrent product [B,H]x[H,GH] in us per call):")
    names = ["fwd product", "bwd product", "dW product", "gate arithmetic", "rest of step"]
    header = (f"{'arch':<10}{'product us':>12}" + "".join(f"{name:>17}" for name in names) + f"{'floor':>9}"
              + f"{'saved traffic':>15}")
    print(header)
    print("-" * len(header))
    for arch in CLASSIC:
        p = parts[arch]
        print(f"{arch:<10}{p['product us']:>12.1f}" + "".join(f"{p[name] * 1e3:>17.2f}" for name in names)
              + f"{p['floor'] * 1e3:>9.2f}{p['saved traffic'] * 1e3:>15.2f}")
    print(f"\ngoals (issue 16): speed-up over nn.* >= {FASTPATH_GOALS} and fast/floor <= {FLOOR_GOAL}: "
          f"{'all PASS' if ok else 'not all met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
