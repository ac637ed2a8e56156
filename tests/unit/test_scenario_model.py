"""A scenario is validated as data, before any cluster is touched."""

from __future__ import annotations

import pytest

from harness.scenario import model, schedule

KILL = model.Fault("pod-kill", "pod killed")


def _scenario(**overrides: object) -> model.Scenario:
    fields: dict[str, object] = {
        "name": "pod-kill", "claim": "pods come back", "faults": {"pod-kill": KILL},
        "schedule": lambda ctx: schedule.repeat(ctx.seed, "pod-kill", schedule.ordinals("ordinal", ctx.replicas), 2),
        "deploy": {"replicas": "3"},
    }
    fields.update(overrides)
    return model.Scenario(**fields)  # type: ignore[arg-type]


def test_a_valid_scenario_makes_its_seeded_schedule_and_records_its_settings() -> None:
    scn = _scenario()
    assert scn.replicas == 3
    assert scn.make_schedule(4) == scn.make_schedule(4)
    assert scn.settings()["faults"] == {"pod-kill": {"nemesis": "pod-kill", "options": {},
                                                     "unavailable_because": "pod killed"}}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"deploy": {"replicas": "-1"}}, "deploy --replicas"),
    ({"deploy": {"replika": "3"}}, "unknown spec option"),
    ({"checkers": ("durability", "durabilty")}, "unknown checker 'durabilty'"),
    ({"claim": "  "}, "state the claim"),
    ({"faults": {}}, "declares no fault"),
    ({"name": "pod kill"}, "use letters, digits and '-'"),
    ({"system": "vm"}, "is not one of"),
])
def test_a_scenario_that_cannot_run_fails_at_construction_with_one_line(overrides: dict[str, object],
                                                                         message: str) -> None:
    with pytest.raises(model.ScenarioError, match=message):
        _scenario(**overrides)


def test_a_schedule_may_only_use_declared_faults_and_existing_ordinals() -> None:
    scn = _scenario()
    with pytest.raises(model.ScenarioError, match="uses fault 'drain', which the scenario does not declare"):
        scn.check_schedule((schedule.FaultStep(1.0, "drain", schedule.Target("node-of", "0")),))
    with pytest.raises(model.ScenarioError, match=r"targets ordinal:3, but the set has ordinals 0\.\.2"):
        scn.check_schedule((schedule.FaultStep(1.0, "pod-kill", schedule.Target("ordinal", "3")),))
    with pytest.raises(model.ScenarioError, match="has no fault"):
        scn.check_schedule(())


def test_a_bad_load_profile_is_refused() -> None:
    with pytest.raises(model.ScenarioError, match="users must be >= 1"):
        model.LoadProfile(users=0)
    with pytest.raises(model.ScenarioError, match="tail_s"):
        model.LoadProfile(tail_s=10, max_s=5)
