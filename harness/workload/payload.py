"""Shard contents: real, incompressible, never-repeating bytes, generated at memory speed.

Each shard's bytes are the BLAKE3 extendable output of a seed naming (volume, epoch, step,
shard), read at the chunk's offset. That gives three properties a checker relies on: no zeros
or short repeats a filesystem could compress or deduplicate (so the disk really writes every
byte), a different stream for every shard of every checkpoint (so a stale or swapped shard can
never match its manifest's digest), and speed — the SIMD XOF runs at ~8 GB/s per core here and
releases the GIL, so it never becomes the bottleneck the benchmark measures (os.urandom and
random.randbytes manage ~0.4 GB/s).
"""

from __future__ import annotations

from typing import Final

import blake3

CHUNK_BYTES: Final = 1024 * 1024


class ShardPayload:
    """The byte stream of one shard; ``chunk(offset, n)`` is deterministic for a given seed."""

    __slots__ = ("_xof",)

    def __init__(self, volume_id: str, epoch: str, step: int, shard: int) -> None:
        self._xof = blake3.blake3(f"ckpt-payload/{volume_id}/{epoch}/{step}/{shard}".encode())

    def chunk(self, offset: int, size: int) -> bytes:
        return self._xof.digest(length=size, seek=offset)
