"""Show one core's parameters, closed-form count and I/O shapes: `python -m flows.inspect --arch lstm --json`."""

from __future__ import annotations

import argparse
import json
import sys

from flows import cli
from rnnbench import inspection
from rnnbench.archs import ARCHS, get_arch
from rnnbench.archs.classic import CELLS

# Pure inspection on the CPU: no Prefect, no Ray, so it answers in seconds. Run it as `python -m flows.inspect`:
# as a script (python flows/inspect.py) flows/ would lead sys.path and this file would shadow the stdlib `inspect`.


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flows.inspect", description=__doc__)
    # not `choices=`: argparse's message would not go through cli.fail's one-line format
    parser.add_argument("--arch", required=True, help=f"architecture: {', '.join(ARCHS)}")
    parser.add_argument("--input-size", type=int, default=10, help="input features I (default 10, as the notebook)")
    parser.add_argument("--hidden-size", type=int, default=20, help="hidden size H (default 20, as the notebook)")
    parser.add_argument("--num-layers", type=int, default=1, help="stacked layers L (default 1)")
    parser.add_argument("--bidirectional", action="store_true", help="two directions (classic archs only)")
    parser.add_argument("--proj-size", type=int, default=0, help="LSTM projection size P, < hidden size (0 = none)")
    parser.add_argument("--no-bias", dest="bias", action="store_false", help="no bias terms")
    parser.add_argument("--dropout", type=float, default=0.0, help="between layers; needs --num-layers > 1")
    parser.add_argument("--state-size", type=int, default=None, help="LRU complex state size N (default H)")
    order = parser.add_mutually_exclusive_group()
    order.add_argument("--batch-first", dest="batch_first", action="store_true", default=True,
                       help="input (batch, seq, feature) (default)")
    order.add_argument("--seq-first", dest="batch_first", action="store_false",
                       help="input (seq, batch, feature) (classic archs only)")
    parser.add_argument("--batch-size", type=int, default=5, help="sample batch size B (default 5)")
    parser.add_argument("--seq-len", type=int, default=8, help="sample sequence length T (default 8)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser.parse_args(argv)


def inspect_arch(args: argparse.Namespace) -> dict:
    """Everything the CLI prints, as one JSON-ready dict; raises ValueError naming a bad option."""
    options = dict(num_layers=args.num_layers, bidirectional=args.bidirectional, proj_size=args.proj_size,
                   bias=args.bias, dropout=args.dropout)
    extra = {} if args.state_size is None else {"state_size": args.state_size}
    get_arch(args.arch)
    table = inspection.parameter_table(args.arch, args.input_size, args.hidden_size, **options, **extra)
    shapes = inspection.io_shapes(args.arch, args.input_size, args.hidden_size, **options, **extra,
                                  batch_size=args.batch_size, seq_len=args.seq_len, batch_first=args.batch_first)
    return {
        "arch": args.arch,
        "options": {"input_size": args.input_size, "hidden_size": args.hidden_size, **options, **extra,
                    "batch_first": args.batch_first, "batch_size": args.batch_size, "seq_len": args.seq_len},
        "params": inspection.count(table),
        "params_formula": inspection.params_formula(args.arch, args.input_size, args.hidden_size, **options, **extra),
        "formula": inspection.formula_text(args.arch, args.input_size, args.hidden_size, **options, **extra),
        "parameters": [{"name": row["name"], "shape": list(row["shape"])} for row in table],
        "shapes": {key: list(shape) for key, shape in shapes.items()},
    }


def _shape(shape: list[int]) -> str:
    return str(tuple(shape))


def render(report: dict) -> str:
    opts = report["options"]
    lines = [f"{report['arch']}: " + " ".join(f"{k}={v}" for k, v in opts.items()
                                               if k not in ("batch_first", "batch_size", "seq_len")),
             "parameters (core only, no readout):"]
    width = max(len(row["name"]) for row in report["parameters"])
    for row in report["parameters"]:
        size = 1
        for dim in row["shape"]:
            size *= dim
        lines.append(f"  {row['name']:<{width}}  {_shape(row['shape']):<12} {size:>8}")
    verdict = "matches" if report["params"] == report["params_formula"] else "DOES NOT MATCH"
    lines += [f"total parameters: {report['params']}",
              f"formula: {report['params_formula']} ({verdict} the count)",
              f"  {report['formula']}",
              f"shapes ({'batch-first' if opts['batch_first'] else 'seq-first'}, "
              f"batch {opts['batch_size']}, seq_len {opts['seq_len']}):"]
    if report["arch"] not in CELLS:
        lines.append("  (h_n is the core's `last`: the top layer's output at the last step)")
    lines += [f"  {key:<6} {_shape(shape)}" for key, shape in report["shapes"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = inspect_arch(args)
    except ValueError as exc:
        cli.fail(str(exc))
    print(json.dumps(report) if args.json else render(report))
    # a mismatch means a formula in rnnbench/inspection.py is out of date with its module
    return 0 if report["params"] == report["params_formula"] else 1


if __name__ == "__main__":
    sys.exit(main())
