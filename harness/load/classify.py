"""What a checkpoint POST's answer means for the history: ok, fail or info.

The writer contract: 200 with the publish receipt only after the fsync'd rename; 400, 409,
500, 503 and 507 with ``{"error": ..., "published": false}`` when nothing was published.
Only that exact pairing is a ``fail``; every other answer — a timeout, a reset, another
status, a body that does not parse or does not say ``published: false`` — is ``info``,
because a guessed ``fail`` would let the checker call a present checkpoint "unexpected"
and, worse, a guessed ``ok`` would let it miss a loss. Pure: no I/O, no locust.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Literal, cast

from harness import ops

#: Statuses the writer uses for "nothing was published" (with published: false in the body).
NOTHING_PUBLISHED: frozenset[int] = frozenset({400, 409, 500, 503, 507})

_OK_FIELDS: dict[str, tuple[type, ...]] = {
    "ordinal": (int,),
    "step": (int,),
    "digest": (str,),
    "bytes": (int,),
    "epoch": (str, int),
    "durable_at": (float, int),
    "request_id": (str,),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """The completion to record: ``value`` is the 200 receipt for ok, else None (the
    recorder then repeats the invoke's value, as the history contract says)."""

    type: Literal["ok", "fail", "info"]
    value: ops.WriteOk | None = None
    error: str | None = None


def _snippet(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", "replace").strip()
    return text + ("..." if len(body) > limit else "")


def _receipt(body: bytes, invoke: ops.WriteInvoke) -> ops.WriteOk | str:
    """The validated 200 body, or why it cannot be trusted as a receipt."""
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"HTTP 200 with a body that is not JSON: {_snippet(body)!r}"
    if not isinstance(raw, dict):
        return "HTTP 200 with a body that is not a JSON object"
    for field, types in _OK_FIELDS.items():
        value = raw.get(field)
        # bool is an int subclass; a true/false step is not a step.
        if value is None or isinstance(value, bool) or not isinstance(value, types):
            return f"HTTP 200 receipt lacks a valid {field!r}: {_snippet(body)!r}"
    if raw["request_id"] != invoke["request_id"]:
        return f"HTTP 200 receipt is for request {raw['request_id']!r}, not {invoke['request_id']!r}"
    if raw["ordinal"] != invoke["ordinal"]:
        # The address reached another pod (stale endpoints, a reused pod IP): the checkpoint was
        # published, but on that ordinal's volume. Never an ok for the ordinal we meant; the
        # checker then finds it on the other volume as a write nobody attempted there.
        return (
            f"misrouted: ordinal {raw['ordinal']} answered (step {raw['step']}, digest {raw['digest']}) "
            f"for a write meant for ordinal {invoke['ordinal']}"
        )
    receipt = {field: raw[field] for field in _OK_FIELDS}
    receipt["durable_at"] = float(receipt["durable_at"])
    return cast(ops.WriteOk, receipt)


def classify_response(status: int, body: bytes, invoke: ops.WriteInvoke) -> Outcome:
    """Map a complete HTTP answer to the op that must be recorded."""
    if status == 200:
        receipt = _receipt(body, invoke)
        if isinstance(receipt, str):
            return Outcome("info", error=receipt)
        return Outcome("ok", value=receipt)
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raw = None
    if status in NOTHING_PUBLISHED and isinstance(raw, dict) and raw.get("published") is False:
        return Outcome("fail", error=f"HTTP {status}: {raw.get('error', 'no error message')}")
    return Outcome("info", error=f"HTTP {status} (publish state unknown): {_snippet(body)!r}")


class NotSent(Exception):
    """The connection could not be opened (refused, unreachable, timed out): not one byte of
    the request left the client, so nothing can have been published."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(f"{cause.__class__.__name__}: {cause.strerror or cause}")
        self.cause = cause


def classify_exception(exc: BaseException) -> Outcome:
    """A request that never left the client is a ``fail``; anything raised after the connection
    opened (while sending or waiting) is indeterminate: the request may have reached the writer
    and been published."""
    if isinstance(exc, NotSent):
        return Outcome("fail", error=f"not sent: {exc}")
    message = str(exc) or exc.__class__.__name__
    return Outcome("info", error=f"{exc.__class__.__name__}: {message}")
