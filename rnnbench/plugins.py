"""Plugins: modules named in RNNBENCH_PLUGINS add problems and architectures to the registries.

A plugin is any importable module that defines a dict `PROBLEMS` (name -> Problem) and/or `ARCHS`
(name -> Arch). The variable is read by every process that looks a name up (the driver and each Ray worker,
which inherit the driver's environment), so a plugin's names work end to end without editing the package,
as pytest's PYTEST_PLUGINS does for pytest. Plugins may add names, never replace a built-in one. What a plugin
adds runs with --problems / --archs and joins the presets built from the registries (`full`; quick's archs), as a
built-in one does (tests/plugin_example.py adds a problem and an arch).
"""

from __future__ import annotations

import importlib
import os

ENV = "RNNBENCH_PLUGINS"


def modules() -> list[str]:
    return [name.strip() for name in os.environ.get(ENV, "").split(",") if name.strip()]


# attribute name -> registry, for every registry loaded in this process so far
_registries: dict[str, dict] = {}


def extend(registry: dict, attribute: str) -> None:
    """Add every plugin's `attribute` dict to `registry`; a clash with an existing name is an error.

    Applies every plugin to every registry seen so far, after the plugin module is fully imported: a plugin
    that imports one registry while the other is loading is read again when its import completes."""
    _registries[attribute] = registry
    for module_name in modules():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ImportError(f"{ENV} names {module_name!r}, which cannot be imported: {exc}") from exc
        for attr, target in _registries.items():
            for name, entry in getattr(module, attr, {}).items():
                if name in target and target[name] is not entry:
                    raise ValueError(f"plugin {module_name!r} defines {attr} entry {name!r}, which already exists")
                target[name] = entry
