"""What every durability scenario does, whatever the cluster and the fault.

A scenario is: a run folder with its seeded schedule written first (rule 3); load and the
availability probe running while the schedule's faults are injected and healed; then the
checkers judging the stored evidence, with results.json written and a summary printed. The
scenario itself only says what to deploy, which nemesis to use and how to read the volumes
back; the rest is here, once.
"""

from __future__ import annotations

import dataclasses
import json
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness import history, ops, probe, store, waiting
from harness.checkers import expect, registry
from harness.load import runner
from harness.nemesis import base

SCHEDULE_FILE = "schedule.json"


@dataclasses.dataclass(frozen=True, slots=True)
class FaultStep:
    """One fault of a schedule: wait ``delay_s`` after the previous fault healed, then hit ``target``."""

    delay_s: float
    target: str

    def to_dict(self) -> dict[str, object]:
        return {"delay_s": self.delay_s, "target": self.target}


def seeded_schedule(
    seed: int, count: int, targets: Sequence[str], *, delay_s: tuple[float, float] = (0.5, 2.5)
) -> tuple[FaultStep, ...]:
    """``count`` faults, pure from the seed: a delay drawn in ``delay_s`` and a target each."""
    if not targets:
        raise ValueError("a fault schedule needs at least one target (a fault never defaults to everything)")
    low, high = delay_s
    if not 0 <= low <= high:
        raise ValueError(f"delay range must satisfy 0 <= low <= high, got {delay_s}")
    rng = random.Random(seed)
    return tuple(
        FaultStep(delay_s=round(rng.uniform(low, high), 3), target=targets[rng.randrange(len(targets))])
        for _ in range(count)
    )


def schedule_from_json(text: str) -> tuple[FaultStep, ...]:
    """Read a stored schedule.json back (replaying a run)."""
    raw = json.loads(text)
    if not isinstance(raw, list):
        raise ValueError("a schedule is a JSON list of {delay_s, target}")
    return tuple(FaultStep(delay_s=float(step["delay_s"]), target=str(step["target"])) for step in raw)


def start_run(
    scenario: str,
    *,
    seed: int,
    cluster_kind: str,
    settings: Mapping[str, object],
    expectations: expect.Expectations,
    schedule: Sequence[FaultStep],
    base_dir: Path = store.REPORTS_DIR,
) -> store.Run:
    """The run folder, with the schedule stored before anything executes (so a run can be replayed)."""
    run = store.create_run(scenario, seed=seed, cluster_kind=cluster_kind, settings=settings,
                           expectations=expectations.to_dict(), base=base_dir)
    store.atomic_write_text(run.path / SCHEDULE_FILE, json.dumps([s.to_dict() for s in schedule], indent=1) + "\n")
    return run


def acked_per_ordinal(run_dir: Path, ordinals: Sequence[int]) -> dict[int, int]:
    """How many writes each ordinal acknowledged so far (from the history on disk)."""
    counts = dict.fromkeys(ordinals, 0)
    for op in history.read_history(run_dir):
        if op.f == ops.WRITE and op.type == "ok" and isinstance(op.value, dict):
            ordinal = op.value.get("ordinal")
            if isinstance(ordinal, int) and ordinal in counts:
                counts[ordinal] += 1
    return counts


@dataclasses.dataclass(frozen=True)
class FaultPlan:
    """How one scenario's faults run: the nemesis, the schedule, and each target's ordinal and why it
    is expected to be unavailable while its fault lasts."""

    nemesis: base.Nemesis
    schedule: Sequence[FaultStep]
    ordinal_of: Callable[[str], int]
    unavailable_because: str


def run_faults_under_load(
    run: store.Run,
    load_spec: runner.LoadSpec,
    endpoints: Callable[[], Mapping[int, str]],
    plan: FaultPlan,
    *,
    ordinals: Sequence[int],
    first_ack_timeout_s: float = 60.0,
    progress: Callable[[str], None] = print,
) -> runner.LoadResult:
    """Load + probe running, every ordinal acknowledged once, then the schedule; returns the load's result.

    Each fault is healed before the next delay starts (and in ``finally`` on any failure, by
    :func:`harness.nemesis.base.fault`); the load runs its full duration after the last fault.
    """
    pause = threading.Event()  # never set: waiting on it is the schedule's own delay, not a guess
    with (
        run.history_writer(ops.NEMESIS_PROCESS) as nemesis_rec,
        run.history_writer("probe") as probe_rec,
        probe.Probe(probe_rec, endpoints),
        runner.LoadRun(load_spec) as load,
    ):
        waiting.until(
            "every ordinal to acknowledge a checkpoint before the first fault",
            lambda: (min((c := acked_per_ordinal(run.path, ordinals)).values()) > 0, f"acks per ordinal {c}"),
            timeout=first_ack_timeout_s,
            interval=0.2,
        )
        for number, step in enumerate(plan.schedule, 1):
            pause.wait(step.delay_s)
            ordinal = plan.ordinal_of(step.target)
            progress(f"fault {number}/{len(plan.schedule)}: {plan.nemesis.name} {step.target}")
            with base.fault(nemesis_rec, plan.nemesis, [step.target],
                            expected_unavailable={str(ordinal): plan.unavailable_because}):
                pass  # the fault period is inject → healed (the nemesis waits for recovery)
        progress("faults done; load runs to the end of its duration")
        return load.wait()


def judge(
    run: store.Run,
    checkers: Sequence[str],
    expectations: expect.Expectations,
    *,
    load: runner.LoadResult | None = None,
    progress: Callable[[str], None] = print,
    attach: Callable[[str, str], None] | None = None,
) -> registry.Composed:
    """Judge the stored evidence (exactly what ``harness check`` would read), write results.json,
    close the run, and print the verdicts (and ``attach`` them, e.g. to the HTML report)."""
    stored = store.open_run(run.path)
    composed = registry.compose(list(checkers), stored.history(), stored.facts(), expectations)
    run.write_results(composed.to_dict())
    run.finish()
    lines = [f"run folder: {run.path}"]
    if load is not None:
        lines.append(f"locust: {load.requests} requests, {load.failures} failures")
    lines.append(composed.summary)
    lines += [f"  {name}: {v.summary}" for name, v in composed.verdicts.items()]
    progress("\n" + "\n".join(lines))
    if attach is not None:
        attach("verdicts", "\n".join(lines))
        attach("results.json", json.dumps(composed.to_dict(), indent=1, sort_keys=True, default=str))
    return composed


def fault_count(run_dir: Path) -> int:
    """Faults the history says were injected (``start`` completed ok)."""
    return sum(1 for op in history.read_history(run_dir) if op.f == ops.FAULT_START and op.type == "ok")
