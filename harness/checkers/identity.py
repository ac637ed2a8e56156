"""Identity: every ordinal still owns the claim, volume and stamp it owned before the run.

A StatefulSet's promise is stable storage per ordinal. The harness records ordinal → claim
(name and uid) → PV → the volume's stamp id before the faults and again after recovery;
any change is a deviation, unless the scenario's declared PVC retention policy allowed the
claim to be deleted (``whenScaled=Delete`` for ordinals it scaled down, ``whenDeleted=Delete``
when it deleted the set), and then the verdict says which ordinals that applied to. The
claim *name* never changes. The node is not compared: a pod may legitimately move (a
network volume follows it; a local one cannot, which availability reports). Independently,
a volume whose stamp names another ordinal (or another claim or volume id than the cluster
map says) is a swapped volume: always loud.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from harness import facts, history
from harness.checkers import expect, retention, verdict

#: OrdinalIdentity fields a retention-policy deletion may change (the claim name never does)
_RECREATED_MAY_CHANGE = ("claim_uid", "volume", "volume_id")
_COMPARED = ("claim", "claim_uid", "volume", "volume_id")


class Change(TypedDict):
    field: str
    before: str | None
    after: str | None


class IdentityProblem(TypedDict):
    ordinal: int
    reason: str
    changes: list[Change]


def check(ops_: Sequence[history.Op], run: facts.RunFacts, exp: expect.Expectations) -> verdict.Verdict:
    del ops_  # identity is judged from the recorded maps alone
    before = _by_ordinal(run.identity_before, "identity_before")
    after = _by_ordinal(run.identity_after, "identity_after")
    problems: list[IdentityProblem] = []
    unverified: list[IdentityProblem] = []
    allowed: dict[int, str] = {}
    unchanged: list[int] = []
    added: list[int] = []
    gone: list[int] = []

    for ordinal in sorted(set(before) | set(after)):
        b, a = before.get(ordinal), after.get(ordinal)
        excuse = retention.claim_deletion_reason(ordinal, run, exp)
        if b is None:
            added.append(ordinal)
            continue
        if a is None:
            if ordinal in run.scaled_down or excuse is not None:
                gone.append(ordinal)
            else:
                problems.append(IdentityProblem(ordinal=ordinal, reason="ordinal has no pod or claim after the run",
                                                changes=[]))
            continue
        changes = [
            Change(field=f, before=getattr(b, f), after=getattr(a, f))
            for f in _COMPARED
            if getattr(b, f) != getattr(a, f)
        ]
        missing = [f for f in ("volume", "volume_id") if getattr(b, f) is None or getattr(a, f) is None]
        if not changes:
            if missing:
                unverified.append(IdentityProblem(ordinal=ordinal, reason=f"not recorded: {', '.join(missing)}",
                                                  changes=[]))
            else:
                unchanged.append(ordinal)
            continue
        if excuse is not None and all(c["field"] in _RECREATED_MAY_CHANGE for c in changes):
            allowed[ordinal] = excuse
            continue
        if excuse is None and all(c["field"] in missing for c in changes):
            # only a None on one side: nothing to compare, not evidence of a swap
            unverified.append(IdentityProblem(ordinal=ordinal, reason=f"not recorded: {', '.join(missing)}",
                                              changes=changes))
            continue
        problems.append(IdentityProblem(ordinal=ordinal, reason="identity changed", changes=changes))

    for vol in run.volumes:
        problems.extend(_stamp_problems(vol, after.get(vol.ordinal)))

    if problems:
        valid: verdict.Validity = False
    elif (not before and not after) or unverified:
        valid = verdict.UNKNOWN
    else:
        valid = True
    details: dict[str, object] = {
        "unchanged": unchanged,
        "allowed_by_retention": {str(o): r for o, r in allowed.items()},
        "new_ordinals": added,
        "scaled_away": gone,
        "problems": problems,
        "unverified": unverified,
    }
    return verdict.Verdict(valid, _summary(valid, unchanged, allowed, problems, unverified, before, after), details)


def _stamp_problems(vol: facts.VolumeFacts, now: facts.OrdinalIdentity | None) -> list[IdentityProblem]:
    """A stamp must name the ordinal (and, when known, the claim and volume id) it was read for."""
    stamp = vol.stamp
    if stamp is None:
        return []
    out: list[IdentityProblem] = []
    if stamp.ordinal != vol.ordinal:
        out.append(IdentityProblem(
            ordinal=vol.ordinal,
            reason=f"swapped volume: the volume read for ordinal {vol.ordinal} is stamped for ordinal {stamp.ordinal}",
            changes=[Change(field="stamp.ordinal", before=str(vol.ordinal), after=str(stamp.ordinal))],
        ))
    if now is not None and now.claim != stamp.claim:
        out.append(IdentityProblem(
            ordinal=vol.ordinal,
            reason=f"the volume is stamped for claim {stamp.claim} but ordinal {vol.ordinal} uses claim {now.claim}",
            changes=[Change(field="stamp.claim", before=now.claim, after=stamp.claim)],
        ))
    if now is not None and now.volume_id is not None and now.volume_id != stamp.volume_id:
        out.append(IdentityProblem(
            ordinal=vol.ordinal,
            reason=f"the volume's stamp id {stamp.volume_id} is not the id {now.volume_id} recorded for the ordinal",
            changes=[Change(field="stamp.volume_id", before=now.volume_id, after=stamp.volume_id)],
        ))
    return out


def _by_ordinal(records: Sequence[facts.OrdinalIdentity], what: str) -> dict[int, facts.OrdinalIdentity]:
    out: dict[int, facts.OrdinalIdentity] = {}
    for r in records:
        if r.ordinal in out:
            raise ValueError(f"{what} lists ordinal {r.ordinal} twice")
        out[r.ordinal] = r
    return out


def _summary(  # noqa: PLR0917 - private helper of check()
    valid: verdict.Validity,
    unchanged: list[int],
    allowed: dict[int, str],
    problems: list[IdentityProblem],
    unverified: list[IdentityProblem],
    before: dict[int, facts.OrdinalIdentity],
    after: dict[int, facts.OrdinalIdentity],
) -> str:
    if not before and not after:
        return "no identity recorded before or after the run"
    parts = [f"{len(unchanged)} ordinals unchanged"]
    if allowed:
        by_reason: dict[str, list[int]] = {}
        for o, r in allowed.items():
            by_reason.setdefault(r.split(" ", 1)[0], []).append(o)
        parts += [f"{rule} applied to ordinals {ords}" for rule, ords in by_reason.items()]
    if problems:
        bad = sorted({p["ordinal"] for p in problems})
        parts.append(f"{len(problems)} problems on ordinals {bad}: {problems[0]['reason']}")
    if unverified:
        parts.append(f"ordinals {[p['ordinal'] for p in unverified]} could not be compared")
    return "; ".join(parts)
