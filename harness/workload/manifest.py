"""The manifest: what a published checkpoint must contain, and a digest over itself.

Digest choice: BLAKE3-256 for shards and for the manifest. It is a cryptographic hash, so a
torn, stale or foreign shard cannot match by accident (a 64-bit checksum or CRC could, given
enough checkpoints), and it is the fastest such hash available here: the SIMD implementation
hashes several GB/s per core (measured ~7 GB/s on the project VM, faster than SHA-256 with
SHA-NI and close to XXH3-128, which has no collision resistance). Its extendable output also
generates the shard contents (see payload.py), so one small, well-kept dependency does both.

The manifest digest is BLAKE3 over the canonical JSON (sorted keys, no spaces) of every field
except ``digest`` itself; it is what the writer acknowledges and what the checkers compare.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Final, TypeGuard

import blake3

from harness.workload import layout

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
class Manifest:
    step: int
    ordinal: int
    epoch: str
    volume_id: str
    created_at: float
    request_id: str | None
    files: tuple[FileEntry, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def body(self) -> dict[str, object]:
        """Every field except the digest, as JSON values."""
        return {
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
    files_raw = doc.get("files")
    if not isinstance(files_raw, list) or not files_raw:
        raise ManifestError("manifest lists no files")
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
    m = Manifest(step, ordinal, epoch, volume_id, float(created), request_id, tuple(files))
    if doc.get("bytes") != m.total_bytes:
        raise ManifestError("manifest total bytes do not add up")
    return m


def _is_int(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)
