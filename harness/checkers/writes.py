"""Write attempts: each ``write`` invoke joined with its completion, in one pass.

The durability, perf and availability checkers all start from the same question — what did
each write ask for and how did it end — so the answer is computed here once per checker call
without building the generic :class:`harness.history.Pair` list (cheaper on a million ops).
Pairing follows :func:`harness.history.pair`: a process has one outstanding op, a second
invoke closes the first as never completed (indeterminate).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from harness import history, ops


class CheckerInputError(ValueError):
    """An op's value does not have the shape :mod:`harness.ops` declares."""


@dataclasses.dataclass(frozen=True, slots=True)
class WriteAttempt:
    ordinal: int
    request_id: str | None
    #: ok / fail / info; never completed counts as info
    outcome: history.OpType
    #: ok: the acknowledged step; otherwise the step the invoke asked for, if it named one
    step: int | None
    #: ok only: the manifest digest the writer acknowledged
    digest: str | None
    nbytes: int
    invoke: history.Op
    completion: history.Op | None


def write_attempts(ops_: Sequence[history.Op]) -> Iterator[WriteAttempt]:
    """Yield every write attempt, in completion order (never-completed ones last)."""
    open_: dict[str, history.Op] = {}
    for op in ops_:
        if op.type == "invoke":
            prev = open_.get(op.process)
            open_[op.process] = op
            if prev is not None and prev.f == ops.WRITE:
                yield _attempt(prev, None)
        else:
            inv = open_.pop(op.process, None)
            if inv is not None and inv.f == ops.WRITE:
                yield _attempt(inv, op)
    for inv in open_.values():
        if inv.f == ops.WRITE:
            yield _attempt(inv, None)


def _attempt(inv: history.Op, done: history.Op | None) -> WriteAttempt:
    try:
        iv = inv.value
        if not isinstance(iv, dict):
            raise CheckerInputError(f"op {inv.index}: write invoke value is not an object")
        ordinal = iv["ordinal"]
        rid = iv.get("request_id")
        nbytes = iv.get("bytes", 0)
        if done is not None and done.type == "ok":
            dv = done.value
            if not isinstance(dv, dict):
                raise CheckerInputError(f"op {done.index}: write ok value is not an object")
            step = dv["step"]
            digest = dv["digest"]
            nbytes = dv.get("bytes", nbytes)
            if not isinstance(step, int) or not isinstance(digest, str):
                raise CheckerInputError(f"op {done.index}: write ok needs an int step and a str digest")
            ok_ordinal = dv.get("ordinal", ordinal)
            if ok_ordinal != ordinal:
                raise CheckerInputError(
                    f"op {done.index}: write ok names ordinal {ok_ordinal} but its invoke {inv.index} named {ordinal}"
                )
        else:
            s = iv.get("step")
            step = s if isinstance(s, int) else None
            digest = None
        if not isinstance(ordinal, int):
            raise CheckerInputError(f"op {inv.index}: write invoke ordinal is not an int")
        return WriteAttempt(
            ordinal=ordinal,
            request_id=rid if isinstance(rid, str) else None,
            outcome="info" if done is None else done.type,
            step=step,
            digest=digest,
            nbytes=nbytes if isinstance(nbytes, int) else 0,
            invoke=inv,
            completion=done,
        )
    except KeyError as exc:
        where = inv.index if done is None else done.index
        raise CheckerInputError(f"op {where}: write value lacks {exc.args[0]!r}") from exc
