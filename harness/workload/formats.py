"""Checkpoint formats written by their own libraries: what they share, and which one is which.

``raw`` is the writer's own protocol (:mod:`store`). The library formats (docs/formats.md) write
the seeded tensors of :mod:`tensors` through the library itself — ``safetensors`` (one
``save_file`` per shard, then MANIFEST.json), ``torch-dcp`` (``torch.distributed.checkpoint``'s
FileSystemWriter, one process, no process group) and ``orbax`` (an Orbax Checkpointer) — and
are judged by the library's own reader.

Publication, per variant:

* **default** (``safetensors``, ``torch-dcp``, ``orbax``): exactly what the library does with a
  path, given the final name ``step-%012d``: nothing of ours around it — no fsync, no rename, no
  temp dir beyond the library's own. A crash can leave whatever the library leaves under the
  final name: that is what the harness must catch.
* **hardened** (``-hardened``): the library writes into the writer's temp dir
  ``.tmp-<step>-<hex>``; then every file and every directory in it is fsynced (files first,
  directories deepest first), the temp dir is renamed to the final name with
  ``RENAME_NOREPLACE`` and ``checkpoints/`` is fsynced — the raw protocol's steps 4 to 6 around the
  library's steps 2 and 3.

Either way the acknowledgement comes after the last step and carries the manifest's digest,
which covers every tensor's digest. Where the manifest lives is the library's channel for
"extra state": MANIFEST.json beside the safetensors shards (as a sharded safetensors index
does), an entry of the state dict for DCP (``harness_manifest``, saved by DCP itself), a
JSON item beside the tensors for Orbax (``harness``, a Composite item). So for DCP and Orbax
the default variant's directory holds nothing but what the library wrote.

Which format a directory holds is read from the directory (:func:`detect`), not from the
writer's settings, so a verifier or a writer restarted with another ``--format`` judges every
checkpoint by its own library. Library modules are imported only when a format is used: the
writer stays importable with the standard library and blake3 alone.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Protocol

from harness.workload import config, fsutil, manifest, tensors

if TYPE_CHECKING:
    from harness.workload import validate

Family = Literal["safetensors", "torch-dcp", "orbax"]
#: family -> the module that implements it (imported lazily, see :func:`library`)
_MODULES: Final[dict[str, str]] = {
    "safetensors": "harness.workload.fmt_safetensors",
    "torch-dcp": "harness.workload.fmt_dcp",
    "orbax": "harness.workload.fmt_orbax",
}
#: names only a library writes, for :func:`detect` (DCP: .metadata and __<rank>_<n>.distcp; Orbax:
#: its step metadata, commit marker and Composite item directories)
_DCP_MARKS: Final = (".metadata", ".metadata.tmp")
_ORBAX_MARKS: Final = ("_CHECKPOINT_METADATA", "commit_success.txt", "harness", "state")


class LibraryError(Exception):
    """A library failed to save; ``cause`` is the OSError underneath, when there is one."""

    def __init__(self, message: str, cause: OSError | None) -> None:
        super().__init__(message)
        self.cause = cause


@dataclasses.dataclass(frozen=True, slots=True)
class Stamp:
    """Who writes this checkpoint: what the manifest says besides the tensors."""

    step: int
    ordinal: int
    epoch: str
    volume_id: str
    created_at: float
    request_id: str | None


class Library(Protocol):
    """One checkpoint library (a module ``fmt_<name>`` provides these as functions)."""

    def version(self) -> str: ...

    def save(self, work: Path, fmt: config.CheckpointFormat, layers: tuple[tensors.Layer, ...], stamp: Stamp,
             disk: fsutil.Disk) -> manifest.Manifest: ...

    def check(self, path: Path, names: set[str], depth: validate.Depth,
              m: manifest.Manifest | None) -> tuple[manifest.Manifest | None, str | None]: ...


def is_hardened(fmt: config.CheckpointFormat) -> bool:
    return fmt.endswith("-hardened")


def family(fmt: config.CheckpointFormat) -> Family | None:
    base = config.base_format(fmt)
    return None if base == "raw" else base  # type: ignore[return-value]


def library(name: Family) -> Library:
    """The library module; ImportError (naming what to install) when it is not installed."""
    problem = config.missing_library(name)
    if problem is not None:
        raise ImportError(problem)
    module: Library = importlib.import_module(_MODULES[name])
    return module


def load(fmt: config.CheckpointFormat) -> str | None:
    """Import ``fmt``'s library now (torch and jax take seconds; better at start than mid-request);
    its name and version, or None for raw. ImportError says what is missing."""
    name = family(fmt)
    if name is None:
        return None
    try:
        return library(name).version()
    except ImportError as exc:
        raise ImportError(f"format {fmt}: cannot import its library: {exc}") from exc


def detect(path: Path, names: set[str]) -> Family | None:
    """The library a checkpoint directory was written by, from the names in it (``names``) and
    its manifest; None for raw or when nothing says (an empty or manifest-less directory is then
    judged as raw, which reports what is missing)."""
    if any(n in names for n in _DCP_MARKS) or any(n.endswith(".distcp") for n in names):
        return "torch-dcp"
    if any(n in names for n in _ORBAX_MARKS):
        return "orbax"
    if any(n.endswith(".safetensors") for n in names):
        return "safetensors"
    return None


def manifest_for(fmt: config.CheckpointFormat, stamp: Stamp, layers: tuple[tensors.Layer, ...],
                 digests: list[list[str]], files: list[str | None] | None = None) -> manifest.Manifest:
    """The manifest of a library checkpoint: ``digests[i][j]`` is layer i's j-th tensor's digest;
    ``files[i]`` the file layer i was written to (safetensors)."""
    entries = tuple(
        manifest.TensorEntry(t.name, t.dtype, t.shape, d, files[layer.index] if files else None)
        for layer, layer_digests in zip(layers, digests, strict=True)
        for t, d in zip(layer.tensors, layer_digests, strict=True)
    )
    return manifest.Manifest(stamp.step, stamp.ordinal, stamp.epoch, stamp.volume_id, stamp.created_at,
                             stamp.request_id, (), fmt, entries)


def compare(expected: manifest.Manifest, loaded: dict[str, tuple[str, tuple[int, ...], str]]) -> str | None:
    """What the library returned (name -> dtype, shape, digest) against the manifest; the first
    difference as one line, or None when every tensor is what was acknowledged."""
    missing = [t.name for t in expected.tensors if t.name not in loaded]
    if missing:
        return f"tensor {missing[0]} missing from what the library loaded"
    extra = sorted(set(loaded) - {t.name for t in expected.tensors})
    if extra:
        return f"the library loaded a tensor {extra[0]} the manifest does not list"
    for t in expected.tensors:
        dtype, shape, digest = loaded[t.name]
        if (dtype, shape) != (t.dtype, t.shape):
            return f"tensor {t.name} loaded as {dtype}{list(shape)}, manifest says {t.dtype}{list(t.shape)}"
        if digest and digest != t.digest:
            return f"tensor {t.name} digest mismatch: the library returned other values than were acknowledged"
    return None


def fsync_tree(root: Path, disk: fsutil.Disk) -> None:
    """fsync every file under ``root``, then every directory, deepest first (the hardened
    variants' addition: whatever the library left un-fsynced becomes durable before the rename)."""
    directories: list[Path] = []
    for here, _dirs, files in os.walk(root):
        directories.append(Path(here))
        for name in files:
            disk.fsync_file(Path(here) / name)
    for d in sorted(directories, key=lambda p: len(p.parts), reverse=True):
        disk.fsync_dir(d)


def os_error(exc: BaseException) -> OSError | None:
    """The OSError in an exception's chain (libraries wrap them), or None."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, OSError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:limit]}"
