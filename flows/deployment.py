"""The flow deploy/prefect.yaml deploys (`rnnbench`): the comparison under a time limit, then its runs' history."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger

from flows import history as history_flow
from flows.compare import compare

# a run's overrides that a deployment does not take, and where their setting lives instead
NOT_ACCEPTED = {"ray_address": "the Ray a deployment run joins comes from RAY_ADDRESS in the deployment's "
                               "job_variables.env (deploy/prefect.yaml), which its task runner reads"}


def check_parameters(overrides: dict, timeout_hours: float) -> None:
    """Refuse, before any work, what a deployment run would otherwise ignore or never end with."""
    refused = sorted(set(overrides) & set(NOT_ACCEPTED))
    if refused:
        raise ValueError("; ".join(f"overrides.{name} is not accepted by a deployment run: {NOT_ACCEPTED[name]}"
                                   for name in refused))
    if not timeout_hours > 0:
        raise ValueError(f"timeout_hours={timeout_hours!r}: must be a number of hours > 0 (a run must end, so that "
                         "a stuck one cannot hold the schedule)")


def dated(overrides: dict, when: datetime) -> dict:
    """'{date}' in out and data_root expanded to `when`'s UTC day: the run's own scheduled day (the comparison,
    run as a subflow, would read its own start instead: a late run would write to the next day's folder)."""
    day = when.astimezone(UTC).strftime("%Y-%m-%d")
    return {k: v.replace("{date}", day) if k in ("out", "data_root") and isinstance(v, str) else v
            for k, v in overrides.items()}


def history_root(out: str | None) -> str | None:
    """The folder whose runs make a history: the part of a dated `out` before '/{date}' (None for an undated one,
    such as the smoke deployment's single output)."""
    if not out or not out.endswith("/{date}"):
        return None
    return out[: -len("/{date}")]


def run_name() -> str:
    from prefect.runtime import flow_run

    parameters = flow_run.parameters or {}
    when = (flow_run.scheduled_start_time or datetime.now(UTC)).astimezone(UTC)
    return f"{parameters.get('preset') or 'quick'}-{when:%Y-%m-%d-%H%M}"


@flow(name="rnnbench", flow_run_name=run_name)
def deployed(preset: str = "quick", overrides: dict | None = None, timeout_hours: float = 2.0,
             history: bool = True) -> dict:
    """Run `compare` (a subflow) on `preset` with `overrides`, ended as TimedOut after `timeout_hours` (with the
    deployment's concurrency limit, a stuck run then frees the schedule); then, for a dated `out`
    (`.../{date}`), write history.parquet and history.html over every run beside it (flows.history), whether the
    comparison completed or not. Returns the comparison's result; raises where it failed."""
    from prefect.runtime import flow_run

    logger = get_run_logger()
    overrides = dict(overrides or {})
    check_parameters(overrides, timeout_hours)
    when = flow_run.scheduled_start_time or datetime.now(UTC)
    state = compare.with_options(timeout_seconds=timeout_hours * 3600)(
        preset=preset, overrides=dated(overrides, when), return_state=True)
    root = history_root(overrides.get("out"))
    if history and root is not None:
        try:
            for name, path in history_flow.build(root).items():
                logger.info("%s: %s", name, path)
        except ValueError as exc:  # no finished run yet: the history waits for one
            logger.warning("no history written: %s", exc)
    return state.result()
