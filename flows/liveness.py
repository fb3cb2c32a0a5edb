"""What died under a running sweep: Ray (its raylet or its GCS) or the Prefect API, told apart from a job's failure."""

from __future__ import annotations

import time

RAYLET_DIED = "Ray (the raylet of this machine's node)"
# a GCS that does not answer for this long is taken for dead (a fault-tolerant one restarts within seconds)
GCS_SILENCE_S = 30.0


class RayWatch:
    """Whether the Ray this process uses still serves. One per flow run: it remembers since when the GCS has not
    answered, so that a GCS restarting within GCS_SILENCE_S is not taken for dead."""

    def __init__(self, silence_s: float = GCS_SILENCE_S) -> None:
        self.silence_s = silence_s
        self.silent_since: float | None = None

    def death(self, exc: BaseException | None = None) -> str | None:
        """What of Ray has died, or None while it serves: read off `exc` (an error a task's result raised) when
        it says so, else probed: this process's node is marked dead (a raylet never comes back), or the GCS has
        not answered for `silence_s`. Cheap enough to call every few seconds while a sweep waits."""
        import ray
        import ray.exceptions as rex

        if isinstance(exc, rex.LocalRayletDiedError):
            return RAYLET_DIED
        if exc is not None and not isinstance(exc, rex.RaySystemError):
            return None
        if not ray.is_initialized():
            return "Ray"
        try:
            nodes = ray.nodes()
        except Exception:  # noqa: BLE001 - a GCS that does not answer
            now = time.monotonic()
            self.silent_since = self.silent_since or now
            return "Ray (its GCS)" if exc is not None or now - self.silent_since >= self.silence_s else None
        self.silent_since = None
        try:
            node_id = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - e.g. a Ray client driver, which is no node's
            node_id = None
        if node_id and any(n.get("NodeID") == node_id and not n.get("Alive") for n in nodes):
            return RAYLET_DIED
        return None  # Ray answers: a RaySystemError of one task is that task's failure


def api_death(exc: BaseException, api_url: str | None = None) -> str | None:
    """'the Prefect API at URL' when `exc` is (or was caused by) a failed connection to the Prefect API and the
    API no longer answers its health check; None otherwise."""
    import httpx

    from flows.prefect_api import configured

    url = api_url or configured()
    seen, chain = set(), exc
    while chain is not None and id(chain) not in seen:
        seen.add(id(chain))
        if isinstance(chain, httpx.TransportError | ConnectionError):
            break
        chain = chain.__cause__ or chain.__context__
    else:
        return None
    if url and _answers(f"{url.rstrip('/')}/health"):
        return None
    return f"the Prefect API at {url}" if url else "the Prefect API"


def _answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
