"""Identity: every ordinal still owns the claim, volume and stamp it owned before the run.

A StatefulSet's promise is stable storage per ordinal. The harness records ordinal → claim
(name and uid) → PV → the volume's stamp id before the faults and again after recovery;
any change is a deviation, unless the scenario's declared PVC retention policy allowed the
claim to be deleted (``whenScaled=Delete`` for ordinals it scaled down, ``whenDeleted=Delete``
when it deleted the set), and then the verdict says which ordinals that applied to. The
claim *name* never changes. The node is not compared: a pod may legitimately move (a
network volume follows it; a local one cannot, which availability reports). Independently,
a volume whose stamp names another ordinal than the claim it was read from (or another claim
or volume id than the cluster map says) is a swapped volume: always loud.

The volume's own evidence is judged as strictly as the cluster map. The writer stamps an
empty volume before it writes anything, so a volume without a (readable) stamp that holds
checkpoints, or whose ordinal acknowledged a write, lost or never had the stamp that would
have exposed a swap — a problem, not a pass. An unstamped volume with neither is a writer
that never got that far, and is fine. A stamped volume whose facts do not say which
ordinal's claim it was read from (``read_as`` missing: facts stored before the verifier
recorded it, whose ordinal was taken from the stamp itself) cannot show a swap, so it is
unverified — unknown, never a pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from harness import facts, history
from harness.checkers import expect, retention, verdict, writes

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
    before = _by_ordinal(run.identity_before, "identity_before")
    after = _by_ordinal(run.identity_after, "identity_after")
    problems: list[IdentityProblem] = []
    unverified: list[IdentityProblem] = []
    allowed: dict[int, str] = {}
    unchanged: list[int] = []
    added: list[int] = []
    gone: list[int] = []

    compared = (*_COMPARED, "node") if exp.same_node else _COMPARED
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
            for f in compared
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

    acked = _acknowledged_per_ordinal(ops_)
    for vol in run.volumes:
        # a claim the policy let go may be a fresh one: the acknowledgements were the old volume's
        served = 0 if retention.claim_deletion_reason(vol.ordinal, run, exp) is not None else acked.get(vol.ordinal, 0)
        found, doubt = _stamp_problems(vol, after.get(vol.ordinal), served)
        problems.extend(found)
        unverified.extend(doubt)

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


def _stamp_problems(
    vol: facts.VolumeFacts, now: facts.OrdinalIdentity | None, acknowledged: int
) -> tuple[list[IdentityProblem], list[IdentityProblem]]:
    """(problems, unverified): a stamp must name the ordinal (and, when known, the claim and
    volume id) the volume was read for, and a volume the writer used must have one."""
    stamp = vol.stamp
    if stamp is None:
        if not vol.checkpoints and not acknowledged:
            return [], []  # the writer never got as far as stamping it: nothing to compare
        used = ", ".join(part for part in (
            f"{len(vol.checkpoints)} checkpoints on it" if vol.checkpoints else "",
            f"{acknowledged} writes acknowledged by ordinal {vol.ordinal}" if acknowledged else "",
        ) if part)
        return [IdentityProblem(
            ordinal=vol.ordinal,
            reason=f"unstamped volume: the volume read for ordinal {vol.ordinal} has no readable identity stamp, "
                   f"yet the writer stamps a volume before it writes to it ({used})",
            changes=[Change(field="stamp", before="stamped by the writer", after=None)],
        )], []
    out: list[IdentityProblem] = []
    doubt: list[IdentityProblem] = []
    if stamp.ordinal != vol.ordinal:
        out.append(IdentityProblem(
            ordinal=vol.ordinal,
            reason=f"swapped volume: the volume read for ordinal {vol.ordinal} is stamped for ordinal {stamp.ordinal}",
            changes=[Change(field="stamp.ordinal", before=str(vol.ordinal), after=str(stamp.ordinal))],
        ))
    elif vol.read_as is None:
        doubt.append(IdentityProblem(
            ordinal=vol.ordinal,
            reason="not recorded: which ordinal's claim the volume was read from (its facts predate read_as, or "
                   "it was verified without --ordinal), so a swapped volume cannot be told from its own",
            changes=[],
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
    return out, doubt


def _acknowledged_per_ordinal(ops_: Sequence[history.Op]) -> dict[int, int]:
    out: dict[int, int] = {}
    for a in writes.write_attempts(ops_):
        if a.outcome == "ok":
            out[a.ordinal] = out.get(a.ordinal, 0) + 1
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
