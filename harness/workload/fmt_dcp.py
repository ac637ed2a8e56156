"""``torch-dcp`` / ``torch-dcp-hardened``: a seeded state dict saved with
``torch.distributed.checkpoint`` (``dcp.save`` with a ``FileSystemWriter``, one process, no
process group: ``no_dist=True``), loaded back into a template state dict by ``dcp.load``.

What the library does with a path (torch 2.13, ``torch/distributed/checkpoint/filesystem.py``):
``mkdir(parents=True, exist_ok=True)`` of the checkpoint directory; each data file
``__0_<n>.distcp`` written through a buffered stream, flushed after every item and fsynced
(``sync_files=True``, the default); then ``finish`` pickles the metadata into ``.metadata.tmp``,
calls ``os.fsync`` on it *before* the pickle has left the stream's user-space buffer (the
``with`` block flushes it only on close, so for metadata smaller than the buffer the fsync
syncs an empty file), and renames it to ``.metadata`` — the commit marker a loader needs. No
directory is ever fsynced: neither the new checkpoint directory nor its parent, so the data
files' and ``.metadata``'s names, and the directory itself, are not durable when ``save``
returns. ``overwrite=True`` is the default: an existing checkpoint would be replaced.

The manifest (digests of every tensor) is a string entry of the state dict, ``harness_manifest``,
saved by DCP itself as a byte item — the way a trainer keeps its step and data-loader position.

Verification: ``FileSystemReader.read_metadata`` (the ``.metadata`` file), then ``dcp.load`` of
the manifest entry alone, then (full check) ``dcp.load`` into a template of empty tensors of the
listed dtypes and shapes — exactly how a trainer resumes — and every tensor hashed. DCP is
called under one lock per process: it is not written for concurrent saves in one process.
"""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path
from typing import Any, Final

from harness.workload import config, formats, fsutil, manifest, tensors, validate

MANIFEST_KEY: Final = "harness_manifest"
_LOCK: Final = threading.Lock()


def version() -> str:
    import torch
    import torch.distributed.checkpoint  # the import that takes time, done at start

    return f"torch {torch.__version__}"


def _dcp() -> Any:
    import torch.distributed.checkpoint as dcp

    return dcp


def _failures() -> tuple[type[BaseException], ...]:
    """What a DCP call raises when it fails: its CheckpointException derives from BaseException,
    not Exception (``except Exception`` does not catch a failed load or save)."""
    from torch.distributed.checkpoint.api import CheckpointException

    return (Exception, CheckpointException)


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind a DCP failure: CheckpointException keeps each rank's exception in
    ``failures`` rather than in its cause chain."""
    found = formats.os_error(exc)
    for failure in getattr(exc, "failures", {}).values():
        inner = failure[0] if isinstance(failure, tuple) else failure
        if found is None and isinstance(inner, BaseException):
            found = formats.os_error(inner)
    return found


def save(work: Path, fmt: config.CheckpointFormat, layers: tuple[tensors.Layer, ...], stamp: formats.Stamp,
         disk: fsutil.Disk) -> manifest.Manifest:
    import torch

    dcp = _dcp()
    state: dict[str, Any] = {}
    digests: list[list[str]] = []
    for layer in layers:
        data = tensors.layer_bytes(layer, stamp.volume_id, stamp.epoch, stamp.step)
        for t, buf in zip(layer.tensors, data, strict=True):
            state[t.name] = torch.frombuffer(buf, dtype=getattr(torch, t.dtype)).reshape(t.shape)
        digests.append([tensors.digest(buf) for buf in data])
    m = formats.manifest_for(fmt, stamp, layers, digests)
    state[MANIFEST_KEY] = json.dumps(m.to_dict(), sort_keys=True)
    try:
        with _LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "assuming the intent is to save in a single process"
            dcp.save(state, storage_writer=dcp.FileSystemWriter(str(work)), no_dist=True)
    except _failures() as exc:  # DCP wraps I/O errors in CheckpointException
        raise formats.LibraryError(f"torch.distributed.checkpoint could not save: {formats.one_line(exc)}",
                                   _os_error(exc)) from exc
    return m


def check(path: Path, names: set[str], depth: validate.Depth,
          m: manifest.Manifest | None) -> tuple[manifest.Manifest | None, str | None]:
    import torch

    dcp = _dcp()
    if ".metadata" not in names:
        return None, ("no .metadata: DCP never committed it (the data files are there, the metadata DCP "
                      "writes last is not)")
    try:
        with _LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = dcp.FileSystemReader(str(path))
            meta = reader.read_metadata()
            holder: dict[str, Any] = {MANIFEST_KEY: ""}
            dcp.load(holder, storage_reader=dcp.FileSystemReader(str(path)), no_dist=True)
    except _failures() as exc:
        return None, f"torch.distributed.checkpoint cannot load it: {_first_failure(exc)}"
    raw = holder[MANIFEST_KEY]
    try:
        m = manifest.decode(raw.encode() if isinstance(raw, str) else b"")
    except manifest.ManifestError as exc:
        return None, f"the {MANIFEST_KEY} entry DCP loaded is not a manifest: {exc}"
    if config.base_format(m.checkpoint_format) != "torch-dcp":  # type: ignore[arg-type]
        return m, f"manifest says {m.checkpoint_format}, the directory holds a DCP checkpoint"
    stored = {k: v for k, v in meta.state_dict_metadata.items() if k != MANIFEST_KEY}
    loaded: dict[str, tuple[str, tuple[int, ...], str]] = {}
    for name, md in stored.items():
        props = getattr(md, "properties", None)
        dtype = str(getattr(props, "dtype", "?")).removeprefix("torch.")
        loaded[name] = (dtype, tuple(int(d) for d in getattr(md, "size", ())), "")
    problem = formats.compare(m, loaded)
    if problem is not None or depth != "full":
        return m, problem
    template = {t.name: torch.empty(t.shape, dtype=getattr(torch, t.dtype)) for t in m.tensors}
    try:
        with _LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dcp.load(template, storage_reader=dcp.FileSystemReader(str(path)), no_dist=True)
    except _failures() as exc:
        return m, f"torch.distributed.checkpoint cannot load the tensors: {_first_failure(exc)}"
    for name, t in template.items():
        loaded[name] = (str(t.dtype).removeprefix("torch."), tuple(t.shape),
                        tensors.digest(t.contiguous().numpy().data.cast("B")))
    return m, formats.compare(m, loaded)


def _first_failure(exc: BaseException) -> str:
    """One line for a DCP failure: the first rank's own exception, not the wrapper's traceback dump."""
    for failure in getattr(exc, "failures", {}).values():
        inner = failure[0] if isinstance(failure, tuple) else failure
        if isinstance(inner, BaseException):
            return formats.one_line(inner)
    return formats.one_line(exc)
