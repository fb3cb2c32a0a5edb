"""`rnnbench <command> ...`, the console script: each command runs one `python -m flows.<command>` entry point."""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Sequence
from typing import NamedTuple

PROG = "rnnbench"


class Command(NamedTuple):
    module: str  # run as `python -m <module>` runs it
    summary: str  # its one line in `rnnbench --help`


# A new command (report, history) is one entry here. Only the chosen command's module is imported, when it runs:
# `rnnbench --help` imports nothing but this file.
COMMANDS: dict[str, Command] = {
    "compare": Command("flows.compare", "train every arch on every problem (Ray, Prefect); write metrics and a report"),
    "datasets": Command("flows.datasets", "generate and validate the dataset files of a grid"),
    "validate": Command("flows.validate", "validate existing dataset files (or every .parquet below a directory)"),
    "inspect": Command("flows.inspect", "show one arch's parameters, their closed-form count and its I/O shapes"),
    "report": Command("flows.report", "rebuild summary, comparisons and the report of an output from its metrics"),
    "history": Command("flows.history", "verdicts, their changes and time per job across the runs under a root"),
}


def usage() -> str:
    return f"usage: {PROG} <command> [arguments ...]"


def help_text() -> str:
    width = max(map(len, COMMANDS))
    lines = [usage(), "", "Which recurrent architecture remembers what, at which sequence length, at what cost.", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()]
    lines += ["", f"`{PROG} <command> --help` shows a command's own options. `{PROG} <command> ARGS` runs exactly",
              "`python -m flows.<command> ARGS`."]
    return "\n".join(lines)


def unknown(name: str) -> str:
    import difflib  # only on this error path: start-up stays at the interpreter's own

    what = "option" if name.startswith("-") else "command"
    close = difflib.get_close_matches(name, COMMANDS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{PROG}: error: unknown {what} {name!r} (the command comes first: {', '.join(COMMANDS)}){hint}"


def run(command: Command, argv: Sequence[str]) -> int:
    """Run `command`'s module as `python -m` does: as __main__, its file as argv[0], then `argv`. Returns 0 when
    the module ends without exiting; its own sys.exit (or os._exit) otherwise ends the process, with its status."""
    # `python -m` puts the current directory first on sys.path, so a plugin module (RNNBENCH_PLUGINS) beside the
    # user's files imports the same way here (unless Python's safe-path mode says not to, as it would there)
    cwd = os.getcwd()
    if not sys.flags.safe_path and sys.path[:1] != [cwd]:
        sys.path.insert(0, cwd)
    sys.argv = [command.module, *argv]  # run_module sets argv[0] to the module's file, as `python -m` does
    runpy.run_module(command.module, run_name="__main__", alter_sys=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(help_text())
        return 0
    if not args:
        print(help_text(), file=sys.stderr)
        print(f"{PROG}: error: a command is required", file=sys.stderr)
        return 2
    command = COMMANDS.get(args[0])
    if command is None:
        print(usage(), file=sys.stderr)
        print(unknown(args[0]), file=sys.stderr)
        return 2
    return run(command, args[1:])


if __name__ == "__main__":
    sys.exit(main())
