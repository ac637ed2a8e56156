"""The seeded tensors a library-format checkpoint holds: their names, dtypes and shapes for a
request of ``bytes`` over ``shards``, their contents, and their digests.

A checkpoint of ``bytes`` in ``shards`` is a small model of ``shards`` layers; layer ``i`` holds
exactly its share of the bytes (the same split as the raw writer's shards):

* ``layers.<i>.weight``  float32, 2-D ``[rows, 64]`` (``[rows, 1]`` below 256 bytes), about 3/4
* ``layers.<i>.norm``    float16, 1-D, what is left, in whole elements (absent when nothing is)
* ``layers.<i>.pad``     uint8 ``[1]``, only when one odd byte remains

so every layer needs at least one float32 element: a request with fewer than 4 bytes per shard
cannot be expressed (:class:`PlanError`, a 400 before anything is written).

Contents come from the shard's payload stream (:mod:`payload`, seeded by volume, epoch, step and
shard), with each element's high exponent bits rewritten so every value is a finite, normal
number of magnitude 0.5..2 — weights a trainer could load and compute with, never NaN or Inf
(which a library or an array runtime might canonicalise). The rewrite is one C-speed
``translate`` over every 4th (2nd) byte, so generation stays at memory speed and needs nothing
beyond the standard library and blake3; the formats wrap the bytes in numpy or torch arrays
without a copy.

Digest: BLAKE3-256 of each tensor's little-endian bytes in C order; the checkpoint's manifest
lists every tensor's name, dtype, shape and digest, and the manifest's own digest is what the
writer acknowledges (see :mod:`manifest`). A loader that returns other bytes, another dtype or
another shape fails the comparison: that checkpoint is torn.
"""

from __future__ import annotations

import dataclasses
from typing import Final

import blake3

from harness.workload import payload

#: dtype name -> bytes per element (names as numpy and safetensors' numpy API spell them)
ITEMSIZE: Final[dict[str, int]] = {"float32": 4, "float16": 2, "uint8": 1}
#: the smallest layer: one float32 element
MIN_LAYER_BYTES: Final = 4
_WIDE_COLUMNS: Final = 64
#: byte -> the same sign bit with exponent 0x7E/0x7F (float32's top byte: value in ±[0.5, 2))
_F32_TOP: Final = bytes(0x3F | (b & 0x80) for b in range(256))
#: byte -> same sign and low mantissa bits, exponent 0b01110 (float16's top byte: ±[0.5, 1))
_F16_TOP: Final = bytes(0x38 | (b & 0x83) for b in range(256))


class PlanError(ValueError):
    """The request cannot be expressed as tensors; the message says what to send instead."""


@dataclasses.dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        n = ITEMSIZE[self.dtype]
        for dim in self.shape:
            n *= dim
        return n


@dataclasses.dataclass(frozen=True, slots=True)
class Layer:
    """One shard's tensors, in the order their bytes are taken from the shard's payload stream."""

    index: int
    tensors: tuple[TensorSpec, ...]

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)


def layer_prefix(index: int) -> str:
    return f"layers.{index:05d}."


def plan(nbytes: int, shards: int) -> tuple[Layer, ...]:
    """The tensors of a ``nbytes`` checkpoint in ``shards`` layers; PlanError when it cannot be."""
    if shards < 1 or nbytes < shards * MIN_LAYER_BYTES:
        raise PlanError(f"{nbytes} bytes in {shards} shards cannot be tensors: every shard is a layer holding at "
                        f"least one float32 element, so send bytes >= {MIN_LAYER_BYTES} x shards "
                        f"(= {max(shards, 1) * MIN_LAYER_BYTES}) or fewer shards")
    base, extra = divmod(nbytes, shards)
    return tuple(_layer(i, base + (1 if i < extra else 0)) for i in range(shards))


def _layer(index: int, size: int) -> Layer:
    cols = _WIDE_COLUMNS if size >= 4 * _WIDE_COLUMNS else 1
    rows = max(1, (size * 3 // 4) // (4 * cols))
    prefix = layer_prefix(index)
    out = [TensorSpec(prefix + "weight", "float32", (rows, cols))]
    left = size - rows * cols * 4
    if left >= 2:
        out.append(TensorSpec(prefix + "norm", "float16", (left // 2,)))
    if left % 2:
        out.append(TensorSpec(prefix + "pad", "uint8", (1,)))
    return Layer(index, tuple(out))


def layer_bytes(layer: Layer, volume_id: str, epoch: str, step: int) -> list[bytearray]:
    """The contents of each tensor of ``layer`` (one bytearray per tensor, in order)."""
    source = payload.ShardPayload(volume_id, epoch, step, layer.index)
    out: list[bytearray] = []
    offset = 0
    for t in layer.tensors:
        buf = bytearray(source.chunk(offset, t.nbytes))
        offset += t.nbytes
        if t.dtype == "float32":
            buf[3::4] = buf[3::4].translate(_F32_TOP)
        elif t.dtype == "float16":
            buf[1::2] = buf[1::2].translate(_F16_TOP)
        out.append(buf)
    return out


def digest(data: payload.Buffer) -> str:
    return blake3.blake3(data, max_threads=blake3.blake3.AUTO if len(data) >= 1 << 22 else 1).hexdigest()
