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

from flows import cli, prefect_api
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
    python -m flows.compare --preset horizon  # each arch's memory horizon, searched: T doubles, then bisects
    python -m flows.compare --problems adding --horizon 25,800,25   # the same search on any grid
    python -m flows.compare --preset full --dry-run   # the plan only: jobs, CPU-hours, disk, epochs per cell
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
    if args.json and not args.dry_run:
        cli.fail("--json: only with --dry-run (a real run's plan is text, on stderr)")
    try:
        config = config_from_args(args)
        if args.dry_run:
            dry_run(config, args.json)
        # a bad RNNBENCH_FASTPATH or RNNBENCH_MALLOC is named here, not in every job
        fast_path_enabled("classic")
        malloc_setting()
        if args.ray_address:
            cli.check_ray_address(args.ray_address)
        storage.check_writable(config.out)
    except (ValueError, RuntimeStartError) as exc:
        cli.fail(str(exc))
    from rnnbench.plan import plan_lines

    print(plan_lines(config, os.cpu_count() or 1), file=sys.stderr, flush=True)
    for problem, search in config.searches().items():
        print(f"horizon search: {problem} {search.text()}: the plan above is its first round; each later round "
              f"runs every unfinished (problem, arch) at one more length, at most {search.max_rounds()} rounds",
              file=sys.stderr, flush=True)
    api = None
    # as Prefect reads it: the environment, else the active profile (`prefect config set`, `prefect cloud login`)
    if not prefect_api.configured():
        try:
            api = LocalApi(ui=args.ui).start()
        except RuntimeStartError as exc:
            cli.fail(str(exc))
        lasts = ("with Prefect's UI, kept up after the sweep until Ctrl-C" if args.ui else
                 "stops when this run ends; --ui keeps it and its UI up")
        print(f"local Prefect API starting on {api.url} ({lasts}; set PREFECT_API_URL, in the environment or "
              "with `prefect config set`, to use another)",
              file=sys.stderr, flush=True)
    return Preflight(args, config, api)


def dry_run(config: CompareConfig, as_json: bool) -> None:
    """Print the plan (jobs, CPU-hours, dataset bytes, epochs per cell) on stdout and exit 0: nothing started or
    written. Whether this machine could hold the sweep (check_fits) is part of it, not a reason to stop."""
    import json

    from rnnbench.plan import plan_lines, plan_numbers

    cpus = os.cpu_count() or 1
    numbers = plan_numbers(config, cpus)
    try:
        check_fits(config)
        numbers["fits_here"], numbers["fits_message"] = True, None
    except ValueError as exc:
        numbers["fits_here"], numbers["fits_message"] = False, str(exc)
    if as_json:
        print(json.dumps(numbers, indent=1))
    else:
        print(plan_lines(config, cpus, numbers))
        if numbers["fits_message"]:
            print(f"does not fit here: {numbers['fits_message']}")
    sys.stdout.flush()
    raise SystemExit(0)


ENVIRONMENT = """environment:
  PREFECT_API_URL            use this Prefect API, from the environment or the active Prefect profile
                             (default: a private one on 127.0.0.1, stopped at the end)
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
    add("--horizon", nargs="?", const="", metavar="START,CAP,RESOLUTION", help="a memory-horizon search per "
        "(problem, arch) instead of a grid of lengths: T doubles from START while the cell is solved (up to CAP), "
        "then is bisected between the last solved and the first unsolved T until they are at most RESOLUTION "
        "apart; each round runs from the last one's verdicts, and horizons.parquet holds each bracket. Alone "
        "(--horizon): the preset's search where it has one, else from each problem's shortest length to its "
        "longest (8x the shortest where it has one), resolution a quarter of the start")
    add("--subset", help="i/n: run only every n-th job of the sweep from the i-th, e.g. 1/50 of the full preset; "
        "the plan printed first says how long the whole would take")
    add("--tier", choices=("cpu", "gpu"), help="reproduction cards (presets reproduce and full): cpu (default) runs "
        "the cards that fit a CPU; gpu runs every card, the costly ones too (IndRNN adding at T >= 1000, ...)")
    add("--batch-size", type=int, help="sequences per update (default 64)")
    add("--n-test", type=int, help="stored test sequences per (problem, seq_len, seed) (default 1000)")
    add("--n-val", type=int, help="stored validation sequences per (problem, seq_len, seed): learning curves, "
        "checkpoint choice and early stop read only these (default 512)")
    add("--n-train", type=int, help="distinct stored training sequences per (problem, seq_len, seed), read in "
        "shuffled epochs (default: one per sequence the updates read, up to a 256 MB file)")
    add("--no-early-stop", dest="early_stop", action="store_false", default=None, help="train every run for its "
        "whole budget (default: stop once validation beats the solved rule by a margin of its standard errors "
        "at two evaluations in a row)")
    add("--out", default="results", help="output root (path or pyarrow filesystem URI, e.g. s3://BUCKET/run); datasets "
        "go to OUT/data")
    add("--data-root", help="dataset root shared by all nodes (default OUT/data)")
    add("--shared-path", action="store_true", default=None, help="--out and --data-root are local paths that "
        "every Ray node mounts (NFS, a cluster filesystem): on a cluster of more than one node a local path is "
        "refused without it (an object store URI such as s3://BUCKET/run needs nothing)")
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
    add("--dry-run", action="store_true", help="print the plan and exit 0: jobs, CPU-hours by the cost model, dataset "
        "files and bytes on disk, epochs per (problem, T) cell; starts no Ray or Prefect and writes nothing")
    add("--json", action="store_true", help="with --dry-run: the plan as one JSON document on stdout (every cell's "
        "epochs and training-file bytes), for scripts")
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
                                   ("steps", args.steps), ("min_len", args.min_len),
                                   ("eval_lens", args.eval_lens)) if v is not None}
    grids = [g.model_copy(update=overrides) for g in grids]
    if args.horizon is not None:
        grids = [_searched(g, args.horizon) for g in grids]
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
            out=args.out, data_root=args.data_root, shared_path=args.shared_path, ray_address=args.ray_address,
            cpus_per_job=args.cpus_per_job, gpus_per_job=args.gpus_per_job, resources_per_job=args.resources_per_job,
            tier=args.tier,
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
    if getattr(args, "dry_run", False):
        return config  # the plan says whether it fits here (dry_run), rather than refusing it
    check_fits(config)
    if config.searches():  # a search's later rounds too: its whole doubling ladder, up to the cap, as if a grid
        check_fits(config.model_copy(update={"grids": [
            g.model_copy(update={"horizon": None, "seq_lens": g.horizon.ladder()}) if g.horizon else g
            for g in config.grids]}))
    return config


def _searched(grid: ProblemGrid, text: str) -> ProblemGrid:
    """The grid with a horizon search (--horizon [START,CAP,RESOLUTION]); ValueError naming a bad value."""
    from rnnbench.horizon import HorizonSearch

    if text:
        try:
            start, cap, resolution = (int(v) for v in text.split(","))
        except ValueError:
            raise ValueError(f"--horizon {text!r}: expected START,CAP,RESOLUTION, three integers, e.g. "
                             "25,800,25") from None
    elif grid.horizon is not None:
        return grid
    else:
        start = min(grid.seq_lens)
        cap = max(grid.seq_lens) if len(grid.seq_lens) > 1 else 8 * start
        resolution = max(1, start // 4)
    try:
        search = HorizonSearch(start=start, cap=cap, resolution=resolution)
        return ProblemGrid(**{**grid.model_dump(), "horizon": search.model_dump()})
    except PydanticValidationError as exc:
        raise ValueError(f"--horizon: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None


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
        if not err["loc"]:  # a check of the whole config: its message names the values (the input is all of it)
            parts.append(err["msg"].removeprefix("Value error, "))
            continue
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}={err.get('input')!r}: {err['msg']}")
    return "; ".join(parts)
