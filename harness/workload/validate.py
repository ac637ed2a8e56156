"""Is what sits under a final name a complete checkpoint? Read-only, shared by boot recovery
and the offline verifier so both judge by the same rules.

A valid raw checkpoint is a directory holding exactly the files its manifest lists (plus the
manifest), each with the listed size and — for a full check — the listed BLAKE3 digest, and a
manifest whose own digest, step and ordinal match. A library checkpoint (docs/formats.md) is
valid when its library's own reader loads it and returns exactly the tensors its manifest lists
(a structure check reads only headers and metadata). Anything else is torn, and ``problem``
says which rule failed first.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path
from typing import Final, Literal

import blake3

from harness.workload import formats, layout, manifest

READ_CHUNK: Final = 4 * 1024 * 1024

Depth = Literal["full", "structure"]


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    valid: bool
    depth: Depth
    manifest: manifest.Manifest | None = None
    problem: str | None = None


def check_checkpoint(path: Path, step: int, ordinal: int | None, depth: Depth = "full") -> Check:
    """``ordinal``: the volume owner's ordinal; None skips that comparison (no stamp known).

    Raw checkpoints are judged here; library checkpoints (docs/formats.md) by their library's
    own reader (:mod:`formats`), whichever format the directory turns out to hold."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return Check(False, depth, None, f"cannot stat: {exc.strerror}")
    if not stat.S_ISDIR(st.st_mode):
        return Check(False, depth, None, "not a directory")
    try:
        present = set(os.listdir(path))
    except OSError as exc:
        return Check(False, depth, None, f"cannot list: {exc.strerror}")
    if not present:
        return Check(False, depth, None, "empty directory: nothing of the checkpoint is there")
    m: manifest.Manifest | None = None
    if layout.MANIFEST_NAME in present:
        try:
            m = manifest.decode(_read_small(path / layout.MANIFEST_NAME))
        except OSError as exc:
            return Check(False, depth, None, f"manifest unreadable: {exc.strerror or exc}")
        except manifest.ManifestError as exc:
            return Check(False, depth, None, str(exc))
        family = formats.family(m.checkpoint_format)  # type: ignore[arg-type]
    else:
        family = formats.detect(path, present)
    if family is None:
        if m is None:
            return Check(False, depth, None, "manifest missing")
        return _check_raw(path, present, step, ordinal, depth=depth, m=m)
    try:
        lib = formats.library(family)
    except ImportError as exc:
        return Check(False, depth, m, f"a {family} checkpoint, which cannot be read here: {exc}")
    m, problem = lib.check(path, present, depth, m)
    identity = _identity_problem(m, step, ordinal) if m is not None else None
    if identity is not None:
        return Check(False, depth, m, identity)
    return Check(problem is None and m is not None, depth, m, problem if m is not None else problem or "no manifest")


def _identity_problem(m: manifest.Manifest, step: int, ordinal: int | None) -> str | None:
    if m.step != step:
        return f"manifest says step {m.step}, directory name says {step}"
    if ordinal is not None and m.ordinal != ordinal:
        return f"written by ordinal {m.ordinal}, volume belongs to ordinal {ordinal}"
    return None


def _check_raw(path: Path, present: set[str], step: int, ordinal: int | None, *, depth: Depth,
               m: manifest.Manifest) -> Check:
    problem = _identity_problem(m, step, ordinal)
    if problem is not None:
        return Check(False, depth, m, problem)
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
