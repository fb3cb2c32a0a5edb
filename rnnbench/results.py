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


def load(out: str, spec: RunSpec) -> RunResult | None:
    """The stored result of exactly this spec, or None (missing, unreadable, or for another spec)."""
    path = result_path(out, spec.run_id)
    if not storage.exists(path):
        return None
    try:
        payload = json.loads(storage.read_bytes(path))
    except (OSError, ValueError):
        return None
    if payload.get("spec") != spec.model_dump(mode="json"):
        return None
    return RunResult(payload["row"], payload["curve"], payload.get("eval_rows", []))
