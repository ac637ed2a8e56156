"""When a StatefulSet's own PVC retention policy may legitimately take an ordinal's volume.

Shared by the identity checker (a new claim is allowed) and the durability checker
(acknowledged checkpoints on a deleted claim are excused, not lost), so both say the same.
"""

from __future__ import annotations

from harness import facts
from harness.checkers import expect


def claim_deletion_reason(ordinal: int, run: facts.RunFacts, exp: expect.Expectations) -> str | None:
    """Why the scenario's declared policy allowed ``ordinal``'s claim to be deleted, or None."""
    if exp.set_deleted and run.retention.when_deleted == "Delete":
        return "whenDeleted=Delete applied: the scenario deleted the StatefulSet"
    if ordinal in run.scaled_down and run.retention.when_scaled == "Delete":
        return "whenScaled=Delete applied: the scenario scaled this ordinal down"
    return None
