"""Storage every Ray node reads: the sweep's local paths made absolute in the driver, node-local ones refused on a
multi-node cluster."""

from __future__ import annotations

from pathlib import Path

from flows.api_server import RuntimeStartError
from rnnbench.config import CompareConfig
from rnnbench.storage import is_uri


class NodeLocalStorage(RuntimeStartError):
    """A local output or dataset root on a cluster whose other nodes cannot see it."""


def absolute(config: CompareConfig) -> CompareConfig:
    """out and data_root as absolute paths, resolved in the driver's working directory: a Ray worker resolves a
    relative path in its own (a runtime_env's working_dir, another node's home), where nothing of the sweep is."""
    update = {k: str(Path(v).expanduser().absolute()) for k in ("out", "data_root")
              if isinstance(v := getattr(config, k), str) and not is_uri(v)}
    return config.model_copy(update=update)


def check_shared(config: CompareConfig, nodes: int, joined: bool) -> str | None:
    """Refuse, before any work, a local out or data_root on a Ray cluster of more than one node unless
    `shared_path` says every node mounts it: datasets built on one node would be missing on another, and job
    results would land on the disks of the nodes that ran them. On a joined cluster of one node, returns a
    warning instead (an autoscaler may add nodes that will not see it)."""
    if config.shared_path:
        return None
    local = [(flag, location) for flag, location in (("--out", config.out), ("--data-root", config.data_root))
             if location is not None and not is_uri(location)]
    if not local:
        return None
    flag, location = local[0]
    if nodes > 1:
        raise NodeLocalStorage(
            f"{flag} {location} is local to this node; use an object store URI (s3://, gs://) or a path every "
            f"node mounts, and pass --shared-path to say so (the Ray cluster has {nodes} nodes)")
    if joined:
        return (f"{flag} {location} is local to this node: nodes the cluster adds later (an autoscaler) will not "
                "see it; use an object store URI or a path every node mounts (--shared-path)")
    return None


def alive_nodes() -> int:
    """How many nodes the Ray this process is connected to has now (1 for the private local Ray)."""
    import ray

    return sum(1 for node in ray.nodes() if node.get("Alive"))
