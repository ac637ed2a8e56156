"""No fault, no verdict: a run that declares faults is never valid unless they took effect.

Judged three ways, all of which must agree: the ``faults`` checker alone, the composition
(whichever checkers a scenario names), and a stored run folder judged the way the live
scenario step does (open the folder, compose the named checkers over its history and facts)
and by ``harness check`` — those two only see what the run folder says, so they prove the
rule is on by default.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness import cli, facts, history, ops, store
from harness.checkers import expect, faults, registry, synth

EXP = expect.Expectations()
ORDINALS = range(2)
#: what the pod-kill scenario names; "faults" is not among them on purpose
SCENARIO_CHECKERS = ("durability", "identity", "availability", "perf")
FAULT: dict[str, history.JsonValue] = {"fault": "pod-kill", "targets": ["ckpt-0"],
                                       "expected_unavailable": {"0": "its pod was killed"}}


def _start(b: synth.HistoryBuilder, outcome: str) -> None:
    """One fault start as :func:`harness.nemesis.base.fault` records it, healed afterwards."""
    if outcome == "ok":
        b.fault_start("pod-kill", ["ckpt-0"], {"0": "its pod was killed"})
        b.fault_stop("pod-kill", ["ckpt-0"])
        return
    b.record("invoke", ops.NEMESIS_PROCESS, ops.FAULT_START, FAULT)
    b.advance(0.05)
    if outcome != "never":
        b.record(outcome, ops.NEMESIS_PROCESS, ops.FAULT_START, FAULT,  # type: ignore[arg-type]
                 "pod not found" if outcome == "fail" else "TimeoutError()")
        b.fault_stop("pod-kill", ["ckpt-0"])


def _history(starts: tuple[str, ...]) -> synth.HistoryBuilder:
    """Load and probes on two ordinals, every checkpoint intact, and these fault starts."""
    b = synth.HistoryBuilder()
    for o in ORDINALS:
        b.probe(o, latest_step=None)
        b.write(o, 1)
    for outcome in starts:
        b.advance(0.2)
        _start(b, outcome)
        b.advance(0.2)
    for o in ORDINALS:
        b.write(o, 2)
        b.probe(o, latest_step=2)
    return b


#: (fault starts in the history, declared faults) that took no effect at all
NONE_TOOK_EFFECT = {
    "no fault ops": ((), 2),
    "only failed starts": (("fail", "fail"), 2),
    "only info starts": (("info", "info"), 2),
}


@pytest.mark.parametrize("case", list(NONE_TOOK_EFFECT))
def test_declared_faults_that_never_took_effect_are_unknown(case: str) -> None:
    starts, declared = NONE_TOOK_EFFECT[case]
    b = _history(starts)
    v = faults.check(b.ops, b.facts(ORDINALS, declared_faults=declared), EXP)
    assert v.valid == "unknown"
    assert v.summary.startswith(f"declared {declared} faults, none took effect")
    assert v.details["took_effect"] == 0
    assert len(v.details["not_taken"]) == len(starts)  # type: ignore[arg-type]


def test_failed_and_indeterminate_starts_are_counted_apart() -> None:
    b = _history(("fail", "info", "never"))
    v = faults.check(b.ops, b.facts(ORDINALS, declared_faults=3), EXP)
    assert v.valid == "unknown"
    assert (v.details["failed"], v.details["indeterminate"]) == (1, 2)
    assert "(1 starts failed, 2 indeterminate)" in v.summary
    assert [t["outcome"] for t in v.details["not_taken"]] == ["fail", "info", "info"]  # type: ignore[attr-defined]


def test_one_declared_fault_that_took_effect_is_valid() -> None:
    b = _history(("ok",))
    v = faults.check(b.ops, b.facts(ORDINALS, declared_faults=1), EXP)
    assert v.valid is True
    assert v.summary == "all 1 declared faults took effect"


def test_fewer_or_more_faults_than_declared_is_unknown() -> None:
    b = _history(("ok", "fail"))
    fewer = faults.check(b.ops, b.facts(ORDINALS, declared_faults=2), EXP)
    assert fewer.valid == "unknown"
    assert fewer.summary.startswith("declared 2 faults, only 1 took effect")
    more = faults.check(_history(("ok", "ok")).ops, b.facts(ORDINALS, declared_faults=1), EXP)
    assert more.valid == "unknown"


def test_faults_checker_asked_of_a_run_without_a_schedule_cannot_pass() -> None:
    b = _history(("ok",))
    assert faults.check(b.ops, b.facts(ORDINALS), EXP).valid == "unknown"
    assert faults.check([], facts.RunFacts(declared_faults=0), EXP).valid is True  # declared none, none came


@pytest.mark.parametrize("case", list(NONE_TOOK_EFFECT))
def test_composition_adds_faults_whichever_checkers_were_named(case: str) -> None:
    starts, declared = NONE_TOOK_EFFECT[case]
    b = _history(starts)
    composed = registry.compose(SCENARIO_CHECKERS, b.ops, b.facts(ORDINALS, declared_faults=declared), EXP)
    assert all(composed.verdicts[name].valid is True for name in SCENARIO_CHECKERS)  # the four passes
    assert composed.verdicts["faults"].valid == "unknown"
    assert composed.valid == "unknown"


@pytest.mark.parametrize("declared", [None, 0])
def test_runs_that_declare_no_faults_are_judged_as_before(declared: int | None) -> None:
    b = _history(())
    run = b.facts(ORDINALS, declared_faults=declared)
    for names in (None, list(SCENARIO_CHECKERS)):
        composed = registry.compose(names, b.ops, run, EXP)
        assert list(composed.verdicts) == list(SCENARIO_CHECKERS)
        assert composed.valid is True


# --- stored runs: what the live scenario and `harness check` read ------------------------


def _stored_run(base: Path, b: synth.HistoryBuilder, schedule: int | None) -> store.Run:
    """A run folder as a scenario leaves it: schedule.json first (a plain load run has none),
    then history and facts."""
    run = store.create_run("pod-kill" if schedule is not None else "load", seed=7, cluster_kind="synthetic",
                           settings={"kills": schedule}, expectations=EXP.to_dict(), base=base)
    if schedule is not None:
        steps = [{"delay_s": 0.5, "fault": "pod-kill", "target": "ordinal:0"} for _ in range(schedule)]
        store.atomic_write_text(run.path / "schedule.json", json.dumps(steps))
    (run.history_dir / "synth.jsonl").write_text("".join(op.to_json() + "\n" for op in b.ops))
    run.write_facts(b.facts(ORDINALS))  # what a scenario stores: it does not repeat the schedule
    return run


def _judge(run: store.Run) -> tuple[object, dict[str, object]]:
    """What the scenario's judging step does: the named checkers over the stored evidence."""
    stored = store.open_run(run.path)
    composed = registry.compose(list(SCENARIO_CHECKERS), stored.history(), stored.facts(), EXP)
    return composed.valid, {name: v.valid for name, v in composed.verdicts.items()}


def _check(run: store.Run) -> tuple[int, str]:
    result = CliRunner().invoke(cli.build_app(), ["check", str(run.path)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


@pytest.mark.parametrize("case", list(NONE_TOOK_EFFECT))
def test_live_judge_and_harness_check_never_pass_a_run_whose_faults_never_took_effect(
    tmp_path: Path, case: str
) -> None:
    starts, declared = NONE_TOOK_EFFECT[case]
    run = _stored_run(tmp_path, _history(starts), declared)
    valid, verdicts = _judge(run)
    assert valid is not True, f"a chaos run without chaos passed: {verdicts}"
    assert verdicts.get("faults") == "unknown"
    code, out = _check(run)
    assert code == 2, out
    assert f"declared {declared} faults, none" in out


def test_harness_check_adds_faults_to_a_run_judged_before_it_existed(tmp_path: Path) -> None:
    run = _stored_run(tmp_path, _history(("info",)), 1)
    # results.json of a run judged live before the faults checker: it names only the four
    store.atomic_write_text(run.path / store.RESULTS_FILE, json.dumps({"checkers": dict.fromkeys(SCENARIO_CHECKERS)}))
    code, out = _check(run)
    assert code == 2, out
    assert "faults" in out


@pytest.mark.parametrize(
    ("schedule", "starts", "expected"),
    [
        (1, ("ok",), {**dict.fromkeys(SCENARIO_CHECKERS, True), "faults": True}),
        (0, (), dict.fromkeys(SCENARIO_CHECKERS, True)),
        (None, (), dict.fromkeys(SCENARIO_CHECKERS, True)),
    ],
    ids=["one fault took effect", "zero faults declared", "no schedule (plain load run)"],
)
def test_runs_whose_faults_happened_or_that_declare_none_stay_valid(
    tmp_path: Path, schedule: int | None, starts: tuple[str, ...], expected: dict[str, object]
) -> None:
    run = _stored_run(tmp_path, _history(starts), schedule)
    assert _judge(run) == (True, expected)
    code, out = _check(run)
    assert code == 0, out


def test_a_schedule_that_disagrees_with_facts_json_is_bad_input(tmp_path: Path) -> None:
    run = _stored_run(tmp_path, _history(("ok",)), 1)
    raw = json.loads((run.path / facts.FACTS_FILE).read_text())
    raw["declared_faults"] = 3
    (run.path / facts.FACTS_FILE).write_text(json.dumps(raw))
    with pytest.raises(facts.FactsError, match=r"declares 3 faults but schedule\.json beside it schedules 1"):
        facts.RunFacts.load(run.path / facts.FACTS_FILE)


@pytest.mark.parametrize(
    "breakage",
    [lambda p: p.write_text("{"), lambda p: p.write_text('{"delay_s": 1}'), lambda p: p.write_text("[1, 2]")],
)
def test_a_malformed_schedule_is_a_facts_error(tmp_path: Path, breakage: Callable[[Path], object]) -> None:
    run = _stored_run(tmp_path, _history(()), 1)
    breakage(run.path / facts.SCHEDULE_FILE)
    with pytest.raises(facts.FactsError, match="schedule"):
        facts.RunFacts.load(run.path / facts.FACTS_FILE)


def test_facts_read_the_schedule_file_the_scenario_writes() -> None:
    # imported by name: the layering forbids facts to import the scenario, so nothing else ties them
    scenario_schedule = importlib.import_module("harness.scenario.schedule")
    assert facts.SCHEDULE_FILE == scenario_schedule.SCHEDULE_FILE
