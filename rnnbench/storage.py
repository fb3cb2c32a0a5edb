"""Storage roots given as a local path or a pyarrow filesystem URI, and atomic writes (temporary name, then rename)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs


def resolve(location: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a local path or a URI such as s3://bucket/prefix or file:///x."""
    text = os.fspath(location)
    if "://" in text:
        return pafs.FileSystem.from_uri(text)
    return pafs.LocalFileSystem(), str(Path(text).expanduser().absolute())


def is_uri(location: str | os.PathLike) -> bool:
    """Whether a location is a URI (s3://, gs://, file://, ...) rather than a path on this machine."""
    return "://" in os.fspath(location)


def join(root: str, *parts: str) -> str:
    """Join path parts under a root that may be a URI (never uses the OS separator on a URI)."""
    if "://" in root:
        return "/".join([root.rstrip("/"), *parts])
    return str(Path(root, *parts))


def exists(location: str) -> bool:
    fs, path = resolve(location)
    return fs.get_file_info(path).type == pafs.FileType.File


def stamp(location: str) -> tuple[int, ...] | None:
    """What tells a cached copy from a file written since: (inode, size, mtime in ns) of a local file, (size,
    mtime in ns) elsewhere; None when it does not exist or its filesystem keeps no mtime."""
    fs, path = resolve(location)
    if isinstance(fs, pafs.LocalFileSystem):
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns
    info = fs.get_file_info(path)
    if info.type != pafs.FileType.File or info.mtime_ns is None:
        return None
    return info.size, info.mtime_ns


def check_writable(location: str) -> None:
    """Fail early, naming the location, when a directory cannot be created or written to."""
    fs, path = resolve(location)
    try:
        fs.create_dir(path, recursive=True)
        probe = f"{path}/.rnnbench-write-probe-{uuid.uuid4().hex}"
        with fs.open_output_stream(probe) as out:
            out.write(b"ok")
        fs.delete_file(probe)
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"output location {location!r} cannot be written: {exc}") from None


def atomic_write(location: str, write: Callable[[pafs.FileSystem, str], None]) -> str:
    """Call write(fs, tmp_path), then rename tmp_path to `location`; no reader ever sees half a file."""
    fs, path = resolve(location)
    parent = path.rsplit("/", 1)[0]
    fs.create_dir(parent, recursive=True)
    tmp = f"{parent}/.tmp-{uuid.uuid4().hex}-{path.rsplit('/', 1)[1]}"
    try:
        write(fs, tmp)
        fs.move(tmp, path)
    except BaseException:
        try:
            fs.delete_file(tmp)
        except OSError:
            pass
        raise
    return location


def write_bytes(location: str, data: bytes) -> str:
    def _write(fs: pafs.FileSystem, tmp: str) -> None:
        with fs.open_output_stream(tmp) as out:
            out.write(data)

    return atomic_write(location, _write)


def read_bytes(location: str) -> bytes:
    fs, path = resolve(location)
    with fs.open_input_stream(path) as src:
        return src.read()


def subfolders(location: str) -> list[str]:
    """Names of the folders directly under a local path or URI, sorted; [] where it does not exist. (An object
    store has no folders: a prefix with objects under it counts as one.)"""
    fs, path = resolve(location)
    if fs.get_file_info(path).type == pafs.FileType.NotFound and not is_uri(location):
        return []
    try:
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=False, allow_not_found=True))
    except FileNotFoundError:
        return []
    return sorted(info.base_name for info in infos if info.type == pafs.FileType.Directory)
