"""One runner for every scenario: deploy, load, break, heal, resume, read back, judge, clean up.

The order is the claim's logic, so it is fixed here once:

1. the schedule (seeded, or a stored one replayed) is checked against the scenario and written
   into a new run folder before anything runs; every fault's nemesis and options are checked
   before anything is deployed (bad input changes nothing);
2. the system comes up; the identity map is recorded;
3. load and the availability probe start; every ordinal acknowledges a checkpoint;
4. each fault is injected and healed (the heal in ``finally``: an error or Ctrl-C still heals
   it), then the ordinals it hit are asked to resume — a trainer's full read of the newest
   checkpoint;
5. the load runs ``tail_s`` more and is ended gracefully; every ordinal resumes once more;
6. the identity map is recorded again, every volume is read back with the offline verifier;
7. the cluster's logs and final objects are copied into the run folder, and the system is
   removed — whatever happened, Ctrl-C included (an unfinished run is judged as far as its
   evidence goes and keeps its outcome in run.json);
8. the checkers judge the stored run (exactly what ``harness check`` would read) and the run's
   report.html is built.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from harness import facts, probe, report, resume, store, waiting
from harness.checkers import availability, expect, registry
from harness.checkers import faults as fault_checker
from harness.load import runner as load_runner
from harness.nemesis import base
from harness.scenario import evidence, model, schedule, system

Progress = Callable[[str], None]
Attach = Callable[[str, str], None]

#: how long after a heal an ordinal may take to answer a resume before the checker is told
RESUME_DEADLINE_S = 120.0
#: how often the load's tail says how far it is
PROGRESS_EVERY_S = 2.0
#: where a run keeps the cluster's logs and final object state (the report links it)
CLUSTER_LOGS = "cluster-logs"


@runtime_checkable
class ScalesDown(Protocol):
    """A nemesis that removes ordinals (their claims may then go by ``whenScaled``)."""

    @property
    def scaled_down(self) -> Sequence[int]: ...


@dataclasses.dataclass(frozen=True)
class FaultTiming:
    step: int
    fault: str
    target: str
    #: inject invoked → heal completed (what the availability checker calls the fault period)
    period_s: float
    #: heal completed → every hit ordinal resumed (or its deadline passed)
    resume_s: float
    hit: tuple[int, ...] = ()
    #: the scenario's declared hold (inject done → heal starts)
    hold_s: float = 0.0
    #: every hit ordinal resumed within the deadline
    resumed: bool = True
    #: runner overhead = inject→healed minus the longer of the hold and the hit ordinals' outage the
    #: probe saw (last good answer → next good answer, clipped to the period: the cluster's own recovery)
    overhead_s: float | None = None


@dataclasses.dataclass(frozen=True)
class Outcome:
    run_dir: Path
    composed: registry.Composed
    schedule: schedule.Schedule
    timings: tuple[FaultTiming, ...]
    wall_s: float
    #: first fault's delay started → last fault resumed (the schedule's own time)
    schedule_s: float = 0.0
    #: faults healed and resumed, in a run every checker judged valid (else 0)
    verified_faults: int = 0

    @property
    def verified_per_hour(self) -> float:
        return self.verified_faults * 3600.0 / self.schedule_s if self.schedule_s > 0 else 0.0

    def failures(self, required: Sequence[str]) -> list[str]:
        """The required checkers that did not say valid, with their summaries."""
        return [f"{name}: {v.summary}" for name, v in self.composed.verdicts.items()
                if name in required and v.valid is not True]


def execute(
    scn: model.Scenario,
    make_system: Callable[[Path], system.System],
    *,
    seed: int,
    cluster_kind: str,
    replay: schedule.Schedule | None = None,
    base_dir: Path = store.REPORTS_DIR,
    progress: Progress = print,
    attach: Attach | None = None,
    settings: Mapping[str, object] | None = None,
    on_run: Callable[[Path], None] | None = None,
) -> Outcome:
    """Run ``scn`` once; ``settings`` are recorded in run.json beside the scenario's own (the
    pytest node id that replays it, say); ``on_run`` is told the run folder as soon as it exists."""
    started = time.monotonic()
    steps = replay if replay is not None else scn.make_schedule(seed)
    scn.check_schedule(steps)
    timed = scn.duration_s is not None and replay is None
    run = evidence.start_run(scn.name, seed=seed, cluster_kind=cluster_kind,
                             settings={**scn.settings(), **(settings or {})},
                             expectations=scn.expectations, schedule=() if timed else steps, base_dir=base_dir)
    if on_run is not None:
        on_run(run.path)
    if timed:
        progress(f"run folder {run.path}; faults from a seeded mix for {scn.duration_s:g}s, each stored before it runs")
    else:
        progress(f"run folder {run.path}; {len(steps)} faults: "
                 + ", ".join(f"{s.fault}@{s.target}" for s in steps))
    sut = make_system(run.path)
    run.record_settings(system=dict(sut.describe()))  # where it ran (cluster, API server): run.json, as promised
    for fault in scn.faults.values():
        sut.check_fault(fault)
    try:
        sut.up()
        before = sut.identity()
        timings, scaled_down, steps, schedule_s = _faults_under_load(scn, sut, run, steps, progress,
                                                         until_s=scn.duration_s if timed else None)
        after = sut.identity()
        volumes = sut.read_back()
        run.write_facts(facts.RunFacts(
            volumes=volumes, identity_before=before, identity_after=after, retention=sut.retention(),
            keep_last=sut.keep_last(), scaled_down=tuple(sorted(scaled_down)), declared_faults=len(steps)))
    except BaseException as exc:
        outcome: store.Outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        partial = evidence.judge_unfinished(run, scn.checkers, scn.expectations, outcome)
        progress(f"run {outcome}: judged as far as its evidence goes: "
                 + (partial.summary if partial is not None else "its history cannot be read"))
        _report(run.path, progress)  # an interrupted or failed run still gets its page
        raise
    finally:
        try:
            sut.collect(run.path / CLUSTER_LOGS)
        except Exception as exc:  # evidence for debugging; never the reason a run fails
            progress(f"WARNING: {CLUSTER_LOGS}/ not complete: {type(exc).__name__}: {exc}")
        sut.down()
    composed = evidence.judge(run, scn.checkers, scn.expectations, progress=progress, attach=attach)
    _report(run.path, progress)
    timings = _with_overhead(run.path, timings, scn.expectations)
    wall = time.monotonic() - started
    progress(f"scenario {scn.name}: {wall:.1f}s wall; per fault (inject→healed + resume, runner overhead): "
             + "; ".join(f"{t.fault} {t.target} {t.period_s:.1f}s + resume {t.resume_s:.1f}s"
                         + (f" (overhead {t.overhead_s:.2f}s)" if t.overhead_s is not None else "")
                         for t in timings))
    verified = sum(1 for t in timings if t.resumed) if composed.valid is True else 0
    done = Outcome(run.path, composed, steps, tuple(timings), wall, schedule_s, verified)
    overheads = [t.overhead_s for t in timings if t.overhead_s is not None]
    progress(f"verified faults (healed, resumed, judged valid): {verified} in {schedule_s:.1f}s of schedule = "
             f"{done.verified_per_hour:.0f}/h"
             + (f"; runner overhead per fault: mean {sum(overheads) / len(overheads):.2f}s, "
                f"max {max(overheads):.2f}s" if overheads else "")
             + ("" if composed.valid is True else " (run not valid: none counted)"))
    return done


def _with_overhead(run_dir: Path, timings: Sequence[FaultTiming],
                   exp: expect.Expectations) -> list[FaultTiming]:
    """Each fault's runner overhead from the stored history (None when it cannot be told)."""
    try:
        ops_ = store.open_run(run_dir).history()
    except store.StoreError:
        return list(timings)
    periods = fault_checker.fault_periods(ops_)
    if len(periods) != len(timings):
        return list(timings)  # not one period per step: no honest pairing
    spans = availability.outages(ops_, exp.availability)
    out = []
    for t, p in zip(timings, periods, strict=True):
        if p.end is None:
            out.append(t)
            continue
        end = p.end
        mine = [(max(s0, p.start), min(end if s1 is None else s1, end))
                for o in t.hit for s0, s1 in spans.get(o, []) if p.overlaps(s0, s1)]
        outage = max(e for _, e in mine) - min(s0 for s0, _ in mine) if mine else 0.0
        out.append(dataclasses.replace(t, overhead_s=round(max(0.0, end - p.start - max(t.hold_s, outage)), 3)))
    return out


def _report(run_dir: Path, progress: Progress) -> None:
    """Build report.html; a report that cannot be built never changes the scenario's outcome."""
    try:
        page = report.build(run_dir)
    except Exception as exc:  # the verdicts are already stored; say what went wrong and go on
        progress(f"WARNING: report.html not built for {run_dir}: {type(exc).__name__}: {exc}")
        return
    progress(f"report: {page}")


def _faults_under_load(
    scn: model.Scenario, sut: system.System, run: store.Run, steps: schedule.Schedule, progress: Progress, *,
    until_s: float | None,
) -> tuple[list[FaultTiming], set[int], schedule.Schedule, float]:
    """Returns the timings, the scaled-down ordinals, the steps that ran (all of them unless
    ``until_s`` ended the schedule early; then each was stored just before it ran) and the
    schedule's own time (first delay started → last fault resumed)."""
    nemeses = {name: sut.nemesis(fault) for name, fault in scn.faults.items()}
    pause = threading.Event()  # never set: waiting on it is the schedule's own delay, not a guess
    spec = load_runner.LoadSpec(
        endpoints_file=sut.endpoints_file, run_dir=run.path, users=scn.load.users, spawn_rate=scn.load.users,
        duration_s=scn.load.max_s, size_bytes=scn.load.checkpoint_bytes, shards=scn.load.shards,
        request_timeout_s=scn.load.request_timeout_s)
    timings: list[FaultTiming] = []
    scaled_down: set[int] = set()
    ordinals = list(sut.ordinals)
    with (
        run.history_writer("nemesis") as nemesis_rec,
        run.history_writer("probe") as probe_rec,
        run.history_writer("resume") as resume_rec,
        probe.Probe(probe_rec, sut.endpoints, expected=ordinals),
        load_runner.LoadRun(spec) as load,
    ):
        waiting.until(
            "every ordinal to acknowledge a checkpoint before the first fault",
            lambda: (min((c := evidence.acked_per_ordinal(run.path, ordinals)).values()) > 0,
                     f"acks per ordinal {c}"),
            timeout=scn.load.first_ack_timeout_s, interval=0.2)
        ran: list[schedule.FaultStep] = []
        began_faults = time.monotonic()
        for number, step in enumerate(steps):
            if until_s is not None:
                if time.monotonic() - began_faults >= until_s:
                    break
                store.atomic_write_text(run.path / schedule.SCHEDULE_FILE, schedule.to_json([*ran, step]))
            ran.append(step)
            pause.wait(step.delay_s)
            fault = scn.faults[step.fault]
            nemesis = nemeses[step.fault]
            target = sut.resolve(step.target)
            hit = list(nemesis.affected([target]))
            expected = {str(o): fault.unavailable_because for o in hit} if fault.unavailable_because else {}
            of = f"{len(steps)}" if until_s is None else f"until {until_s:g}s"
            progress(f"fault {number + 1}/{of}: {step.fault} {target} ({step.target}; "
                     f"ordinals hit: {hit or 'none'})")
            began = time.monotonic()
            with base.fault(nemesis_rec, nemesis, [target], expected_unavailable=expected):
                pause.wait(fault.hold_s)  # the fault holds; the heal (in finally) waits for recovery
            healed = time.monotonic()
            if isinstance(nemesis, ScalesDown):
                scaled_down.update(nemesis.scaled_down)
            stuck = resume.until_resumed(resume_rec, hit or ordinals, sut.endpoints, number,
                                         deadline_s=RESUME_DEADLINE_S)
            if stuck:
                progress(f"  ordinals {stuck} did not resume within {RESUME_DEADLINE_S:g}s (the checker judges it)")
            timings.append(FaultTiming(number, step.fault, target, round(healed - began, 3),
                                       round(time.monotonic() - healed, 3), tuple(hit), fault.hold_s, not stuck))
        schedule_s = time.monotonic() - began_faults
        progress(f"faults done; load runs {scn.load.tail_s:g}s more, then stops gracefully")
        tail_end = time.monotonic() + scn.load.tail_s
        while (left := tail_end - time.monotonic()) > 0:
            pause.wait(min(PROGRESS_EVERY_S, left))  # the tail itself, cut into steps to say how it goes
            acked = sum(evidence.acked_per_ordinal(run.path, ordinals).values())
            progress(f"  load: {max(0.0, tail_end - time.monotonic()):.0f}s left, {acked:,} checkpoints acknowledged")
        progress("  stopping the load: in-flight writes get their answers first")
        result = load.finish()
        progress(f"locust: {result.requests} requests, {result.failures} failures")
        resume.until_resumed(resume_rec, ordinals, sut.endpoints, None, deadline_s=RESUME_DEADLINE_S)
    return timings, scaled_down, tuple(ran), schedule_s
