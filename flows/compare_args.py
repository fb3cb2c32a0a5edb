"""The compare CLI's flags, and the checks that turn them into a validated config before any work starts.

Light on purpose (no Prefect, Ray or torch): `python -m flows.compare` runs this, and starts the Prefect API,
before importing the rest.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

from pydantic import ValidationError as PydanticValidationError

from flows import cli
from flows.api_server import LocalApi, RuntimeStartError
from rnnbench import storage
from rnnbench.archs import ARCHS
from rnnbench.archs.switch import fast_path_enabled
from rnnbench.config import PRESETS, CompareConfig, ModelOptions, ProblemGrid, from_preset
from rnnbench.memory import malloc_setting
from rnnbench.problems import PROBLEMS, get_problem
from rnnbench.sizing import check_fits

USAGE = """Train every architecture on every problem, sequence length and seed; write metrics and a report.

    python -m flows.compare                   # preset 'quick': every arch where they part (~10 min, 2 cores)
    python -m flows.compare --preset seed     # the notebook's grid and budgets, 3 seeds: its claims, tested
    python -m flows.compare --preset full --subset 1/100   # a slice of the literature's grid; the plan prices all
    python -m flows.compare --preset smoke    # 3 archs x 3 problems at tiny sizes (about a minute)
"""


@dataclass
class Preflight:
    """What the CLI knows once its input is checked: the config, and the Prefect API it has started (None when
    PREFECT_API_URL names one to use)."""

    args: argparse.Namespace
    config: CompareConfig
    api: LocalApi | None


def preflight(argv: list[str] | None) -> Preflight:
    """Parse and check every flag (exit 2 with one line naming the bad value), then start the Prefect API, whose
    start-up takes seconds: it overlaps whatever the caller does next."""
    args = build_parser().parse_args(argv)
    # Ray's own variable, as `ray.init` reads it (a `ray job submit` driver gets the cluster's address there)
    args.ray_address = args.ray_address or os.environ.get("RAY_ADDRESS") or None
    try:
        config = config_from_args(args)
        # a bad RNNBENCH_FASTPATH or RNNBENCH_MALLOC is named here, not in every job
        fast_path_enabled("classic")
        malloc_setting()
        if args.ray_address:
            cli.check_ray_address(args.ray_address)
        storage.check_writable(config.out)
    except (ValueError, RuntimeStartError) as exc:
        cli.fail(str(exc))
    from rnnbench.scheduling import plan_text

    print(plan_text(config, os.cpu_count() or 1), file=sys.stderr, flush=True)
    api = None
    if not os.environ.get("PREFECT_API_URL"):
        try:
            api = LocalApi(ui=args.ui).start()
        except RuntimeStartError as exc:
            cli.fail(str(exc))
        lasts = ("with Prefect's UI, kept up after the sweep until Ctrl-C" if args.ui else
                 "stops when this run ends; --ui keeps it and its UI up")
        print(f"local Prefect API starting on {api.url} ({lasts}; set PREFECT_API_URL to use another)",
              file=sys.stderr, flush=True)
    return Preflight(args, config, api)


ENVIRONMENT = """environment:
  PREFECT_API_URL            use this Prefect API (default: a private one on 127.0.0.1, stopped at the end)
  RAY_ADDRESS                join this Ray cluster (as --ray-address; default: a private local Ray)
  RNNBENCH_FASTPATH          CPU fast paths: 1 both (default), 0 neither, classic (rnn_tanh/rnn_relu/gru/lstm's
                             C++ path), modern (the modern cells' compiled recurrent form)
  RNNBENCH_EXT_DIR           where the C++ extension is built and cached (default ~/.cache/rnnbench/ext)
  RNNBENCH_MALLOC            keep (default: a job's process keeps freed memory for reuse, no page faults per
                             step) or default (glibc's own settings)
  RNNBENCH_THREADS           torch threads of a job run outside Ray (in Ray: the CPUs it was given; default 1)
  RNNBENCH_PROGRESS_SECONDS  seconds between progress lines when the output is not a terminal
  RNNBENCH_PLUGINS           comma-separated modules that register more problems or architectures
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flows.compare", description=USAGE, epilog=ENVIRONMENT,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--preset", default="quick", help=f"starting grid: {', '.join(sorted(PRESETS))} (default: quick, every "
        "registered arch on problems and lengths that separate them; full: every registered arch and problem)")
    add("--problems", type=cli.names, help=f"comma-separated problems: the preset's grid for each it has, else "
        f"the problem's own default grid; registered: {', '.join(PROBLEMS)}")
    add("--archs", type=cli.names, help=f"comma-separated architectures (default: the preset's); registered: "
        f"{', '.join(ARCHS)}")
    add("--seq-lens", type=cli.ints, help="comma-separated sequence lengths, replacing every problem's")
    add("--min-len", type=int, help="variable-length sequences: each length ~ U{MIN_LEN..T}, padded to T and "
        "packed in training (every problem but sequential_digits, whose images have 64 pixels; default: fixed "
        "length T)")
    add("--seeds", type=int, help="number of seeds (0..N-1); each seed is a new init and new data")
    add("--hidden-size", type=int, help="hidden units, replacing every problem's")
    add("--steps", type=int, help="parameter updates per job, replacing every problem's")
    add("--lr", type=float, help="Adam learning rate (default 1e-3)")
    add("--lrs", type=cli.floats, help="comma-separated learning rates to tune, e.g. 3e-4,1e-3,3e-3: a tuning "
        "stage runs every cell at each on seeds of its own (numbered after --seeds) and picks one per (problem, T, "
        "arch) on validation; the reported seeds then run at that rate only")
    add("--match", help="iso-size race: params=N or state=N chooses each arch's hidden size so its parameter "
        "count (or state size) is closest to N (refused when an arch cannot come within 10%%); several targets, "
        "state=64,256,1024, run every arch at each (the report then draws the metric against state size)")
    add("--eval-lens", type=cli.names, help="length generalisation: comma-separated lengths at which each "
        "trained model is also scored, each on its own stored test set; absolute (200,500) or multiples of the "
        "training T (2x,4x,10x); problems whose answer is defined at any length only")
    add("--subset", help="i/n: run only every n-th job of the sweep from the i-th, e.g. 1/50 of the full preset; "
        "the plan printed first says how long the whole would take")
    add("--batch-size", type=int, help="sequences per update (default 64)")
    add("--n-test", type=int, help="stored test sequences per (problem, seq_len, seed) (default 1000)")
    add("--n-val", type=int, help="stored validation sequences per (problem, seq_len, seed): learning curves, "
        "checkpoint choice and early stop read only these (default 512)")
    add("--n-train", type=int, help="distinct stored training sequences per (problem, seq_len, seed), read in "
        "shuffled epochs (default: one per sequence the updates read, up to a 256 MB file)")
    add("--no-early-stop", dest="early_stop", action="store_false", default=None, help="train every run for its "
        "whole budget (default: stop once validation beats the solved rule by a margin of its standard errors "
        "at two evaluations in a row)")
    add("--out", default="results", help="output root (path or pyarrow/fsspec URI); datasets go to OUT/data")
    add("--data-root", help="dataset root shared by all nodes (default OUT/data)")
    add("--ray-address", help="join this Ray cluster (HOST:PORT, ray://HOST:PORT or auto) instead of a local one "
        "(default: RAY_ADDRESS when set)")
    add("--cpus-per-job", type=float, help="CPUs Ray reserves per job (default 1; a job uses that many threads)")
    add("--gpus-per-job", type=float, help="GPU share per job, e.g. 0.25 packs four jobs on a GPU; a job runs on "
        "CUDA when it holds a GPU share. Default: on the private local Ray, 0.25 when this machine has a GPU, "
        "else 0; on a cluster (--ray-address), 0: ask for GPUs here, as an autoscaling cluster starts its GPU "
        "workers only once jobs ask for them")
    add("--resources-per-job", type=cli.resources, metavar="NAME=AMOUNT,...", help="custom Ray resources each job "
        "asks for, e.g. accel=1: jobs run only on nodes that declare them (`ray start --resources`), and wait "
        "for one to join when none has them yet")
    add("--ui", action="store_true", help="serve Prefect's UI with the local Prefect API and keep both up after "
        "the sweep, with its run history, until Ctrl-C (with PREFECT_API_URL set, that server's own UI has it)")
    add("--regenerate", action="store_true", help="rebuild dataset files, e.g. after one was refused as invalid")
    add("--problem-option", action="append", metavar="PROBLEM.KEY=VALUE",
        help="a problem's own setting, e.g. group_word.group=a5, mqar.pairs=16 or flip_flop.p_i=0.9; repeatable or "
        "comma-separated, one value per key in a sweep. Keys: "
        f"{', '.join(f'{name}.{o.name}' for name, p in PROBLEMS.items() for o in p.problem_options)}; defaults "
        "and their sources in docs/PROBLEMS.md; recorded as opt_PROBLEM_KEY columns")
    g = parser.add_argument_group("model options (recorded in every metrics row)")
    g.add_argument("--num-layers", type=int, help="stacked recurrent layers (default 1)")
    g.add_argument("--bidirectional", action="store_true", default=None, help="classic cells, end-of-sequence "
                   "problems only")
    g.add_argument("--dropout", type=float, help="dropout between layers (needs --num-layers > 1)")
    g.add_argument("--no-bias", dest="bias", action="store_false", default=None, help="no bias vectors")
    g.add_argument("--proj-size", type=int, help="LSTM projection size (< hidden size)")
    g.add_argument("--forget-bias", type=float, help="LSTM forget-gate bias, e.g. 1.0")
    g.add_argument("--recurrent-init", help="default, orthogonal, or identity (IRNN, rnn_relu only)")
    g.add_argument("--arch-option", action="append", metavar="ARCH.KEY=VALUE",
                   help="an architecture's own setting, applied to that arch's runs, e.g. lru.r_max=0.999 or "
                   "indrnn.recurrent_max=1.01; repeatable or comma-separated. Keys: "
                   f"{', '.join(f'{name}.{o.name}' for name, arch in ARCHS.items() for o in arch.arch_options)}; "
                   "defaults from each paper (rnnbench/archs/__init__.py); recorded as opt_ARCH_KEY columns")
    return parser


def config_from_args(args: argparse.Namespace) -> CompareConfig:
    """Preset + flags -> a validated config; raises ValueError naming the bad value."""
    if args.preset not in PRESETS:
        raise ValueError(f"unknown preset {args.preset!r}; valid presets: {', '.join(sorted(PRESETS))}")
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds {args.seeds}: the number of seeds must be at least 1")
    for flag in ("steps", "hidden_size", "batch_size", "n_test", "n_val", "n_train"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} {value}: must be a positive integer")
    if args.lr is not None and not args.lr > 0:
        raise ValueError(f"--lr {args.lr}: must be positive")
    for lr in args.lrs or []:
        if not lr > 0:
            raise ValueError(f"--lrs: learning rate {lr!r} must be positive")
    base = PRESETS[args.preset]()
    grids = base["grids"]
    if args.problems:
        for name in args.problems:
            get_problem(name)
        known = {g.problem for g in grids}
        grids = [g for g in grids if g.problem in args.problems] + [
            ProblemGrid.default(p) for p in args.problems if p not in known]
    overrides = {k: v for k, v in (("seq_lens", args.seq_lens), ("hidden_size", args.hidden_size),
                                   ("steps", args.steps), ("min_len", args.min_len)) if v is not None}
    grids = [g.model_copy(update=overrides) for g in grids]
    model = {k: getattr(args, k) for k in ("num_layers", "bidirectional", "dropout", "bias", "proj_size",
                                           "forget_bias", "recurrent_init") if getattr(args, k) is not None}
    if args.arch_option:
        model["arch_options"] = _arch_options(args.arch_option)
    problem_options = _problem_options(args.problem_option) if args.problem_option else None
    if problem_options:
        unused = sorted({key.split(".")[0] for key in problem_options} - {g.problem for g in grids})
        if unused:
            raise ValueError(f"--problem-option for {', '.join(unused)}, which this sweep does not run "
                             f"({', '.join(g.problem for g in grids)}); add it to --problems")
    try:
        config = from_preset(
            args.preset, grids=grids, archs=args.archs, seeds=args.seeds, lr=args.lr, lrs=args.lrs,
            match=args.match, subset=args.subset, eval_lens=args.eval_lens, batch_size=args.batch_size,
            n_test=args.n_test, n_val=args.n_val, n_train=args.n_train, early_stop=args.early_stop,
            out=args.out, data_root=args.data_root, ray_address=args.ray_address,
            cpus_per_job=args.cpus_per_job, gpus_per_job=args.gpus_per_job, resources_per_job=args.resources_per_job,
            model=ModelOptions(**model) if model else None, problem_options=problem_options,
        )
    except PydanticValidationError as exc:
        raise ValueError(_pydantic_message(exc)) from None
    if config.model.arch_options:
        unused = sorted({key.split(".")[0] for key in config.model.arch_options} - set(config.archs))
        if unused:
            raise ValueError(f"--arch-option for {', '.join(unused)}, which --archs does not run "
                             f"({', '.join(config.archs)})")
    config.runs()  # every combination checked before any work
    check_fits(config)
    return config


def _arch_options(items: list[str]) -> dict:
    """--arch-option texts -> {ARCH.KEY: typed value}; ValueError naming the flag and the bad key or value."""
    from rnnbench.archs.options import check_arch_options, parse_assignments

    try:
        return check_arch_options(parse_assignments(items))
    except ValueError as exc:
        raise ValueError(f"--arch-option: {exc}") from None


def _problem_options(items: list[str]) -> dict:
    """--problem-option texts -> {PROBLEM.KEY: typed value}; ValueError naming the flag and the bad key or value."""
    from rnnbench.problems.options import check_problem_options, parse_assignments

    try:
        return check_problem_options(parse_assignments(items))
    except ValueError as exc:
        raise ValueError(f"--problem-option: {exc}") from None


def _pydantic_message(exc: PydanticValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        parts.append(f"{where}={err.get('input')!r}: {err['msg']}")
    return "; ".join(parts)
