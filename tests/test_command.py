"""The `rnnbench` console script (flows/command.py): each command runs its `python -m flows.<command>` entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flows.command import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
# where pip puts a console script: beside the interpreter of the environment it installs into
SCRIPT = Path(sys.executable).with_name("rnnbench")


def _script() -> Path:
    assert SCRIPT.is_file(), f"no console script at {SCRIPT}: install the package (pip install -e .) into this venv"
    return SCRIPT


def _run(args: list[str], cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env={**os.environ, "COLUMNS": "100", **env},
                          capture_output=True, text=True, timeout=120)


def test_help_lists_every_command_on_one_line(capsys):
    for flag in ("--help", "-h"):
        assert main([flag]) == 0
        out, err = capsys.readouterr()
        assert err == "" and out.startswith("usage: rnnbench <command>")
        for name, command in COMMANDS.items():
            lines = [line for line in out.splitlines() if line.split()[:1] == [name]]
            assert len(lines) == 1, out
            assert lines[0].split(None, 1)[1] == command.summary
    assert set(COMMANDS) == {"compare", "datasets", "validate", "inspect", "report", "history"}


def test_no_command_prints_the_help_and_fails(capsys):
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "commands:" in err and err.rstrip().endswith("rnnbench: error: a command is required")


@pytest.mark.parametrize("name,kind,hint", [("comapre", "command", "; did you mean 'compare'?"),
                                            ("train", "command", ""), ("--version", "option", "")])
def test_an_unknown_command_is_named_with_the_allowed_ones(capsys, name, kind, hint):
    assert main([name, "--help"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["usage: rnnbench <command> [arguments ...]",
                                f"rnnbench: error: unknown {kind} {name!r} (the command comes first: "
                                f"compare, datasets, validate, inspect, report, history){hint}"]


def test_help_imports_no_command_module():
    """`rnnbench --help` imports flows/command.py only: no command module, no torch, Prefect, Ray or pydantic (it
    takes the interpreter's own start-up time)."""
    probe = "import sys; from flows.command import main; main(['--help']); print(*sorted(sys.modules))"
    proc = _run([sys.executable, "-c", probe])
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.splitlines()[-1].split())
    assert {m for m in loaded if m.split(".")[0] == "flows"} == {"flows", "flows.command"}
    assert not loaded & {"torch", "prefect", "ray", "pydantic", "numpy", "difflib", "argparse"}


def test_a_command_is_one_registry_entry(tmp_path):
    """A new entry is listed by --help and runs its module as `python -m` would: as __main__, argv[0] its file, the
    arguments untouched, the current directory first on sys.path (so this module, beside the user, imports)."""
    (tmp_path / "echo_args.py").write_text(textwrap.dedent("""
        import json, sys
        if __name__ == "__main__":
            print(json.dumps({"argv": sys.argv, "file": __file__}))
            sys.exit(3)
    """))
    probe = textwrap.dedent("""
        import sys
        from flows import command
        command.COMMANDS["echo"] = command.Command("echo_args", "print the arguments")
        assert "  echo      print the arguments" in command.help_text().splitlines()
        sys.exit(command.main(sys.argv[1:]))
    """)
    proc = _run([sys.executable, "-c", probe, "echo", "--flag", "a b", "-h"], cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    report = json.loads(proc.stdout)
    assert report["argv"] == [str(tmp_path / "echo_args.py"), "--flag", "a b", "-h"]
    assert report["file"] == str(tmp_path / "echo_args.py")
    direct = _run([sys.executable, "-m", "echo_args", "--flag", "a b", "-h"], cwd=tmp_path)
    assert (direct.returncode, json.loads(direct.stdout)) == (3, report)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_installed_script_shows_each_commands_own_help(name):
    env = {**os.environ, "COLUMNS": "100"}
    # both at once: most of each is importing the command's module
    commands = ([_script(), name, "--help"], [sys.executable, "-m", COMMANDS[name].module, "--help"])
    script, direct = (subprocess.Popen([str(a) for a in args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True) for args in commands)
    (out, err), (direct_out, direct_err) = script.communicate(timeout=120), direct.communicate(timeout=120)
    assert script.returncode == direct.returncode == 0 and err == direct_err == "", err
    assert out == direct_out and out.startswith("usage: ") and "-h, --help" in out


def test_the_installed_script_runs_a_command_as_python_m_does(tmp_path):
    """Output, errors and exit status are the entry point's own, from any directory: a run, and a refused flag whose
    message lists an arch from a plugin beside the user (the current directory is on sys.path, as with -m)."""
    (tmp_path / "my_plugin.py").write_text(textwrap.dedent("""
        import dataclasses
        from rnnbench.archs import ARCHS as BUILTIN
        ARCHS = {"my_gru": dataclasses.replace(BUILTIN["gru"], name="my_gru")}
    """))
    runs = {}
    for args in (["inspect", "--arch", "lstm", "--hidden-size", "7", "--json"], ["compare", "--archs", "my_gru,nope"]):
        proc = _run([_script(), *args], cwd=tmp_path, RNNBENCH_PLUGINS="my_plugin")
        direct = _run([sys.executable, "-m", COMMANDS[args[0]].module, *args[1:]], cwd=tmp_path,
                      RNNBENCH_PLUGINS="my_plugin")
        assert (proc.returncode, proc.stdout, proc.stderr) == (direct.returncode, direct.stdout, direct.stderr)
        runs[args[0]] = proc
    assert runs["inspect"].returncode == 0, runs["inspect"].stderr
    report = json.loads(runs["inspect"].stdout)
    assert report["arch"] == "lstm" and report["options"]["hidden_size"] == 7
    refused = runs["compare"]
    assert refused.returncode == 2 and "unknown arch 'nope'" in refused.stderr and "my_gru" in refused.stderr
    unknown = _run([_script(), "comapre"], cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown command 'comapre'" in unknown.stderr and unknown.stdout == ""
