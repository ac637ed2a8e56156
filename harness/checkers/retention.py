"""When a StatefulSet's own PVC retention policy may legitimately take an ordinal's volume.

Also a volume the scenario itself declared expected new (``Expectations.new_volumes``: it
deletes that ordinal's claim on purpose). Shared by the identity checker (a new claim is
allowed), the durability checker (acknowledged checkpoints on a deleted claim are excused, not
lost) and the resume checker, so all say the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness import facts, history, ops
from harness.checkers import expect, faults, writes


def claim_deletion_reason(ordinal: int, run: facts.RunFacts, exp: expect.Expectations) -> str | None:
    """Why the scenario's declared policy allowed ``ordinal``'s claim to be deleted, or None."""
    if exp.set_deleted and run.retention.when_deleted == "Delete":
        return "whenDeleted=Delete applied: the scenario deleted the StatefulSet"
    if ordinal in run.scaled_down and run.retention.when_scaled == "Delete":
        return "whenScaled=Delete applied: the scenario scaled this ordinal down"
    declared = exp.new_volumes.get(ordinal)
    if declared is not None:
        return f"declared-new-volume applied: {declared}"
    return None


def on_old_volume(ordinal: int, ops_: Sequence[history.Op], attempts: Sequence[writes.WriteAttempt]) -> set[int]:
    """Invoke indexes of ``ordinal``'s acknowledged writes that landed on a volume since taken away.

    The cut is when the heal of the last fault that took the ordinal away (declared it
    unavailable) began: until then its old pod still answers. An ack after the cut from a writer
    (epoch) that was already acknowledging before it is the old pod finishing in-flight writes
    on the old volume while the heal deleted it. With no such fault recorded, every ack counts.
    """
    heal_started = {op.index: op.time for op in ops_ if op.f == ops.FAULT_STOP and op.type == "invoke"}
    took = [heal_started.get(p.stop_op, p.end or p.start) if p.stop_op is not None else (p.end or p.start)
            for p in faults.fault_periods(ops_) if str(ordinal) in p.expected_unavailable]
    mine = [a for a in attempts if a.ordinal == ordinal and a.outcome == "ok" and a.completion is not None]
    if not took:
        return {a.invoke.index for a in mine}
    cut = max(took)
    old = {_epoch(a) for a in mine if a.completion is not None and a.completion.time <= cut} - {None}
    return {a.invoke.index for a in mine
            if a.completion is not None and (a.completion.time <= cut or _epoch(a) in old)}


def _epoch(a: writes.WriteAttempt) -> str | None:
    value = a.completion.value if a.completion is not None else None
    epoch = value.get("epoch") if isinstance(value, dict) else None
    return epoch if isinstance(epoch, str) else None
