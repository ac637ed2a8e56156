"""The POST /checkpoints request: parsed strictly, so bad input is refused before any write.

Accepted fields (the writer contract): ``bytes`` (int, 1..max), ``shards`` (int, 1..1024,
at most ``bytes``), ``step`` (int >= 1, optional: the writer assigns last+1; an explicit one
must also be above the last published or reserved step and at most ``store.STEP_WINDOW``
above it), ``request_id`` (str of at most 128 printable characters, optional; stored in the
manifest). Anything else, including an unknown field, is a 400 with a message saying what to
fix — also a body the JSON parser itself chokes on: an integer literal longer than
:data:`MAX_INT_DIGITS` (Python's int() refuses 4300+ digits with a ValueError, not a
JSONDecodeError) or nesting deeper than the recursion limit (a RecursionError).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Final

from harness.workload import config, layout

MAX_BODY_BYTES: Final = 64 * 1024
MAX_REQUEST_ID: Final = 128
#: longest integer literal parsed (sign excluded): more than any field's bound has
MAX_INT_DIGITS: Final = 20
FIELDS: Final = frozenset({"bytes", "shards", "step", "request_id"})


class BadRequest(ValueError):
    """400: the message is one line saying what is wrong and how to fix it."""


@dataclasses.dataclass(frozen=True, slots=True)
class CheckpointRequest:
    bytes: int
    shards: int
    step: int | None = None
    request_id: str | None = None


def parse_checkpoint_request(raw: bytes, max_bytes: int) -> CheckpointRequest:
    try:
        doc = json.loads(raw, parse_int=_parse_int)
    except BadRequest:
        raise
    except RecursionError:
        raise BadRequest("body is nested too deeply to be a checkpoint request; send a flat JSON object") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError and anything else the parser raises
        raise BadRequest(f"body is not valid JSON ({exc}); send e.g. {{\"bytes\": 4096, \"shards\": 1}}") from None
    if not isinstance(doc, dict):
        raise BadRequest("body must be a JSON object with bytes and shards")
    unknown = sorted(set(doc) - FIELDS)
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; accepted: {', '.join(sorted(FIELDS))}")
    nbytes = _required_int(doc, "bytes", 1, max_bytes)
    shards = _required_int(doc, "shards", 1, config.MAX_SHARDS)
    step = _optional_int(doc, "step", 1, layout.MAX_STEP)
    if shards > nbytes:
        raise BadRequest(f"shards ({shards}) must not exceed bytes ({nbytes}): every shard holds at least one byte")
    request_id = doc.get("request_id")
    if request_id is not None and (
        not isinstance(request_id, str) or len(request_id) > MAX_REQUEST_ID or not request_id.isprintable()
    ):
        raise BadRequest(f"request_id must be a string of at most {MAX_REQUEST_ID} printable characters")
    return CheckpointRequest(nbytes, shards, step, request_id)


def _parse_int(literal: str) -> int:
    """json's parse_int, bounded before int() sees the literal (see the module doc)."""
    digits = len(literal) - literal.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise BadRequest(f"integer of {digits} digits is out of range for every field "
                         f"(at most {MAX_INT_DIGITS} digits)")
    return int(literal)


def _required_int(doc: dict[str, object], name: str, low: int, high: int) -> int:
    value = _optional_int(doc, name, low, high)
    if value is None:
        raise BadRequest(f"field {name!r} is required (an integer {low}..{high})")
    return value


def _optional_int(doc: dict[str, object], name: str, low: int, high: int) -> int | None:
    if doc.get(name) is None:
        return None
    value = doc[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"field {name!r} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise BadRequest(f"field {name!r} = {value} is out of range {low}..{high}")
    return value
