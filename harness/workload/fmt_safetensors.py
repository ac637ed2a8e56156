"""``safetensors`` / ``safetensors-hardened``: each shard a safetensors file written by
``safetensors.numpy.save_file``, then MANIFEST.json (the sharded-checkpoint index a trainer
writes beside its shards), judged by ``safe_open``.

What the library does with a path (safetensors 0.8.0, ``buffered_write_to_file`` in
``safetensors/src/tensor.rs``): a ``tempfile::NamedTempFile`` ``.tmpXXXXXX`` beside the target
(mode 0600), ``set_len`` to the full size, a 1 MiB ``BufWriter`` flushed at the end, then
``persist`` — a plain rename(2) over the target. No fsync of the file, none of the directory.
So the file is swapped in atomically for a reader while the machine runs, and nothing of it is
durable. Default variant: the shards go straight into ``step-%012d`` and MANIFEST.json is
written there last with a plain write (no fsync, as ``json.dump`` into an index file does).

Verification: MANIFEST.json decoded and its own digest checked; the directory holds exactly the
files its tensors name plus the manifest (a leftover ``.tmpXXXXXX`` is torn); every file opened
with ``safe_open`` (header: names, dtypes, shapes against the manifest) and, for a full check,
every tensor read with ``get_tensor`` and hashed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from harness.workload import config, formats, fsutil, layout, manifest, tensors, validate

SUFFIX: Final = ".safetensors"
#: safetensors' numpy API dtype names (header codes F32, F16, U8) -> ours
_FROM_SAFETENSORS: Final = {"F32": "float32", "F16": "float16", "U8": "uint8"}


def version() -> str:
    import safetensors

    return f"safetensors {safetensors.__version__}"


def shard_name(index: int) -> str:
    return f"shard-{index:05d}{SUFFIX}"


def save(work: Path, fmt: config.CheckpointFormat, layers: tuple[tensors.Layer, ...], stamp: formats.Stamp,
         disk: fsutil.Disk) -> manifest.Manifest:
    import numpy as np
    from safetensors.numpy import save_file

    disk.mkdir(work)
    digests: list[list[str]] = []
    files: list[str | None] = []
    for layer in layers:
        data = tensors.layer_bytes(layer, stamp.volume_id, stamp.epoch, stamp.step)
        arrays = {t.name: np.frombuffer(buf, dtype=t.dtype).reshape(t.shape)
                  for t, buf in zip(layer.tensors, data, strict=True)}
        name = shard_name(layer.index)
        try:
            save_file(arrays, str(work / name), metadata={"step": str(stamp.step), "layer": str(layer.index)})
        except Exception as exc:  # safetensors raises its own errors around the I/O ones
            raise formats.LibraryError(f"safetensors could not save {name}: {formats.one_line(exc)}",
                                       formats.os_error(exc)) from exc
        digests.append([tensors.digest(buf) for buf in data])
        files.append(name)
    m = formats.manifest_for(fmt, stamp, layers, digests, files)
    fd = disk.create(work / layout.MANIFEST_NAME)
    try:
        disk.write_all(fd, m.encode())
    finally:
        disk.close(fd)
    return m


def check(path: Path, names: set[str], depth: validate.Depth,
          m: manifest.Manifest | None) -> tuple[manifest.Manifest | None, str | None]:
    """Called by :mod:`validate` with the decoded MANIFEST.json (None: there is none)."""
    from safetensors import safe_open

    if m is None:
        return None, "manifest missing"
    extra = sorted(names - {t.file for t in m.tensors if t.file is not None} - {layout.MANIFEST_NAME})
    if extra:
        return m, f"unexpected file {extra[0]} not in the manifest"
    by_file: dict[str, list[manifest.TensorEntry]] = {}
    for t in m.tensors:
        if t.file is None:
            return m, f"tensor {t.name} names no file"
        by_file.setdefault(t.file, []).append(t)
    for name, expected in sorted(by_file.items()):
        if name not in names:
            return m, f"{name} missing"
        loaded: dict[str, tuple[str, tuple[int, ...], str]] = {}
        try:
            with safe_open(str(path / name), framework="numpy") as f:
                for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                    sl = f.get_slice(key)
                    dtype = _FROM_SAFETENSORS.get(sl.get_dtype(), sl.get_dtype())
                    shape = tuple(int(d) for d in sl.get_shape())
                    digest = _digest(f.get_tensor(key)) if depth == "full" else ""
                    loaded[key] = (dtype, shape, digest)
        except Exception as exc:  # a bad header or short file: SafetensorError, OSError, ...
            return m, f"{name}: safe_open cannot read it: {formats.one_line(exc)}"
        problem = formats.compare(manifest.Manifest(m.step, m.ordinal, m.epoch, m.volume_id, m.created_at,
                                                    m.request_id, (), m.checkpoint_format, tuple(expected)), loaded)
        if problem is not None:
            return m, f"{name}: {problem}"
    return m, None


def _digest(array: object) -> str:
    import numpy as np

    return tensors.digest(np.ascontiguousarray(array).data.cast("B"))
