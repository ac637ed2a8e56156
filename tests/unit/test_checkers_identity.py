"""The identity checker: unchanged, swapped, and re-created only where the policy allows."""

from __future__ import annotations

import dataclasses

from harness import facts
from harness.checkers import expect, identity, synth
from harness.checkers.verdict import Verdict

EXP = expect.Expectations()


def _facts(after: dict[int, facts.OrdinalIdentity] | None = None, *, ordinals: int = 3,
           stamps: dict[int, facts.IdentityStamp] | None = None, **kw: object) -> facts.RunFacts:
    before = tuple(synth.identity_of(o) for o in range(ordinals))
    now = {o: synth.identity_of(o) for o in range(ordinals)}
    now.update(after or {})
    volumes = tuple(facts.VolumeFacts(ordinal=o, stamp=(stamps or {}).get(o, synth.stamp_of(o)), read_as=o)
                    for o in range(ordinals))
    return facts.RunFacts(volumes=volumes, identity_before=before, identity_after=tuple(now.values()), **kw)  # type: ignore[arg-type]


def _problems(v: Verdict) -> list[identity.IdentityProblem]:
    return v.details["problems"]  # type: ignore[return-value]


def test_unchanged_identity_is_valid() -> None:
    v = identity.check([], _facts(), EXP)
    assert v.valid is True
    assert v.details["unchanged"] == [0, 1, 2]
    assert v.summary == "3 ordinals unchanged"


def test_new_claim_and_volume_without_a_declared_policy_is_invalid() -> None:
    v = identity.check([], _facts({1: synth.identity_of(1, generation=1)}, stamps={1: synth.stamp_of(1, generation=1)}),
                       EXP)
    assert v.valid is False
    [p] = _problems(v)
    assert p["ordinal"] == 1
    assert {c["field"] for c in p["changes"]} == {"claim_uid", "volume", "volume_id"}


def test_volume_swapped_under_the_same_claim_is_invalid() -> None:
    swapped = dataclasses.replace(synth.identity_of(2), volume="pv-0", volume_id="vol-0")
    v = identity.check([], _facts({2: swapped}, stamps={2: synth.stamp_of(2, stamped_for=0)}), EXP)
    assert v.valid is False
    reasons = " | ".join(p["reason"] for p in _problems(v))
    assert "identity changed" in reasons
    assert "stamped for ordinal 0" in reasons


def test_stamp_naming_another_ordinal_is_loud_even_when_the_cluster_map_agrees() -> None:
    v = identity.check([], _facts(stamps={1: synth.stamp_of(1, stamped_for=2)}), EXP)
    assert v.valid is False
    assert any("swapped volume" in p["reason"] for p in _problems(v))


def test_stamp_id_disagreeing_with_the_recorded_volume_id_is_invalid() -> None:
    stamp = dataclasses.replace(synth.stamp_of(0), volume_id="vol-imposter")
    v = identity.check([], _facts(stamps={0: stamp}), EXP)
    assert v.valid is False
    assert "vol-imposter" in _problems(v)[0]["reason"]


def test_when_scaled_delete_allows_a_new_claim_only_for_scaled_down_ordinals() -> None:
    recreated = {1: synth.identity_of(1, generation=1), 2: synth.identity_of(2, generation=1)}
    stamps = {1: synth.stamp_of(1, generation=1), 2: synth.stamp_of(2, generation=1)}
    policy = facts.RetentionPolicy(when_scaled="Delete")
    v = identity.check([], _facts(recreated, stamps=stamps, retention=policy, scaled_down=(2,)), EXP)
    assert v.valid is False
    assert [p["ordinal"] for p in _problems(v)] == [1]
    assert v.details["allowed_by_retention"] == {
        "2": "whenScaled=Delete applied: the scenario scaled this ordinal down"
    }
    assert "whenScaled=Delete applied to ordinals [2]" in v.summary


def test_when_scaled_delete_scaled_down_ordinals_alone_changing_is_valid() -> None:
    v = identity.check([], _facts({2: synth.identity_of(2, generation=1)}, stamps={2: synth.stamp_of(2, generation=1)},
                                  retention=facts.RetentionPolicy(when_scaled="Delete"), scaled_down=(2,)), EXP)
    assert v.valid is True
    assert "whenScaled=Delete applied to ordinals [2]" in v.summary


def test_when_scaled_retain_does_not_allow_a_scaled_down_ordinal_to_change() -> None:
    v = identity.check([], _facts({2: synth.identity_of(2, generation=1)}, stamps={2: synth.stamp_of(2, generation=1)},
                                  retention=facts.RetentionPolicy(when_scaled="Retain"), scaled_down=(2,)), EXP)
    assert v.valid is False


def test_claim_name_never_changes_even_under_a_delete_policy() -> None:
    renamed = dataclasses.replace(synth.identity_of(2, generation=1), claim="data-other-2")
    v = identity.check([], _facts({2: renamed}, retention=facts.RetentionPolicy(when_scaled="Delete"),
                                  scaled_down=(2,)), EXP)
    assert v.valid is False
    assert any(c["field"] == "claim" for p in _problems(v) for c in p["changes"])


def test_when_deleted_delete_applies_to_every_ordinal_only_if_the_scenario_deleted_the_set() -> None:
    after = {o: synth.identity_of(o, generation=1) for o in range(3)}
    stamps = {o: synth.stamp_of(o, generation=1) for o in range(3)}
    f = _facts(after, stamps=stamps, retention=facts.RetentionPolicy(when_deleted="Delete"))
    assert identity.check([], f, EXP).valid is False
    v = identity.check([], f, dataclasses.replace(EXP, set_deleted=True))
    assert v.valid is True
    assert "whenDeleted=Delete applied to ordinals [0, 1, 2]" in v.summary


def test_ordinal_missing_after_the_run_is_invalid_unless_scaled_away() -> None:
    before = tuple(synth.identity_of(o) for o in range(3))
    after = before[:2]
    f = facts.RunFacts(identity_before=before, identity_after=after)
    assert identity.check([], f, EXP).valid is False
    v = identity.check([], dataclasses.replace(f, scaled_down=(2,)), EXP)
    assert v.valid is True
    assert v.details["scaled_away"] == [2]


def test_unrecorded_volume_id_is_unknown_not_a_pass() -> None:
    f = _facts({0: dataclasses.replace(synth.identity_of(0), volume_id=None)})
    v = identity.check([], f, EXP)
    assert v.valid == "unknown"
    assert v.details["unverified"][0]["ordinal"] == 0  # type: ignore[index]


def test_nothing_recorded_is_unknown() -> None:
    assert identity.check([], facts.RunFacts(), EXP).valid == "unknown"


def test_facts_that_do_not_say_which_claim_a_volume_was_read_from_are_unknown_not_a_pass() -> None:
    # what facts.json of a run stored before read_as holds: the ordinal was taken from the stamp
    old = facts.volume_facts_from_dict({"ordinal": 1, "stamp": dataclasses.asdict(synth.stamp_of(1))})
    assert old.read_as is None
    f = dataclasses.replace(_facts(), volumes=(*_facts().volumes[:1], old, *_facts().volumes[2:]))
    v = identity.check([], f, EXP)
    assert v.valid == "unknown"
    unverified: list[identity.IdentityProblem] = v.details["unverified"]  # type: ignore[assignment]
    [doubt] = unverified
    assert doubt["ordinal"] == 1
    assert "which ordinal's claim the volume was read from" in doubt["reason"]


def test_unstamped_volume_of_an_ordinal_that_acknowledged_writes_is_invalid() -> None:
    b = synth.HistoryBuilder()
    b.write(2, 1, publish=False)  # acknowledged, yet nothing on the volume, not even the stamp
    f = _facts(stamps={})
    f = dataclasses.replace(f, volumes=(*f.volumes[:2], facts.VolumeFacts(ordinal=2, read_as=2)))
    v = identity.check(b.ops, f, EXP)
    assert v.valid is False
    [p] = _problems(v)
    assert p["ordinal"] == 2
    assert "1 writes acknowledged by ordinal 2" in p["reason"]
    assert identity.check([], f, EXP).valid is True  # without the acknowledgement it is a writer that never began


def test_unstamped_fresh_volume_on_a_claim_the_policy_re_created_is_not_blamed_for_old_acks() -> None:
    b = synth.HistoryBuilder()
    b.write(2, 1, publish=False)
    f = _facts({2: synth.identity_of(2, generation=1)}, retention=facts.RetentionPolicy(when_scaled="Delete"),
               scaled_down=(2,))
    f = dataclasses.replace(f, volumes=(*f.volumes[:2], facts.VolumeFacts(ordinal=2, read_as=2)))
    assert identity.check(b.ops, f, EXP).valid is True
