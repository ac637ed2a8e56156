"""Is what sits under a final name a complete checkpoint? Read-only, shared by boot recovery
and the offline verifier so both judge by the same rules.

A valid checkpoint is a directory holding exactly the files its manifest lists (plus the
manifest), each with the listed size and — for a full check — the listed BLAKE3 digest, and a
manifest whose own digest, step and ordinal match. Anything else is torn, and ``problem``
says which rule failed first.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path
from typing import Final, Literal

import blake3

from harness.workload import layout, manifest

READ_CHUNK: Final = 4 * 1024 * 1024

Depth = Literal["full", "structure"]


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    valid: bool
    depth: Depth
    manifest: manifest.Manifest | None = None
    problem: str | None = None


def check_checkpoint(path: Path, step: int, ordinal: int | None, depth: Depth = "full") -> Check:
    """``ordinal``: the volume owner's ordinal; None skips that comparison (no stamp known)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return Check(False, depth, None, f"cannot stat: {exc.strerror}")
    if not stat.S_ISDIR(st.st_mode):
        return Check(False, depth, None, "not a directory")
    try:
        raw = _read_small(path / layout.MANIFEST_NAME)
    except FileNotFoundError:
        return Check(False, depth, None, "manifest missing")
    except OSError as exc:
        return Check(False, depth, None, f"manifest unreadable: {exc.strerror or exc}")
    try:
        m = manifest.decode(raw)
    except manifest.ManifestError as exc:
        return Check(False, depth, None, str(exc))
    if m.step != step:
        return Check(False, depth, m, f"manifest says step {m.step}, directory name says {step}")
    if ordinal is not None and m.ordinal != ordinal:
        return Check(False, depth, m, f"written by ordinal {m.ordinal}, volume belongs to ordinal {ordinal}")
    try:
        present = set(os.listdir(path))
    except OSError as exc:
        return Check(False, depth, m, f"cannot list: {exc.strerror}")
    listed = {f.name for f in m.files} | {layout.MANIFEST_NAME}
    extra = sorted(present - listed)
    if extra:
        return Check(False, depth, m, f"unexpected file {extra[0]} not in the manifest")
    for f in m.files:
        problem = _check_file(path / f.name, f, depth)
        if problem is not None:
            return Check(False, depth, m, problem)
    return Check(True, depth, m, None)


def _check_file(path: Path, entry: manifest.FileEntry, depth: Depth) -> str | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return f"{entry.name} missing"
    except OSError as exc:
        return f"{entry.name} unreadable: {exc.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"{entry.name} is not a regular file"
    if st.st_size != entry.size:
        return f"{entry.name} has {st.st_size} bytes, manifest says {entry.size}"
    if depth == "structure":
        return None
    try:
        digest = file_digest(path)
    except OSError as exc:
        return f"{entry.name} unreadable: {exc.strerror}"
    if digest != entry.digest:
        return f"{entry.name} digest mismatch"
    return None


def file_digest(path: Path) -> str:
    """BLAKE3 of a file, read (not mmapped: a file truncated under us must not SIGBUS)."""
    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    buf = bytearray(READ_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            h.update(view[:n])
    return h.hexdigest()


def _read_small(path: Path) -> bytes:
    with open(path, "rb") as f:
        raw = f.read(manifest.MAX_MANIFEST_BYTES + 1)
    if len(raw) > manifest.MAX_MANIFEST_BYTES:
        raise OSError(f"manifest larger than {manifest.MAX_MANIFEST_BYTES} bytes")
    return raw
