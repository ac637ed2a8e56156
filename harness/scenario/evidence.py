"""The run folder's evidence around a scenario: created with its schedule first, judged last.

The schedule is stored before anything executes (rule 3), so a run can be replayed; judging
reads the stored run back exactly as ``harness check`` would, so the live verdict and a later
re-check can never disagree about what the evidence was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness import facts, history, ops, store
from harness.checkers import expect, registry
from harness.load import runner
from harness.scenario import schedule as schedule_mod


def start_run(
    scenario: str,
    *,
    seed: int,
    cluster_kind: str,
    settings: Mapping[str, object],
    expectations: expect.Expectations,
    schedule: Sequence[schedule_mod.FaultStep],
    base_dir: Path = store.REPORTS_DIR,
) -> store.Run:
    """The run folder, with the schedule stored before anything executes (so a run can be replayed)."""
    run = store.create_run(scenario, seed=seed, cluster_kind=cluster_kind, settings=settings,
                           expectations=expectations.to_dict(), base=base_dir)
    store.atomic_write_text(run.path / schedule_mod.SCHEDULE_FILE, schedule_mod.to_json(schedule))
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
    run.finish(outcome="finished")
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


def judge_unfinished(run: store.Run, checkers: Sequence[str], expectations: expect.Expectations,
                     outcome: store.Outcome) -> registry.Composed | None:
    """Close a run that did not finish and judge it as far as its evidence goes: the history is
    judged, the checkers that need the read-back say unknown. None when not even that can be
    read (a broken history is left for ``harness check`` to report)."""
    run.finish(outcome=outcome)
    stored = store.open_run(run.path)
    try:
        ops_ = stored.history()
        run_facts = stored.facts() if stored.has_facts() else facts.RunFacts()
    except store.StoreError:
        return None
    composed = registry.compose(list(checkers), ops_, run_facts, expectations, facts_read=stored.has_facts())
    run.write_results(composed.to_dict())
    return composed


def fault_count(run_dir: Path) -> int:
    """Faults the history says were injected (``start`` completed ok)."""
    return sum(1 for op in history.read_history(run_dir) if op.f == ops.FAULT_START and op.type == "ok")
