"""The compare flow's task runner: prefect-ray's, starting or joining Ray as the CLI does when nothing has yet."""

from __future__ import annotations

import os
from contextlib import ExitStack

from prefect_ray import RayTaskRunner

from flows import ray_start


class RnnbenchRayTaskRunner(RayTaskRunner):
    """RayTaskRunner that, when nothing has started Ray yet (a deployment run), starts or joins Ray exactly as
    `ray_start.ray_cluster()` does: RAY_ADDRESS unset or 'local' -> a private loopback Ray; anything else (auto,
    HOST:PORT, ray://...) -> join it, shipping the code and PREFECT_API_URL in the runtime_env. It then owns
    that Ray: its session is current while the flow runs, and it shuts Ray down at the end of the flow run.

    When Ray is already initialised (the CLI's `ray_cluster()`), it is reused and left running."""

    def __enter__(self):
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        kwargs = ray_start.ray_init_kwargs(address)
        local = kwargs["address"] == "local"
        owned = ExitStack()
        if local:  # before anything below imports Ray: see ray_start.local_ray_environment
            owned.enter_context(ray_start.local_ray_environment())
        import ray

        if ray.is_initialized():
            owned.close()
            return super().__enter__()
        # the decorator's own init_kwargs (e.g. namespace) win; options that only make sense for a new local
        # cluster are dropped when joining one (ray.init refuses them there)
        extra = {k: v for k, v in self.init_kwargs.items() if local or k not in ray_start.LOCAL_ONLY_INIT_KWARGS}
        try:
            ray_session = ray_start.init_ray({**kwargs, **extra})
        except BaseException:
            owned.close()
            raise
        try:
            super().__enter__()  # sees Ray initialised: reuses it, and leaves its shutdown to us
        except BaseException:
            ray.shutdown()
            owned.close()
            raise
        # unwound last in, first out: the session stops being current, Ray stops (after the workers' logs' grace,
        # or already when the flow released it), the environment is put back
        owned.callback(ray_session.stop)
        owned.enter_context(ray_start.current(ray_session))
        self.started_ray = owned
        return self

    def __exit__(self, *exc_info):
        owned, self.started_ray = getattr(self, "started_ray", None), None
        try:
            return super().__exit__(*exc_info)
        finally:
            if owned is not None:
                owned.close()
