"""Synthetic run folders, written exactly as a scenario would leave them.

The report is built from a stored run alone, so its tests and its bench need stored runs of
any size and shape — valid or not, judged or not, with or without facts — without a cluster.
This writes one from :class:`harness.checkers.synth.HistoryBuilder` histories: three ordinals
under steady load, a probe per ordinal, seeded pod kills with a heal and a resume after each,
and (optionally) lost or torn checkpoints, then judges it with the real checkers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from pathlib import Path

from harness import facts, history, ops, store
from harness.checkers import expect, registry, synth

#: wall time between write rounds (each round: one write per ordinal)
ROUND_S = 0.1
#: a probe of every ordinal every this many rounds
PROBE_EVERY = 5
FAULT_NAME = "pod-kill"
UNAVAILABLE_BECAUSE = "its pod was force-deleted (grace 0) and is being recreated"


@dataclasses.dataclass(frozen=True, slots=True)
class Shape:
    """What the synthetic run holds; the defaults are a small valid chaos run."""

    n_ops: int = 2_000
    ordinals: int = 3
    faults: int = 3
    seed: int = 7
    #: acknowledged checkpoints removed from the volumes (the durability checker says lost)
    lost: int = 0
    #: checkpoints that fail validation under a final name (torn)
    torn: int = 0
    keep_last: int = 0
    scenario: str = "synthetic-pod-kill"
    cluster_kind: str = "synthetic"
    #: write facts.json / results.json / schedule.json (False: a run that stopped before that)
    with_facts: bool = True
    with_results: bool = True
    with_schedule: bool = True


def build(shape: Shape) -> tuple[list[history.Op], facts.RunFacts, list[dict[str, object]]]:
    """The history (about ``shape.n_ops`` ops), the facts and the schedule of a synthetic run."""
    rng = random.Random(shape.seed)
    b = synth.HistoryBuilder()
    ordinals = range(shape.ordinals)
    rounds_total = max(1, shape.n_ops // (2 * shape.ordinals + (2 * shape.ordinals) // PROBE_EVERY + 1))
    # faults evenly spread over the run, each 20-60 rounds long, on a seeded ordinal
    fault_rounds: dict[int, int] = {}
    if shape.faults:
        spacing = rounds_total // (shape.faults + 1)
        for i in range(shape.faults):
            fault_rounds[spacing * (i + 1)] = rng.randrange(shape.ordinals)
    schedule: list[dict[str, object]] = []
    step = dict.fromkeys(ordinals, 0)
    served: dict[int, int | None] = dict.fromkeys(ordinals, None)
    down: set[int] = set()
    heal_at: dict[int, list[tuple[int, int]]] = {}  # round → [(schedule index, ordinal)]
    resume_due: list[tuple[int, int]] = []
    last_fault_end = 0.0
    rnd = 0
    while len(b.ops) < shape.n_ops:
        target = fault_rounds.get(rnd)
        if target is not None and target not in down:
            heal_at.setdefault(rnd + rng.randrange(20, 60), []).append((len(schedule), target))
            schedule.append({"delay_s": round(b.now - last_fault_end, 3), "fault": FAULT_NAME,
                             "target": f"ordinal:{target}"})
            b.fault_start(FAULT_NAME, [f"{synth.STATEFULSET}-{target}"], {str(target): UNAVAILABLE_BECAUSE})
            down.add(target)
        for index, healed in heal_at.pop(rnd, []):
            b.fault_stop(FAULT_NAME, [f"{synth.STATEFULSET}-{healed}"])
            last_fault_end = b.now
            down.discard(healed)
            resume_due.append((index, healed))
        for o in ordinals:
            if o in down:
                continue
            step[o] += 1
            r = rng.random()
            latency = 0.01 + rng.expovariate(1 / 0.03)
            if r < 0.005:
                b.write(o, step[o], "info", publish=r < 0.0025, latency=latency, process=f"w0-u{o}")
            elif r < 0.008:
                b.write(o, step[o], "fail", latency=latency, process=f"w0-u{o}")
            else:
                b.write(o, step[o], "ok", latency=latency, process=f"w0-u{o}")
                served[o] = step[o]
        while resume_due:
            index, healed = resume_due.pop()
            _resume(b, healed, index, served[healed])
        if rnd % PROBE_EVERY == 0:
            for o in ordinals:
                if o in down:
                    b.probe(o, outcome="fail")
                else:
                    b.probe(o, ready=True, latest_step=served[o])
        b.advance(ROUND_S)
        rnd += 1
    for _, pending in sorted(heal_at.items()):  # a fault still open at the end is healed now
        for index, healed in pending:
            b.fault_stop(FAULT_NAME, [f"{synth.STATEFULSET}-{healed}"])
            down.discard(healed)
            _resume(b, healed, index, served[healed])
    for o in ordinals:
        b.probe(o, ready=True, latest_step=served[o])
        _resume(b, o, None, served[o])
    _break(b, shape, rng)
    if shape.keep_last:
        for o in ordinals:
            keep = sorted(c.step for c in b.checkpoints.get(o, []) if c.valid)[-shape.keep_last:]
            b.checkpoints[o] = [c for c in b.checkpoints.get(o, []) if c.step in keep or not c.valid]
    run_facts = b.facts(ordinals, keep_last=shape.keep_last, declared_faults=len(schedule))
    return b.ops, run_facts, schedule


def _resume(b: synth.HistoryBuilder, ordinal: int, after: int | None, served: int | None) -> None:
    """A trainer's resume after a heal: it reads back the newest checkpoint the ordinal served."""
    proc = f"resume-{ordinal}"
    b.record("invoke", proc, ops.RESUME, {"ordinal": ordinal, "after_fault": after})
    b.advance(0.02)
    if served is None:
        b.record("fail", proc, ops.RESUME, {"ordinal": ordinal, "after_fault": after}, "no checkpoint")
        return
    cp = next((c for c in reversed(b.checkpoints.get(ordinal, [])) if c.step == served and c.valid), None)
    digest = cp.digest if cp is not None and cp.digest is not None else "0" * 32
    b.record("ok", proc, ops.RESUME, {"ordinal": ordinal, "after_fault": after, "step": served, "digest": digest,
                                       "bytes": 1 << 20, "read_seconds": 0.01, "skipped": []})


def _break(b: synth.HistoryBuilder, shape: Shape, rng: random.Random) -> None:
    """Lose ``shape.lost`` acknowledged checkpoints and tear ``shape.torn`` (old ones, so resumes still pass)."""
    acked = [(op.value["ordinal"], op.value["step"]) for op in b.ops
             if op.f == ops.WRITE and op.type == "ok" and isinstance(op.value, dict)]
    old = acked[: max(1, len(acked) // 2)]
    for ordinal, step in rng.sample(old, min(shape.lost, len(old))):
        assert isinstance(ordinal, int)
        assert isinstance(step, int)
        b.unpublish(ordinal, step)
    for ordinal, step in rng.sample(old, min(shape.torn, len(old))):
        assert isinstance(ordinal, int)
        assert isinstance(step, int)
        b.unpublish(ordinal, step)
        b.publish(ordinal, step, None, None, valid=False, problem="shard 1: size 0 != 524288")


def write(path: Path, shape: Shape = Shape()) -> Path:
    """Write a run folder at ``path`` (created; must not exist) and return it."""
    ops_, run_facts, schedule = build(shape)
    path.mkdir(parents=True)
    hist = path / history.HISTORY_DIR
    hist.mkdir()
    files: dict[str, list[str]] = {}
    for op in ops_:  # each file numbers its own ops, as a HistoryWriter would
        name = ("probe" if op.process.startswith("probe-") else "nemesis" if op.process == ops.NEMESIS_PROCESS
                else "resume" if op.process.startswith("resume-") else "locust-w0")
        lines = files.setdefault(name, [])
        lines.append(_op_json(op, len(lines)))
    for name, lines in files.items():
        (hist / f"{name}-synth-1.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    exp = expect.Expectations()
    info = store.RunInfo(
        name=path.name, scenario=shape.scenario, seed=shape.seed, cluster_kind=shape.cluster_kind,
        started=_iso(ops_[0].time), ended=_iso(ops_[-1].time) if shape.with_results else None,
        settings={"generated_by": "harness.report.synthrun", "ordinals": shape.ordinals,
                  "faults": {FAULT_NAME: {"nemesis": FAULT_NAME, "unavailable_because": UNAVAILABLE_BECAUSE}}},
        expectations=exp.to_dict(), versions={"harness": "0.1.0"},
    )
    _json(path / store.RUN_FILE, info.to_dict())
    if shape.with_schedule:
        _json(path / facts.SCHEDULE_FILE, schedule)
    if shape.with_facts:
        _json(path / facts.FACTS_FILE, run_facts.to_dict())
    if shape.with_results:
        stored = store.open_run(path)
        judged_facts = stored.facts() if shape.with_facts else run_facts
        composed = registry.compose(None, stored.history(), judged_facts, exp)
        _json(path / store.RESULTS_FILE, composed.to_dict())
    return path


def _op_json(op: history.Op, index: int) -> str:
    """``Op.to_json`` with the file's own index, without ``dataclasses.asdict``'s deep copies
    (a 100,000-op run is written in a second, not twenty)."""
    return json.dumps({"error": op.error, "f": op.f, "index": index, "mono": op.mono, "process": op.process,
                       "time": op.time, "type": op.type, "value": op.value}, separators=(",", ":"), sort_keys=True)


def _json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")
