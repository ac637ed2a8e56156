"""delete-claim destroys an ordinal's volume: refused unless the scenario opts in and declares it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import facts, history
from harness.checkers import expect, identity, resume, synth
from harness.clusters import existing
from harness.nemesis import base, claims, context, registry
from harness.scenario import model, schedule

REASON = "the scenario deletes ordinal 1's claim"


def ctx(tmp_path: Path) -> context.SetContext:
    cluster = existing.ExistingCluster(kubeconfig_path=tmp_path / "cfg", context_name="c")
    return context.SetContext(api=object(), cluster=cluster, namespace="chaos-x", statefulset="ckpt", replicas=3,
                              endpoints_file=tmp_path / "endpoints.json")


@pytest.mark.parametrize(("options", "message"), [
    ({}, r"delete-claim: option\(s\) accept_data_loss required"),
    ({"accept_data_loss": False}, "delete-claim: refused: deleting a claim destroys the ordinal's volume"),
    ({"accept_data_loss": "yes"}, "option accept_data_loss must be bool"),
    ({"accept_data_loss": 1}, "option accept_data_loss must be bool"),
    ({"accept_data_loss": True, "grace": 0}, "delete-claim: unknown option"),
])
def test_delete_claim_is_refused_without_an_explicit_opt_in(options: dict[str, object], message: str) -> None:
    with pytest.raises(base.NemesisError, match=message) as err:
        registry.check("delete-claim", options)
    assert "\n" not in str(err.value)


def test_build_refuses_too_and_an_opted_in_nemesis_only_hits_pods_of_its_set(tmp_path: Path) -> None:
    with pytest.raises(base.NemesisError, match="refused"):
        registry.build("delete-claim", ctx(tmp_path), {"accept_data_loss": False})
    nemesis = registry.build("delete-claim", ctx(tmp_path), {"accept_data_loss": True})
    assert isinstance(nemesis, claims.DeleteClaim)
    assert registry.needs("delete-claim") is None
    assert nemesis.affected(["ckpt-1"]) == [1]
    for wrong in ("ckpt", "ckpt-3", "other-1", "ckpt-01"):
        with pytest.raises(base.NemesisError, match="is not a pod of chaos-x/ckpt"):
            nemesis.affected([wrong])
    with pytest.raises(base.NemesisError, match="is not a pod"):
        nemesis.inject(["ckpt-7"])  # refused before the API (a bare object here) is touched


def _scenario(target: schedule.Target, new_volumes: dict[int, str]) -> model.Scenario:
    return model.Scenario(
        name="dc", claim="c", deploy={"replicas": "3"},
        faults={"dc": model.Fault("delete-claim", "claim deleted", options={"accept_data_loss": True})},
        schedule=lambda _ctx: (schedule.FaultStep(0.0, "dc", target),),
        expectations=expect.Expectations(new_volumes=new_volumes))


@pytest.mark.parametrize(("target", "declared"), [
    (schedule.Target("ordinal", "1"), {}),
    (schedule.Target("ordinal", "1"), {2: REASON}),
    (schedule.Target("node-of", "1"), {1: REASON}),
    (schedule.Target("set"), {1: REASON}),
])
def test_a_schedule_may_only_delete_claims_the_scenario_declared_expected_new(
        target: schedule.Target, declared: dict[int, str]) -> None:
    with pytest.raises(model.ScenarioError, match=r"refused unless expectations\.new_volumes declares"):
        _scenario(target, declared).make_schedule(1)


def test_a_declared_target_is_accepted_and_the_declaration_round_trips() -> None:
    scn = _scenario(schedule.Target("ordinal", "1"), {1: REASON})
    assert [str(s.target) for s in scn.make_schedule(1)] == ["ordinal:1"]
    stored = expect.Expectations.from_dict(json.loads(json.dumps(scn.expectations.to_dict())))  # as in run.json
    assert stored.new_volumes == {1: REASON}
    with pytest.raises(ValueError, match="new_volumes keys should be ordinals"):
        expect.Expectations.from_dict({"new_volumes": {"one": REASON}})


def test_identity_names_the_declared_new_volume_and_holds_the_others() -> None:
    before = tuple(synth.identity_of(o) for o in range(3))
    after = (synth.identity_of(0), synth.identity_of(1, generation=1), synth.identity_of(2, generation=1))
    stamps = {0: synth.stamp_of(0), 1: synth.stamp_of(1, generation=1), 2: synth.stamp_of(2, generation=1)}
    run = facts.RunFacts(volumes=tuple(facts.VolumeFacts(ordinal=o, stamp=stamps[o], read_as=o) for o in range(3)),
                         identity_before=before, identity_after=after)
    v = identity.check([], run, expect.Expectations(new_volumes={1: REASON}))
    assert v.valid is False  # ordinal 2 was not declared
    assert v.details["allowed_by_retention"] == {"1": f"declared-new-volume applied: {REASON}"}
    assert [p["ordinal"] for p in v.details["problems"]] == [2]  # type: ignore[attr-defined]


def test_resume_excuses_the_old_writer_finishing_on_the_deleted_volume_during_the_heal() -> None:
    b = synth.HistoryBuilder()
    b.write(1, 5, epoch="old")
    b.fault_start("delete-claim", ["ckpt-1"], {"1": "claim deleted"})
    b.advance(0.5)
    b.fault_stop("delete-claim", ["ckpt-1"])
    b.write(1, 6, epoch="old")  # in flight when the heal deleted the pod: acknowledged on the old volume
    fresh = b.write(1, 1, epoch="new")  # the new, empty volume starts over
    inv: dict[str, history.JsonValue] = {"ordinal": 1, "after_fault": 0}
    b.record("invoke", "resume-1", "resume", inv)
    b.record("ok", "resume-1", "resume", {**inv, "step": 1, "digest": fresh.digest, "bytes": 1, "read_seconds": 0.0,
                                           "skipped": []})
    declared = expect.Expectations(new_volumes={1: REASON})
    assert resume.check(b.ops, facts.RunFacts(), declared).valid is True
    assert resume.check(b.ops, facts.RunFacts(), expect.Expectations()).valid is False


def test_durability_excuses_only_what_was_acknowledged_on_the_deleted_volume() -> None:
    from harness.checkers import durability

    b = synth.HistoryBuilder()
    for step in (1, 2):
        b.write(1, step, epoch="old")
    b.unpublish(1, 1)
    b.unpublish(1, 2)  # the claim went, and its volume with it
    b.fault_start("delete-claim", ["ckpt-1"], {"1": "claim deleted"})
    b.advance(0.5)
    b.fault_stop("delete-claim", ["ckpt-1"])
    b.write(1, 1, epoch="new")
    lost = b.write(1, 2, epoch="new")
    b.unpublish(1, lost.step)  # acknowledged on the NEW volume, then missing: a real loss
    run = b.facts([0, 1])
    v = durability.check(b.ops, run, expect.Expectations(new_volumes={1: REASON}))
    assert v.valid is False
    excused, lost = v.details["excused"], v.details["lost"]  # type: ignore[assignment]
    assert [p["step"] for p in excused] == [1, 2]  # type: ignore[attr-defined]
    assert all(REASON in p["reason"] for p in excused)  # type: ignore[attr-defined]
    assert [p["step"] for p in lost] == [2]  # type: ignore[attr-defined]
