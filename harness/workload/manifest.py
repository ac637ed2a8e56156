"""The manifest: what a published checkpoint must contain, and a digest over itself.

Digest choice: BLAKE3-256 for shards and for the manifest. It is a cryptographic hash, so a
torn, stale or foreign shard cannot match by accident (a 64-bit checksum or CRC could, given
enough checkpoints), and it is the fastest such hash available here: the SIMD implementation
hashes several GB/s per core (measured ~7 GB/s on the project VM, faster than SHA-256 with
SHA-NI and close to XXH3-128, which has no collision resistance). Its extendable output also
generates the shard contents (see payload.py), so one small, well-kept dependency does both.

The manifest digest is BLAKE3 over the canonical JSON (sorted keys, no spaces) of every field
except ``digest`` itself; it is what the writer acknowledges and what the checkers compare.

Library formats (docs/formats.md) use the same manifest with two more fields: ``checkpoint_format``
(e.g. ``torch-dcp``) and ``tensors`` — every tensor's name, dtype, shape and BLAKE3 digest (see
:mod:`tensors`), and, for safetensors, the file that holds it; ``bytes`` is then the tensors'
bytes and ``files`` is empty (the library lays its files out: their headers, offsets and sizes
are its business, judged by its own reader). A raw manifest has neither field, so its bytes and its digest are
exactly what they always were. Where the manifest lives is the format's business: MANIFEST.json
for raw and safetensors, inside the library's own checkpoint for DCP and Orbax.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Final, TypeGuard

import blake3

from harness.workload import config, layout, tensors

FORMAT: Final = 1
ALGORITHM: Final = "blake3-256"
#: a manifest for 1024 shards is ~150 KB; anything far larger is not one of ours
MAX_MANIFEST_BYTES: Final = 4 * 1024 * 1024


class ManifestError(ValueError):
    """The manifest is missing a field, has a wrong type, or its digest does not match."""


@dataclasses.dataclass(frozen=True, slots=True)
class FileEntry:
    name: str
    size: int
    digest: str


@dataclasses.dataclass(frozen=True, slots=True)
class TensorEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    digest: str
    #: the file that holds it, when this writer names the files (safetensors)
    file: str | None = None

    @property
    def nbytes(self) -> int:
        return tensors.TensorSpec(self.name, self.dtype, self.shape).nbytes

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape),
                                  "digest": self.digest}
        if self.file is not None:
            out["file"] = self.file
        return out


@dataclasses.dataclass(frozen=True, slots=True)
class Manifest:
    step: int
    ordinal: int
    epoch: str
    volume_id: str
    created_at: float
    request_id: str | None
    files: tuple[FileEntry, ...]
    #: ``raw`` (the writer's own shards) or a library format (config.CHECKPOINT_FORMATS)
    checkpoint_format: str = "raw"
    tensors: tuple[TensorEntry, ...] = ()

    @property
    def total_bytes(self) -> int:
        if self.checkpoint_format != "raw":
            return sum(t.nbytes for t in self.tensors)
        return sum(f.size for f in self.files)

    def body(self) -> dict[str, object]:
        """Every field except the digest, as JSON values."""
        body: dict[str, object] = {
            "format": FORMAT,
            "algorithm": ALGORITHM,
            "step": self.step,
            "ordinal": self.ordinal,
            "epoch": self.epoch,
            "volume_id": self.volume_id,
            "created_at": self.created_at,
            "request_id": self.request_id,
            "bytes": self.total_bytes,
            "files": [{"name": f.name, "size": f.size, "digest": f.digest} for f in self.files],
        }
        if self.checkpoint_format != "raw":
            body["checkpoint_format"] = self.checkpoint_format
            body["tensors"] = [t.to_dict() for t in self.tensors]
        return body

    def digest(self) -> str:
        return body_digest(self.body())

    def to_dict(self) -> dict[str, object]:
        return {**self.body(), "digest": self.digest()}

    def encode(self) -> bytes:
        """The bytes written to MANIFEST.json (readable JSON; the digest covers the canonical form)."""
        return (json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n").encode()


def body_digest(body: dict[str, object]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    return blake3.blake3(canonical).hexdigest()


def decode(raw: bytes) -> Manifest:
    """Parse and check a manifest's own digest; raises ManifestError saying what is wrong."""
    try:
        doc = json.loads(raw)
    # ValueError covers JSONDecodeError, UnicodeDecodeError and int()'s 4300-digit limit;
    # RecursionError a file nested past the recursion limit: the file is untrusted input
    except (ValueError, RecursionError) as exc:
        raise ManifestError(f"manifest is not JSON ({exc.__class__.__name__})") from exc
    if not isinstance(doc, dict):
        raise ManifestError("manifest is not a JSON object")
    claimed = doc.pop("digest", None)
    if not isinstance(claimed, str):
        raise ManifestError("manifest has no digest")
    if body_digest(doc) != claimed:
        raise ManifestError("manifest digest does not match its contents")
    if doc.get("format") != FORMAT or doc.get("algorithm") != ALGORITHM:
        raise ManifestError(f"manifest format/algorithm {doc.get('format')}/{doc.get('algorithm')} not supported")
    kind = doc.get("checkpoint_format", "raw")
    if kind not in config.CHECKPOINT_FORMATS or (kind == "raw" and "checkpoint_format" in doc):
        raise ManifestError(f"manifest has a bad checkpoint_format {str(kind)[:40]!r}")
    files_raw = doc.get("files")
    if not isinstance(files_raw, list) or (not files_raw and kind == "raw"):
        raise ManifestError("manifest lists no files")
    if kind != "raw" and files_raw:
        raise ManifestError(f"a {kind} manifest lists files; its library names its own")
    files: list[FileEntry] = []
    for f in files_raw:
        if not isinstance(f, dict):
            raise ManifestError("manifest file entry is not an object")
        name, size, digest = f.get("name"), f.get("size"), f.get("digest")
        if not isinstance(name, str) or not layout.is_safe_file_name(name):
            raise ManifestError(f"manifest lists an unsafe file name {name!r}")
        if not _is_int(size) or size < 0 or not isinstance(digest, str):
            raise ManifestError(f"manifest entry for {name} has a bad size or digest")
        files.append(FileEntry(name, size, digest))
    if len({f.name for f in files}) != len(files):
        raise ManifestError("manifest lists a file twice")
    step, ordinal, epoch, volume_id = doc.get("step"), doc.get("ordinal"), doc.get("epoch"), doc.get("volume_id")
    created, request_id = doc.get("created_at"), doc.get("request_id")
    if not (_is_int(step) and _is_int(ordinal) and isinstance(epoch, str) and isinstance(volume_id, str)):
        raise ManifestError("manifest has a bad step, ordinal, epoch or volume_id")
    if not isinstance(created, int | float) or isinstance(created, bool):
        raise ManifestError("manifest has a bad created_at")
    if request_id is not None and not isinstance(request_id, str):
        raise ManifestError("manifest has a bad request_id")
    entries = _tensor_entries(doc.get("tensors")) if kind != "raw" else ()
    if kind == "raw" and "tensors" in doc:
        raise ManifestError("a raw manifest lists tensors")
    m = Manifest(step, ordinal, epoch, volume_id, float(created), request_id, tuple(files), kind, entries)
    if doc.get("bytes") != m.total_bytes:
        raise ManifestError("manifest total bytes do not add up")
    return m


def _tensor_entries(raw: object) -> tuple[TensorEntry, ...]:
    if not isinstance(raw, list) or not raw:
        raise ManifestError("manifest lists no tensors")
    out: list[TensorEntry] = []
    for t in raw:
        if not isinstance(t, dict):
            raise ManifestError("manifest tensor entry is not an object")
        name, dtype, shape, digest, file = t.get("name"), t.get("dtype"), t.get("shape"), t.get("digest"), t.get("file")
        if not isinstance(name, str) or not 0 < len(name) <= 256 or not name.isprintable():
            raise ManifestError(f"manifest lists a bad tensor name {str(name)[:40]!r}")
        if dtype not in tensors.ITEMSIZE or not isinstance(dtype, str):
            raise ManifestError(f"tensor {name}: unsupported dtype {str(dtype)[:40]!r}")
        if not isinstance(shape, list) or len(shape) > 8 or not all(_is_int(d) and 0 < d < 1 << 40 for d in shape):
            raise ManifestError(f"tensor {name}: bad shape")
        if not isinstance(digest, str) or (file is not None and not (isinstance(file, str)
                                                                      and layout.is_safe_file_name(file))):
            raise ManifestError(f"tensor {name}: bad digest or file name")
        out.append(TensorEntry(name, dtype, tuple(shape), digest, file))
    if len({t.name for t in out}) != len(out):
        raise ManifestError("manifest lists a tensor twice")
    return tuple(out)


def _is_int(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)
