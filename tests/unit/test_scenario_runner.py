"""The runner's order: schedule stored first, bad input refused before anything is deployed,
and the system always removed — on failure and on Ctrl-C."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from harness import facts
from harness.nemesis import base
from harness.scenario import model, runner, schedule


class FakeSystem:
    kind = "fake"
    ordinals: Sequence[int] = range(2)

    def __init__(self, run_dir: Path, *, fail_up: BaseException | None = None, bad_fault: bool = False) -> None:
        self.endpoints_file = run_dir / "endpoints.json"
        self.calls: list[str] = []
        self._fail_up = fail_up
        self._bad_fault = bad_fault

    def describe(self) -> Mapping[str, object]:
        return {}

    def check_fault(self, fault: model.Fault) -> None:
        self.calls.append("check")
        if self._bad_fault:
            raise base.NemesisError(f"{fault.nemesis}: unknown option(s) speed; known: none")

    def up(self) -> None:
        self.calls.append("up")
        if self._fail_up is not None:
            raise self._fail_up

    def collect(self, dest: Path) -> None:
        self.calls.append("collect")

    def down(self) -> None:
        self.calls.append("down")

    def endpoints(self) -> Mapping[int, str]:
        return {}

    def identity(self) -> tuple[facts.OrdinalIdentity, ...]:
        return ()

    def nemesis(self, fault: model.Fault) -> base.Nemesis:
        raise AssertionError("not reached in these tests")

    def resolve(self, target: schedule.Target) -> str:
        return str(target)

    def read_back(self) -> tuple[facts.VolumeFacts, ...]:
        return ()

    def retention(self) -> facts.RetentionPolicy:
        return facts.RetentionPolicy()

    def keep_last(self) -> int:
        return 0


SCN = model.Scenario(
    name="fake", claim="the runner keeps its order", faults={"pod-kill": model.Fault("pod-kill", "killed")},
    schedule=lambda ctx: schedule.repeat(ctx.seed, "pod-kill", schedule.ordinals("ordinal", ctx.replicas), 2),
    deploy={"replicas": "2"},
)


def _execute(tmp_path: Path, made: list[FakeSystem], **kwargs: object) -> runner.Outcome:
    def make(run_dir: Path) -> FakeSystem:
        made.append(FakeSystem(run_dir, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    return runner.execute(SCN, make, seed=1, cluster_kind="fake", base_dir=tmp_path, progress=lambda _l: None)


def test_a_bad_nemesis_option_is_refused_before_anything_is_deployed(tmp_path: Path) -> None:
    made: list[FakeSystem] = []
    with pytest.raises(base.NemesisError, match="unknown option"):
        _execute(tmp_path, made, bad_fault=True)
    assert made[0].calls == ["check"]


@pytest.mark.parametrize("failure", [RuntimeError("deploy failed"), KeyboardInterrupt()])
def test_the_system_is_removed_and_the_run_closed_when_up_fails_or_is_interrupted(
        tmp_path: Path, failure: BaseException) -> None:
    made: list[FakeSystem] = []
    with pytest.raises(type(failure)):
        _execute(tmp_path, made, fail_up=failure)
    assert made[0].calls == ["check", "up", "collect", "down"]
    [run_dir] = [p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink()]
    stored = schedule.from_json((run_dir / schedule.SCHEDULE_FILE).read_text())
    assert stored == SCN.make_schedule(1), "the schedule is stored before anything runs"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["ended"], "the run is closed, not left open"
    assert info["outcome"] == ("interrupted" if isinstance(failure, KeyboardInterrupt) else "failed")
    results = json.loads((run_dir / "results.json").read_text())
    assert results["checkers"]["durability"]["valid"] == "unknown"
    assert "before its volumes were read back" in results["checkers"]["durability"]["summary"]
    assert (run_dir / "report.html").exists(), "an interrupted run still gets its page"


def test_a_replayed_schedule_is_checked_against_the_scenario(tmp_path: Path) -> None:
    bad = (schedule.FaultStep(0.1, "drain", schedule.Target("node-of", "0")),)

    def make(run_dir: Path) -> FakeSystem:
        raise AssertionError("nothing may be made for a schedule the scenario cannot run")

    with pytest.raises(model.ScenarioError, match="does not declare"):
        runner.execute(SCN, make, seed=1, cluster_kind="fake", replay=bad, base_dir=tmp_path)
    assert not list(tmp_path.iterdir())
