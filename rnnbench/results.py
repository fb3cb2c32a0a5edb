"""Durable per-job results: one JSON file per finished job under OUT/runs, written atomically."""

from __future__ import annotations

import json

from rnnbench import storage
from rnnbench.config import RunSpec
from rnnbench.rows import RunResult


def result_path(out: str, run_id: str) -> str:
    return storage.join(out, "runs", f"{run_id}.json")


def save(out: str, spec: RunSpec, result: RunResult) -> str:
    payload = {"spec": spec.model_dump(mode="json"), "row": result.row, "curve": result.curve,
               "eval_rows": result.eval_rows}
    return storage.write_bytes(result_path(out, spec.run_id), json.dumps(payload, sort_keys=True).encode())


def load(out: str, spec: RunSpec, device_type: str | None = None) -> RunResult | None:
    """The stored result of exactly this spec, or None (missing, unreadable, or for another spec).

    A result's key is its spec and the type of device it trained on: with `device_type` ("cpu", "cuda") a result
    from another device is not this one's (its train_seconds are another device's timings, which never mix with
    this sweep's; its numbers may differ too). None: any device."""
    path = result_path(out, spec.run_id)
    if not storage.exists(path):
        return None
    try:
        payload = json.loads(storage.read_bytes(path))
    except (OSError, ValueError):
        return None
    if payload.get("spec") != spec.model_dump(mode="json"):
        return None
    if device_type is not None and device_type_of(payload["row"].get("device")) != device_type:
        return None
    return RunResult(payload["row"], payload["curve"], payload.get("eval_rows", []))


def device_type_of(device: str | None) -> str | None:
    """'cuda' of 'cuda:0', 'cpu' of 'cpu'; None where no device is recorded (a job that never trained)."""
    return device.split(":", 1)[0] if device else None
