"""Durability: did every acknowledged checkpoint survive, and nothing else appear?

Jepsen's set checker, per ordinal, over the write attempts of the history and the
checkpoints the offline verifier found on each volume after recovery (see
``docs/durability.md``):

* **lost** — an ``ok`` checkpoint missing, or present with another digest than the one
  acknowledged (matched by ordinal and step);
* **torn** — anything under a final name that fails validation, whatever its op;
* **unexpected** — a valid checkpoint no write attempted, or whose write ended ``fail``
  (matched by request id, or by ordinal and step when the manifest carries no id);
* **recovered** — an indeterminate write whose checkpoint is present and valid: allowed.

The writer's keep-last-K retention excuses a missing ``ok`` step only when K valid newer
checkpoints are present on that ordinal; so the newest acknowledged step must be present
unless K indeterminate writes after it landed (they are newer valid checkpoints the writer
legitimately kept instead). A claim
the scenario's declared PVC retention policy deleted excuses that ordinal's losses (and
says so). One pass over the history and one over the facts, dicts and a sort per ordinal:
linear-ish in the history, so a million ops take seconds.
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Sequence
from typing import Literal, TypeAlias, TypedDict

from harness import facts, history
from harness.checkers import expect, retention, verdict, writes

ProblemKind: TypeAlias = Literal["lost", "torn", "unexpected", "recovered", "excused"]
KINDS: tuple[ProblemKind, ...] = ("lost", "torn", "unexpected", "recovered", "excused")
#: kinds that make the verdict invalid
FAILING: frozenset[str] = frozenset({"lost", "torn", "unexpected"})


class Problem(TypedDict):
    kind: ProblemKind
    ordinal: int
    step: int | None
    request_id: str | None
    #: index of the op that decided it (the write's completion, else its invoke); None if no op
    op: int | None
    #: the checkpoint's directory name on the volume, when one was found
    name: str | None
    reason: str


class OrdinalSummary(TypedDict):
    acknowledged: int
    newest_acknowledged: int | None
    latest_valid_step: int | None
    present_valid: int
    lost: int
    torn: int
    unexpected: int
    recovered: int
    retired: int


_OUTCOME_RANK = {"ok": 2, "info": 1, "fail": 0}


class _Findings:
    """Problem lists, capped for the report while every count stays exact."""

    def __init__(self, max_listed: int) -> None:
        self.max_listed = max_listed
        self.listed: dict[ProblemKind, list[Problem]] = {k: [] for k in KINDS}
        self.counts: collections.Counter[str] = collections.Counter()
        self.per_ordinal: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)

    def add(
        self,
        kind: ProblemKind,
        ordinal: int,
        step: int | None,
        reason: str,
        *,
        attempt: writes.WriteAttempt | None = None,
        checkpoint: facts.CheckpointFact | None = None,
    ) -> None:
        self.counts[kind] += 1
        self.per_ordinal[ordinal][kind] += 1
        bucket = self.listed[kind]
        if len(bucket) >= self.max_listed:
            return
        op = None
        rid = None
        if attempt is not None:
            op = (attempt.completion or attempt.invoke).index
            rid = attempt.request_id
        if rid is None and checkpoint is not None:
            rid = checkpoint.request_id
        bucket.append(
            Problem(
                kind=kind,
                ordinal=ordinal,
                step=step,
                request_id=rid,
                op=op,
                name=None if checkpoint is None else checkpoint.name,
                reason=reason,
            )
        )


def check(ops_: Sequence[history.Op], run: facts.RunFacts, exp: expect.Expectations) -> verdict.Verdict:
    found = _Findings(exp.durability.max_listed)
    keep_last = run.keep_last

    # --- pass 1: the history -------------------------------------------------------------
    acked: dict[int, list[writes.WriteAttempt]] = collections.defaultdict(list)
    acked_at: dict[tuple[int, int], writes.WriteAttempt] = {}
    by_request: dict[str, writes.WriteAttempt] = {}
    unacked_at: dict[tuple[int, int], writes.WriteAttempt] = {}
    outcomes: collections.Counter[str] = collections.Counter()
    duplicate_requests = 0
    attempts = list(writes.write_attempts(ops_))
    for a in attempts:
        outcomes[a.outcome] += 1
        if a.outcome == "ok":
            assert a.step is not None  # writes guarantees an ok carries its step
            acked[a.ordinal].append(a)
            acked_at.setdefault((a.ordinal, a.step), a)
        elif a.step is not None:
            prev_at = unacked_at.get((a.ordinal, a.step))
            if prev_at is None or _OUTCOME_RANK[a.outcome] > _OUTCOME_RANK[prev_at.outcome]:
                unacked_at[(a.ordinal, a.step)] = a
        if a.request_id is not None:
            prev = by_request.get(a.request_id)
            if prev is not None:
                duplicate_requests += 1
                if _OUTCOME_RANK[a.outcome] <= _OUTCOME_RANK[prev.outcome]:
                    continue
            by_request[a.request_id] = a

    # --- pass 2: the volumes -------------------------------------------------------------
    volumes: dict[int, facts.VolumeFacts] = {}
    for vol in run.volumes:
        if vol.ordinal in volumes:
            raise writes.CheckerInputError(f"facts hold two volumes for ordinal {vol.ordinal}")
        volumes[vol.ordinal] = vol
    present: dict[int, dict[int, list[facts.CheckpointFact]]] = {}
    torn_at: dict[tuple[int, int], facts.CheckpointFact] = {}
    for ordinal, vol in volumes.items():
        steps: dict[int, list[facts.CheckpointFact]] = {}
        present[ordinal] = steps
        for cp in vol.checkpoints:
            if not cp.valid:
                torn_at.setdefault((ordinal, cp.step), cp)
                found.add("torn", ordinal, cp.step, f"fails validation under a final name: {cp.problem or '?'}",
                          checkpoint=cp)
                continue
            if cp.ordinal != ordinal:
                found.add("unexpected", ordinal, cp.step,
                          f"manifest names ordinal {cp.ordinal} but it is on ordinal {ordinal}'s volume",
                          checkpoint=cp)
                continue
            steps.setdefault(cp.step, []).append(cp)
            _judge_provenance(found, ordinal, cp, by_request, acked_at, unacked_at)

    # --- pass 3: every acknowledged checkpoint must be there -------------------------------
    ordinals: dict[int, OrdinalSummary] = {}
    retired_total = 0
    acknowledged_present = 0
    for ordinal in sorted(set(acked) | set(volumes)):
        oks = acked.get(ordinal, [])
        steps = present.get(ordinal, {})
        valid_steps = sorted(steps)
        newest = max((a.step for a in oks if a.step is not None), default=None)
        excuse = retention.claim_deletion_reason(ordinal, run, exp)
        # a deleted claim excuses what was acknowledged on it, never what the new volume acknowledged
        old_volume = retention.on_old_volume(ordinal, ops_, attempts) if excuse is not None else set()
        retired = 0
        known_steps = sorted(set(valid_steps).union(a.step for a in oks if a.step is not None)) if keep_last else []
        for a in oks:
            step = a.step
            assert step is not None
            cps = steps.get(step)
            if cps is not None and any(c.digest == a.digest for c in cps):
                acknowledged_present += 1
                continue
            if a.invoke.index in old_volume:
                found.add("excused", ordinal, step, f"acknowledged on the deleted claim's volume; {excuse}",
                          attempt=a)
                continue
            if ordinal not in volumes:
                reason = "acknowledged, but no facts were gathered for this ordinal's volume"
            elif cps is not None:
                reason = f"digest mismatch: acknowledged {a.digest}, found {', '.join(str(c.digest) for c in cps)}"
            elif (ordinal, step) in torn_at:
                reason = f"acknowledged, but what is there fails validation: {torn_at[(ordinal, step)].problem}"
            else:
                reason = "acknowledged, then missing"
                if keep_last > 0:
                    # K valid newer checkpoints on the volume: the writer's keep-last-K may have
                    # retired it. For the newest acknowledged step those newer ones can only be
                    # indeterminate writes that landed; with none, it must be present.
                    newer = len(valid_steps) - bisect.bisect_right(valid_steps, step)
                    if newer >= keep_last:
                        retired += 1
                        continue
                    if step == newest:
                        reason += (f" (newest acknowledged step; only {newer} valid newer checkpoints,"
                                   f" keep-last-{keep_last} cannot have removed it)")
                    elif len(known_steps) - bisect.bisect_right(known_steps, step) >= keep_last:
                        reason += (f" (keep-last-{keep_last} could have removed it only if the newer acknowledged"
                                   f" checkpoints were there; {newer} valid newer ones are)")
            found.add("lost", ordinal, step, reason, attempt=a)
        retired_total += retired
        per = found.per_ordinal.get(ordinal, collections.Counter())
        seen = volumes.get(ordinal)
        ordinals[ordinal] = OrdinalSummary(
            acknowledged=len(oks),
            newest_acknowledged=newest,
            latest_valid_step=valid_steps[-1] if valid_steps else (None if seen is None else seen.latest_valid_step),
            present_valid=sum(len(v) for v in steps.values()),
            lost=per["lost"],
            torn=per["torn"],
            unexpected=per["unexpected"],
            recovered=per["recovered"],
            retired=retired,
        )

    counts: dict[str, int] = {
        "attempted": sum(outcomes.values()),
        "acknowledged": outcomes["ok"],
        "failed": outcomes["fail"],
        "indeterminate": outcomes["info"],
        "acknowledged_present": acknowledged_present,
        "retired_by_retention": retired_total,
        "duplicate_request_ids": duplicate_requests,
    }
    counts.update({k: found.counts[k] for k in KINDS})
    failing = sum(found.counts[k] for k in FAILING)
    if failing:
        valid: verdict.Validity = False
    elif outcomes["ok"] == 0:
        valid = verdict.UNKNOWN
    else:
        valid = True
    omitted: dict[str, int] = {
        k: found.counts[k] - len(found.listed[k]) for k in KINDS if found.counts[k] > len(found.listed[k])
    }
    details: dict[str, object] = {
        "counts": counts,
        "keep_last": keep_last,
        "ordinals": {str(o): s for o, s in ordinals.items()},
        "omitted": omitted,
        **{k: found.listed[k] for k in KINDS},
    }
    return verdict.Verdict(valid, _summary(valid, counts, len(ordinals)), details)


def _judge_provenance(  # noqa: PLR0917 - private helper of check(), called once
    found: _Findings,
    ordinal: int,
    cp: facts.CheckpointFact,
    by_request: dict[str, writes.WriteAttempt],
    acked_at: dict[tuple[int, int], writes.WriteAttempt],
    unacked_at: dict[tuple[int, int], writes.WriteAttempt],
) -> None:
    """Which attempt published this valid checkpoint, and was it allowed to?"""
    if cp.request_id is not None:
        a = by_request.get(cp.request_id)
        if a is None:
            found.add("unexpected", ordinal, cp.step, "no write with this request id was attempted", checkpoint=cp)
        elif a.ordinal != ordinal:
            found.add("unexpected", ordinal, cp.step, f"its write was sent to ordinal {a.ordinal}",
                      attempt=a, checkpoint=cp)
        elif a.outcome == "ok":
            if a.step != cp.step:
                found.add("unexpected", ordinal, cp.step, f"its write was acknowledged as step {a.step}",
                          attempt=a, checkpoint=cp)
        elif a.outcome == "fail":
            found.add("unexpected", ordinal, cp.step, f"its write ended fail ({_error(a)}) yet it is published",
                      attempt=a, checkpoint=cp)
        else:
            found.add("recovered", ordinal, cp.step, "indeterminate write turned out published", attempt=a,
                      checkpoint=cp)
        return
    if (ordinal, cp.step) in acked_at:
        return
    u = unacked_at.get((ordinal, cp.step))
    if u is None:
        found.add("unexpected", ordinal, cp.step, "no write attempted this step (manifest has no request id)",
                  checkpoint=cp)
    elif u.outcome == "fail":
        found.add("unexpected", ordinal, cp.step, f"its write ended fail ({_error(u)}) yet it is published",
                  attempt=u, checkpoint=cp)
    else:
        found.add("recovered", ordinal, cp.step, "indeterminate write turned out published", attempt=u, checkpoint=cp)


def _error(a: writes.WriteAttempt) -> str:
    return (a.completion.error if a.completion is not None else None) or "no error text"


def _summary(valid: verdict.Validity, c: dict[str, int], n_ordinals: int) -> str:
    head = f"{c['acknowledged']} acknowledged on {n_ordinals} ordinals: {c['lost']} lost, {c['torn']} torn, " \
        f"{c['unexpected']} unexpected; {c['recovered']} recovered"
    extra = []
    if c["retired_by_retention"]:
        extra.append(f"{c['retired_by_retention']} retired by keep-last")
    if c["excused"]:
        extra.append(f"{c['excused']} expected-lost with a deleted claim "
                     "(retention policy or declared new volume; reasons in details)")
    text = head + (", " + ", ".join(extra) if extra else "")
    if valid == verdict.UNKNOWN and not c["acknowledged"]:
        return f"nothing acknowledged ({c['attempted']} attempts): durability not exercised; " + text
    return text
