"""Shared pytest fixtures.

Environment: telemetry is switched off at import, before Prefect or Ray can be imported by a test module
(there is no internet here; telemetry would only produce errors and delays).

Fixtures (a test that asks for `prefect_api` is marked slow: see "the fast tier" below):
- `prefect_api` (session): ONE temporary Prefect API for the whole test session. Tests that run flows ask
  for it; tests that must prove "no API is needed" (bad CLI input) simply do not.

Add further runtime fixtures (e.g. a session-scoped Ray cluster) in their own section below, following the
same pattern: start once per session, export what subprocesses and workers need through os.environ, and
restore the previous environment afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

for _key, _value in {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray reads its loopback-only switch once, when first imported (flows/ray_start.py, LOOPBACK_MODE_ENV), and test
    # modules import Ray at collection (through prefect_ray): set here, before any of them, so a local Ray that
    # a test starts in this process binds 127.0.0.1 as the CLI's does. Subprocesses that start a real multi-node
    # cluster (tests/test_cluster.py) drop every RAY_ variable.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    # likewise read at import: the token authentication the runtime gives its private Ray (it sets the token)
    "RAY_AUTH_MODE": "token",
}.items():
    os.environ.setdefault(_key, _value)


# ---- environment helpers ---------------------------------------------------------------------------------


class _EnvPatch:
    """Set os.environ keys and put back exactly what was there before (absent keys are removed again)."""

    def __init__(self, **updates: str) -> None:
        self.updates = updates
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> _EnvPatch:
        for key, value in self.updates.items():
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value
        return self

    def __exit__(self, *exc: object) -> None:
        for key, old in self.saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


# ---- Prefect ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """The URL of one Prefect API (temporary SQLite database) shared by every test of the session.

    `prefect_test_harness` starts a SubprocessASGIServer and sets the PREFECT_API_URL *setting* for this
    process via `temporary_settings`; it yields nothing, so the URL is read back from the setting. It is also
    exported as the PREFECT_API_URL *environment variable*, so that `flows.prefect_api.prefect_api()` reuses it
    instead of starting its own server, and subprocesses and Ray workers started by tests inherit it.
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_API_URL.value()
        assert url, "prefect_test_harness did not set PREFECT_API_URL"
        with _EnvPatch(PREFECT_API_URL=url):
            yield url


# ---- the fast tier ---------------------------------------------------------------------------------------

# `pytest -m "not slow"` is the fast tier: slow is anything that starts Ray, a Prefect API, a browser, a compiler
# or a sweep. Tests that ask for a fixture starting one of them, or carry a marker that implies one, are slow
# whatever their module says, so a new test cannot slip a server into the fast tier through a shared fixture.
SLOW_FIXTURES = frozenset({"prefect_api"})
SLOW_MARKERS = ("e2e", "cluster", "deployment")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(item.fixturenames) or any(item.get_closest_marker(m) for m in SLOW_MARKERS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def no_compiler_outside_the_slow_tier(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test not marked slow runs with the CPU fast paths off (RNNBENCH_FASTPATH=0, read at every call), so
    that nothing it does can start the C++ build on a machine where the extension is not cached yet (15-35 s).
    What the fast paths compute is tested against nn.* and the torch loops by tests/test_fastpath.py and
    tests/test_mix.py, which are slow; a test that sets RNNBENCH_FASTPATH itself keeps its own value."""
    if request.node.get_closest_marker("slow") is not None:
        yield
        return
    with _EnvPatch(RNNBENCH_FASTPATH="0"):
        yield
