"""Synthetic histories and facts with a controlled clock.

The checkers are pure, so they are tested — and benchmarked — on histories built here
rather than recorded from a cluster: the unit tests, ``harness bench checkers`` and the
example run under ``tests/data`` all use this one builder, so what they exercise has the
exact shapes :mod:`harness.ops` and :mod:`harness.facts` declare.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Literal, TypeAlias

from harness import facts, history, ops

Outcome: TypeAlias = Literal["ok", "fail", "info", "never"]

STATEFULSET = "ckpt"
NAMESPACE = "chaos-test"


def digest_of(ordinal: int, step: int, request_id: str) -> str:
    return hashlib.blake2b(f"{ordinal}/{step}/{request_id}".encode(), digest_size=16).hexdigest()


def claim_of(ordinal: int) -> str:
    return f"data-{STATEFULSET}-{ordinal}"


@dataclasses.dataclass(frozen=True, slots=True)
class WriteRecord:
    """What the builder recorded for one write (for tests to point at)."""

    ordinal: int
    step: int
    request_id: str
    digest: str
    outcome: Outcome
    invoke: int
    completion: int | None


@dataclasses.dataclass(slots=True)
class _Open:
    ordinal: int
    step: int
    request_id: str
    process: str
    invoke: int
    nbytes: int


class HistoryBuilder:
    """Appends ops with a clock that only moves when told to (``advance``)."""

    def __init__(self, t0: float = 1_796_000_000.0, mono0: float = 5_000.0) -> None:
        self.t0 = t0
        self.now = t0
        self._mono0 = mono0
        self.ops: list[history.Op] = []
        #: what the builder published on each ordinal's volume (valid checkpoints and torn ones)
        self.checkpoints: dict[int, list[facts.CheckpointFact]] = {}
        self._rid = 0

    # --- raw ops ---------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        self.now += seconds

    def record(
        self, type: history.OpType, process: str, f: str, value: history.JsonValue = None, error: str | None = None
    ) -> history.Op:
        op = history.Op(index=len(self.ops), time=self.now, mono=self._mono0 + (self.now - self.t0), type=type,
                        process=process, f=f, value=value, error=error)
        self.ops.append(op)
        return op

    # --- writes ------------------------------------------------------------------------------
    def begin_write(self, ordinal: int, step: int, *, process: str | None = None, nbytes: int = 1 << 20,
                    request_id: str | None = None, send_step: bool = False) -> _Open:
        rid = request_id or self._next_rid()
        proc = process or f"w-{ordinal}"
        value: dict[str, history.JsonValue] = {"ordinal": ordinal, "request_id": rid, "bytes": nbytes, "shards": 2}
        if send_step:
            value["step"] = step
        op = self.record("invoke", proc, ops.WRITE, value)
        return _Open(ordinal, step, rid, proc, op.index, nbytes)

    def end_write(self, w: _Open, outcome: Outcome, *, publish: bool | None = None, digest: str | None = None,
                  error: str | None = None, epoch: str = "e1") -> WriteRecord:
        """Complete a write. ``publish`` (default: only when ok) puts its checkpoint on the volume."""
        d = digest or digest_of(w.ordinal, w.step, w.request_id)
        done: history.Op | None = None
        if outcome == "ok":
            done = self.record("ok", w.process, ops.WRITE, {
                "ordinal": w.ordinal, "step": w.step, "digest": d, "bytes": w.nbytes, "epoch": epoch,
                "durable_at": self.now, "request_id": w.request_id,
            })
        elif outcome in ("fail", "info"):
            inv = self.ops[w.invoke].value
            done = self.record(outcome, w.process, ops.WRITE, inv,
                               error or ("nothing published" if outcome == "fail" else "timed out"))
        if publish if publish is not None else outcome == "ok":
            self.publish(w.ordinal, w.step, d, w.request_id)
        return WriteRecord(w.ordinal, w.step, w.request_id, d, outcome, w.invoke,
                           None if done is None else done.index)

    def write(self, ordinal: int, step: int, outcome: Outcome = "ok", *, latency: float = 0.01,
              publish: bool | None = None, process: str | None = None, nbytes: int = 1 << 20,
              send_step: bool = False, digest: str | None = None, epoch: str = "e1") -> WriteRecord:
        w = self.begin_write(ordinal, step, process=process, nbytes=nbytes, send_step=send_step)
        self.advance(latency)
        return self.end_write(w, outcome, publish=publish, digest=digest, epoch=epoch)

    def publish(self, ordinal: int, step: int, digest: str | None, request_id: str | None, *, valid: bool = True,
                problem: str | None = None, manifest_ordinal: int | None = None) -> facts.CheckpointFact:
        cp = facts.CheckpointFact(
            ordinal=ordinal if manifest_ordinal is None else manifest_ordinal,
            step=step, name=f"step-{step:08d}", valid=valid, digest=digest, request_id=request_id, problem=problem,
        )
        self.checkpoints.setdefault(ordinal, []).append(cp)
        return cp

    def unpublish(self, ordinal: int, step: int) -> None:
        """Remove a checkpoint from the volume (what a lost write or the writer's retention leaves)."""
        self.checkpoints[ordinal] = [c for c in self.checkpoints.get(ordinal, []) if c.step != step]

    # --- nemesis and probes -----------------------------------------------------------------
    def fault_start(self, fault: str, targets: list[str], expected_unavailable: dict[str, str] | None = None,
                    *, latency: float = 0.05, graceful: bool = False) -> None:
        value: dict[str, history.JsonValue] = {"fault": fault, "targets": list(targets)}
        if expected_unavailable:
            value["expected_unavailable"] = dict(expected_unavailable)
        if graceful:
            value["graceful_stop"] = True
        self.record("invoke", ops.NEMESIS_PROCESS, ops.FAULT_START, value)
        self.advance(latency)
        self.record("ok", ops.NEMESIS_PROCESS, ops.FAULT_START, value)

    def fault_stop(self, fault: str, targets: list[str], *, latency: float = 0.05,
                   outcome: Literal["ok", "info", "never"] = "ok") -> None:
        value: dict[str, history.JsonValue] = {"fault": fault, "targets": list(targets)}
        self.record("invoke", ops.NEMESIS_PROCESS, ops.FAULT_STOP, value)
        self.advance(latency)
        if outcome != "never":
            self.record(outcome, ops.NEMESIS_PROCESS, ops.FAULT_STOP, value)

    def probe(self, ordinal: int, *, ready: bool = True, latest_step: int | None = None,
              outcome: Literal["ok", "fail", "info"] = "ok", latency: float = 0.005) -> None:
        proc = f"probe-{ordinal}"
        self.record("invoke", proc, ops.READ, {"ordinal": ordinal})
        self.advance(latency)
        if outcome == "ok":
            self.record("ok", proc, ops.READ, {"ordinal": ordinal, "ready": ready, "latest_step": latest_step})
        else:
            self.record(outcome, proc, ops.READ, {"ordinal": ordinal}, "not ready" if outcome == "fail" else "timeout")

    # --- facts -------------------------------------------------------------------------------
    def facts(self, ordinals: range | list[int], *, keep_last: int = 0,
              retention: facts.RetentionPolicy | None = None, scaled_down: tuple[int, ...] = (),
              without_volume: tuple[int, ...] = (), declared_faults: int | None = None) -> facts.RunFacts:
        """Facts as the verifier would read them back (each volume read for its own ordinal's
        claim); identity unchanged before/after."""
        idents = tuple(identity_of(o) for o in ordinals)
        volumes = []
        for o in ordinals:
            if o in without_volume:
                continue
            cps = tuple(sorted(self.checkpoints.get(o, []), key=lambda c: c.step))
            valid = [c.step for c in cps if c.valid]
            volumes.append(facts.VolumeFacts(
                ordinal=o, checkpoints=cps, stamp=stamp_of(o),
                latest_valid_step=max(valid) if valid else None, read_as=o,
            ))
        return facts.RunFacts(
            volumes=tuple(volumes), identity_before=idents, identity_after=idents,
            retention=retention or facts.RetentionPolicy(), keep_last=keep_last, scaled_down=scaled_down,
            declared_faults=declared_faults,
        )

    def _next_rid(self) -> str:
        self._rid += 1
        return f"r{self._rid:08d}"


def identity_of(ordinal: int, *, generation: int = 0) -> facts.OrdinalIdentity:
    """A plausible cluster map entry; ``generation`` > 0 models a claim re-created by policy."""
    g = f"-g{generation}" if generation else ""
    return facts.OrdinalIdentity(
        ordinal=ordinal, pod=f"{STATEFULSET}-{ordinal}", claim=claim_of(ordinal),
        claim_uid=f"uid-{ordinal}{g}", volume=f"pv-{ordinal}{g}", node=f"node-{ordinal % 3}",
        volume_id=f"vol-{ordinal}{g}",
    )


def stamp_of(ordinal: int, *, generation: int = 0, stamped_for: int | None = None) -> facts.IdentityStamp:
    g = f"-g{generation}" if generation else ""
    o = ordinal if stamped_for is None else stamped_for
    return facts.IdentityStamp(statefulset=STATEFULSET, namespace=NAMESPACE, ordinal=o, claim=claim_of(o),
                               volume_id=f"vol-{o}{g}")
