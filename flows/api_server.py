"""The local Prefect API: Prefect's own server app, served by uvicorn in a subprocess on 127.0.0.1.

Public interfaces only: the app is `prefect.server.api.server.create_app`, which Prefect's API reference
documents (docs.prefect.io, python API reference, `prefect.server.api.server`) and `prefect server start` itself
serves with `uvicorn.run`; it is built with its documented arguments `ephemeral=True` (no UI; only the services a
temporary API needs, as Prefect's own temporary server runs it) and `final=True`, instead of the private
PREFECT__SERVER_EPHEMERAL / PREFECT__SERVER_FINAL variables that Prefect's subprocess server sets. Settings are
public `PREFECT_*` settings (prefect.settings). Not `prefect server start` itself: it has no ephemeral mode (every
service, the UI unless turned off) and would import Prefect's CLI into the server process as well.

It is started without importing Prefect's server code into this process: those imports take seconds of CPU,
and the subprocess pays them anyway, in parallel with whatever this process does meanwhile (its own imports,
starting Ray). So this module imports nothing heavy and can run before Prefect, Ray or torch are imported.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

# Set before Prefect or Ray start: there is no internet, and telemetry only produces errors.
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
    # workers send their logs every 0.5 s instead of 2 s, so little is in flight when a task ends
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.5",
}
# Public settings for the server process: minus the automation services (triggers and their actions), which the
# ephemeral app would otherwise run: nothing defines automations for an API that lives for one sweep, and they
# cost ~1.5 CPU-s here (the actions service builds a second copy of the API app)
SERVER_ENV = {"PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false"}
# a first start on a new PREFECT_HOME creates the database (about 20 s here); a slow shared machine needs more
START_TIMEOUT_S = 120.0


# Prefect's server app under `uvicorn.run` (uvicorn's public API, as `prefect server start` runs it), in a process
# made to die with the process that starts it, even on kill -9 (Linux's parent-death signal, as Ray's own processes
# do): an orphaned API would hold its port and the SQLite database. Linux sends it when the starting *thread* ends,
# so start() belongs in a thread that lives as long as the API is needed.
# argv: PARENT_PID --host HOST --port PORT --log-level LEVEL (uvicorn's flag names, so `ps` reads as before) and
# --ui 0|1: 1 serves Prefect's UI too, as `prefect server start` does (create_app without ephemeral: UI and every
# background service), 0 the API alone with the services a temporary API needs.
# The warm-up thread: FastAPI builds its routes' request models on the first request that reaches the API's router
# (~1 CPU-s here; /health does not reach it), and the client's first call waited for that; asked by the server
# itself as soon as it answers, it happens while the caller is still starting Ray instead (measured:
# benchmarks/startup_cost.py, the smoke sweep's "flow begins" phase)
_BOOT = """\
import ctypes, os, signal, sys, threading, time, urllib.error, urllib.request
if sys.platform.startswith("linux"):
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != int(sys.argv[1]):
        sys.exit("the process that started this Prefect API has ended")
options = dict(zip(sys.argv[2::2], sys.argv[3::2]))
def warm_up(url):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=60):
                return
        except urllib.error.HTTPError:
            return  # answered: the router has built its routes
        except OSError:
            time.sleep(0.05)  # not listening yet
threading.Thread(target=warm_up, args=(f"http://{options['--host']}:{options['--port']}/api/admin/version",),
                 daemon=True).start()
import uvicorn
from prefect.server.api.server import create_app
ui = options.get("--ui") == "1"
uvicorn.run(create_app(ephemeral=not ui, final=True), host=options["--host"], port=int(options["--port"]),
            log_level=options["--log-level"], lifespan="on")
"""


class RuntimeStartError(RuntimeError):
    """Prefect or Ray could not be started or reached; the message says which and where."""


def quiet_environment() -> None:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalApi:
    """One Prefect API server process on a free loopback port. `start()` returns at once (the URL is known
    before the server answers, so it can be handed to processes started meanwhile); `wait_ready()` blocks
    until it answers; `stop()` ends it."""

    def __init__(self, ui: bool = False) -> None:
        self.port = free_loopback_port()
        self.ui = ui  # serve Prefect's UI as well (python -m flows.compare --ui)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalApi:
        quiet_environment()
        # the server reads its settings (PREFECT_HOME, database URL, ...) from the same environment and profile
        # as this process; its output goes to this terminal, where an error at start-up is then readable
        command = [sys.executable, "-c", _BOOT, str(os.getpid()), "--host", "127.0.0.1", "--port", str(self.port),
                   "--log-level", "error", "--ui", "1" if self.ui else "0"]
        try:
            # the UI asks its server where the API is (/ui-settings): this one, not Prefect's default port 4200
            ui_env = {"PREFECT_SERVER_UI_API_URL": self.url} if self.ui else {}
            self.process = subprocess.Popen(command, env={**os.environ, **SERVER_ENV, **ui_env},
                                            stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise RuntimeStartError(f"could not start the local Prefect API: {exc}") from exc
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Return once GET /health answers 200; raise RuntimeStartError (and stop the process) otherwise."""
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise RuntimeStartError(f"the local Prefect API on {self.url} exited with code {code} while "
                                        "starting (its error is printed above)")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass  # not listening yet
            time.sleep(0.05)
        self.stop()
        raise RuntimeStartError(f"the local Prefect API on {self.url} did not answer within {timeout:.0f} s")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (uvicorn finishes its requests and shuts the app down), SIGKILL after `timeout` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
