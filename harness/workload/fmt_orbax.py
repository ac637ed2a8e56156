"""``orbax`` / ``orbax-hardened``: a seeded pytree saved with an Orbax ``Checkpointer``
(``CompositeCheckpointHandler``: the tensors as item ``state`` through ``StandardSave``, the
manifest as item ``harness`` through ``JsonSave``), restored into a template by the same
Checkpointer.

What the library does with a path (orbax-checkpoint 0.12.8 with tensorstore 0.1.86 on a local
file system, ``_src/checkpointers/checkpointer.py`` and ``_src/path/atomicity.py``): it creates
``<final>.orbax-checkpoint-tmp`` and writes ``_CHECKPOINT_METADATA`` there; each item goes into
its own ``<item>.orbax-checkpoint-tmp`` directory, renamed to ``<item>`` when it is done; the
arrays are written by tensorstore (OCDBT), whose file driver fsyncs each data file and the
directory it is in (``file_io_sync``, default on) and publishes its ``manifest.ocdbt`` by
rename; Orbax's own files — ``_CHECKPOINT_METADATA``, the pytree's ``_METADATA``, the JSON item,
``commit_success.txt`` — are written with no fsync; finally ``AtomicRenameTemporaryPath.finalize``
renames the temp dir to the final name, and nothing fsyncs the parent directory. So a crash
never leaves a partial checkpoint under the final name (atomic while the machine runs), but the
rename — the publication itself — and Orbax's own metadata are not durable when ``save``
returns. A leftover ``*.orbax-checkpoint-tmp`` is a temp name to the writer (removed at boot,
as Orbax's CheckpointManager removes its own at start).

Verification: ``restore`` of the ``harness`` item (the manifest), the ``state`` item's metadata
(names, dtypes, shapes) against it, then (full check) ``restore`` of ``state`` into a template of
empty numpy arrays — the way a trainer restores — and every array hashed. Orbax is called under
one lock per process: a Checkpointer does not take concurrent saves (measured: the second of two
concurrent saves fails in its finalize).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from harness.workload import config, formats, fsutil, manifest, tensors, validate

ITEM_STATE: Final = "state"
ITEM_MANIFEST: Final = "harness"
_LOCK: Final = threading.Lock()
#: one Checkpointer per process, made on first use (under the lock)
_CHECKPOINTER: Final[list[Any]] = []


def version() -> str:
    import jax
    import orbax.checkpoint

    return f"orbax-checkpoint {orbax.checkpoint.__version__} (jax {jax.__version__})"


def _ocp() -> Any:
    import orbax.checkpoint as ocp

    return ocp


def _ckptr() -> Any:
    """One Checkpointer per process (call under the lock)."""
    if not _CHECKPOINTER:
        ocp = _ocp()
        # item handlers named up front: a fresh process reading a checkpoint it did not write
        # otherwise gets no item metadata (measured: item_metadata["state"] is None)
        _CHECKPOINTER.append(ocp.Checkpointer(ocp.CompositeCheckpointHandler(
            **{ITEM_STATE: ocp.StandardCheckpointHandler(), ITEM_MANIFEST: ocp.JsonCheckpointHandler()})))
    return _CHECKPOINTER[0]


def save(work: Path, fmt: config.CheckpointFormat, layers: tuple[tensors.Layer, ...], stamp: formats.Stamp,
         disk: fsutil.Disk) -> manifest.Manifest:
    import numpy as np

    ocp = _ocp()
    tree: dict[str, Any] = {}
    digests: list[list[str]] = []
    for layer in layers:
        data = tensors.layer_bytes(layer, stamp.volume_id, stamp.epoch, stamp.step)
        for t, buf in zip(layer.tensors, data, strict=True):
            tree[t.name] = np.frombuffer(buf, dtype=t.dtype).reshape(t.shape)
        digests.append([tensors.digest(buf) for buf in data])
    m = formats.manifest_for(fmt, stamp, layers, digests)
    args = ocp.args.Composite(**{ITEM_STATE: ocp.args.StandardSave(tree),
                                 ITEM_MANIFEST: ocp.args.JsonSave(m.to_dict())})
    try:
        with _LOCK:
            _ckptr().save(str(work), args=args)
    except Exception as exc:
        raise formats.LibraryError(f"orbax could not save: {formats.one_line(exc)}", formats.os_error(exc)) from exc
    return m


def check(path: Path, names: set[str], depth: validate.Depth,
          m: manifest.Manifest | None) -> tuple[manifest.Manifest | None, str | None]:
    import numpy as np

    ocp = _ocp()
    try:
        with _LOCK, _quiet():
            doc = _ckptr().restore(str(path), args=ocp.args.Composite(**{ITEM_MANIFEST: ocp.args.JsonRestore()}))
    except Exception as exc:
        return None, f"orbax cannot restore the {ITEM_MANIFEST} item: {formats.one_line(exc)}"
    try:
        m = manifest.decode(json.dumps(doc[ITEM_MANIFEST]).encode())
    except (manifest.ManifestError, TypeError, ValueError, KeyError) as exc:
        return None, f"the {ITEM_MANIFEST} item Orbax restored is not a manifest: {exc}"
    if config.base_format(m.checkpoint_format) != "orbax":  # type: ignore[arg-type]
        return m, f"manifest says {m.checkpoint_format}, the directory holds an Orbax checkpoint"
    try:
        with _LOCK, _quiet():
            meta = _ckptr().metadata(str(path)).item_metadata[ITEM_STATE]
        stored = dict(meta.tree) if hasattr(meta, "tree") else dict(meta)
    except Exception as exc:
        return m, f"orbax cannot read the {ITEM_STATE} item's metadata: {formats.one_line(exc)}"
    loaded: dict[str, tuple[str, tuple[int, ...], str]] = {
        name: (str(getattr(md, "dtype", "?")), tuple(int(d) for d in getattr(md, "shape", ())), "")
        for name, md in stored.items()
    }
    problem = formats.compare(m, loaded)
    if problem is not None or depth != "full":
        return m, problem
    template = {t.name: np.empty(t.shape, dtype=t.dtype) for t in m.tensors}
    try:
        with _LOCK, _quiet():
            state = _ckptr().restore(str(path), args=ocp.args.Composite(
                **{ITEM_STATE: ocp.args.StandardRestore(template)}))[ITEM_STATE]
    except Exception as exc:
        return m, f"orbax cannot restore the tensors: {formats.one_line(exc)}"
    for name, value in dict(state).items():
        array = np.ascontiguousarray(np.asarray(value))
        loaded[name] = (str(array.dtype), tuple(array.shape), tensors.digest(array.data.cast("B")))
    return m, formats.compare(m, loaded)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Orbax logs through absl; a torn checkpoint is an answer here, not an error to log."""
    import logging

    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
