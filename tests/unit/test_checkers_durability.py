"""The durability checker on hand-built histories, including ones that must fail."""

from __future__ import annotations

import dataclasses

import pytest

from harness import facts
from harness.checkers import durability, expect, synth, writes
from harness.checkers.verdict import Verdict

EXP = expect.Expectations()


def _check(b: synth.HistoryBuilder, ordinals: range | list[int] = range(2), exp: expect.Expectations = EXP,
           **kw: object) -> Verdict:
    return durability.check(b.ops, b.facts(ordinals, **kw), exp)  # type: ignore[arg-type]


def _problems(v: Verdict, kind: str) -> list[durability.Problem]:
    return v.details[kind]  # type: ignore[return-value]


def _counts(v: Verdict) -> dict[str, int]:
    return v.details["counts"]  # type: ignore[return-value]


def test_every_acknowledged_checkpoint_present_is_valid() -> None:
    b = synth.HistoryBuilder()
    for step in range(1, 4):
        b.write(0, step)
        b.write(1, step)
    v = _check(b)
    assert v.valid is True
    assert _counts(v)["acknowledged_present"] == 6
    assert "0 lost" in v.summary


def test_acknowledged_checkpoint_missing_is_lost_and_named() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    gone = b.write(0, 2)
    b.write(0, 3)
    b.unpublish(0, 2)
    v = _check(b, [0])
    assert v.valid is False
    [lost] = _problems(v, "lost")
    assert (lost["ordinal"], lost["step"], lost["request_id"], lost["op"]) == (0, 2, gone.request_id, gone.completion)
    assert "missing" in lost["reason"]
    assert "1 lost" in v.summary


def test_digest_mismatch_is_lost() -> None:
    b = synth.HistoryBuilder()
    w = b.write(0, 1, publish=False)
    b.publish(0, 1, "0" * 32, w.request_id)  # same step, other content
    v = _check(b, [0])
    assert v.valid is False
    [lost] = _problems(v, "lost")
    assert "digest mismatch" in lost["reason"]
    assert lost["name"] is None
    assert lost["step"] == 1


def test_torn_checkpoint_under_a_final_name_is_invalid_whatever_its_op() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    w = b.write(0, 2, "info", publish=False)
    b.publish(0, 2, None, w.request_id, valid=False, problem="shard-1 is 0 bytes, manifest says 4096")
    v = _check(b, [0])
    assert v.valid is False
    [torn] = _problems(v, "torn")
    assert (torn["ordinal"], torn["step"], torn["name"]) == (0, 2, "step-00000002")
    assert "shard-1 is 0 bytes" in torn["reason"]
    assert _problems(v, "lost") == []


def test_torn_checkpoint_where_an_acknowledged_one_should_be_is_torn_and_lost() -> None:
    b = synth.HistoryBuilder()
    w = b.write(0, 1, publish=False)
    b.publish(0, 1, None, w.request_id, valid=False, problem="manifest digest mismatch")
    v = _check(b, [0])
    assert _counts(v)["torn"] == 1
    assert _counts(v)["lost"] == 1
    assert "fails validation" in _problems(v, "lost")[0]["reason"]


def test_failed_write_whose_checkpoint_is_present_is_unexpected() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    w = b.write(0, 2, "fail", publish=True)
    v = _check(b, [0])
    assert v.valid is False
    [u] = _problems(v, "unexpected")
    assert (u["step"], u["request_id"], u["op"]) == (2, w.request_id, w.completion)
    assert "ended fail" in u["reason"]


def test_failed_write_that_left_nothing_is_fine() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    b.write(0, 2, "fail")
    assert _check(b, [0]).valid is True


def test_indeterminate_write_that_turned_out_present_is_recovered_and_valid() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    w = b.write(0, 2, "info", publish=True)
    v = _check(b, [0])
    assert v.valid is True
    [r] = _problems(v, "recovered")
    assert (r["step"], r["request_id"]) == (2, w.request_id)
    assert "1 recovered" in v.summary


def test_write_never_completed_counts_as_indeterminate() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    w = b.write(0, 2, "never", publish=True)  # the locust process died mid-request
    v = _check(b, [0])
    assert v.valid is True
    assert _problems(v, "recovered")[0]["request_id"] == w.request_id
    assert _counts(v)["indeterminate"] == 1


def test_checkpoint_no_write_attempted_is_unexpected() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    b.publish(0, 9, "d" * 32, "r-nobody-sent")
    v = _check(b, [0])
    assert v.valid is False
    assert "no write with this request id" in _problems(v, "unexpected")[0]["reason"]


def test_checkpoint_acknowledged_under_another_step_is_unexpected() -> None:
    b = synth.HistoryBuilder()
    w = b.write(0, 1)
    b.publish(0, 5, w.digest, w.request_id)
    v = _check(b, [0])
    assert v.valid is False
    assert "acknowledged as step 1" in _problems(v, "unexpected")[0]["reason"]


def test_checkpoint_for_a_write_sent_to_another_ordinal_is_unexpected() -> None:
    b = synth.HistoryBuilder()
    w = b.write(0, 1)
    b.write(1, 1)
    b.publish(1, 7, "e" * 32, w.request_id)
    v = _check(b)
    assert v.valid is False
    assert "sent to ordinal 0" in _problems(v, "unexpected")[0]["reason"]


def test_checkpoint_whose_manifest_names_another_ordinal_is_unexpected() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    b.publish(0, 3, "f" * 32, None, manifest_ordinal=1)
    v = _check(b, [0])
    assert v.valid is False
    assert "manifest names ordinal 1" in _problems(v, "unexpected")[0]["reason"]


@pytest.mark.parametrize(("outcome", "kind"), [("info", "recovered"), ("fail", "unexpected")])
def test_checkpoint_without_request_id_is_matched_by_the_step_its_invoke_asked_for(outcome: str, kind: str) -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    b.write(0, 2, outcome, publish=False, send_step=True)  # type: ignore[arg-type]
    b.publish(0, 2, "a" * 32, None)
    v = _check(b, [0])
    assert [p["step"] for p in _problems(v, kind)] == [2]


def test_checkpoint_without_request_id_and_no_attempt_at_that_step_is_unexpected() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    b.publish(0, 4, "a" * 32, None)
    assert _problems(_check(b, [0]), "unexpected")[0]["step"] == 4


# --- retention ---------------------------------------------------------------------------


def _five_steps(keep: list[int]) -> synth.HistoryBuilder:
    b = synth.HistoryBuilder()
    for step in range(1, 6):
        b.write(0, step)
    for step in range(1, 6):
        if step not in keep:
            b.unpublish(0, step)
    return b


def test_keep_last_retired_checkpoints_are_not_losses() -> None:
    v = _check(_five_steps([4, 5]), [0], keep_last=2)
    assert v.valid is True
    assert _counts(v)["retired_by_retention"] == 3
    assert "3 retired by keep-last" in v.summary


def test_missing_step_with_fewer_than_k_newer_checkpoints_is_lost() -> None:
    v = _check(_five_steps([5]), [0], keep_last=2)
    assert v.valid is False
    assert [p["step"] for p in _problems(v, "lost")] == [1, 2, 3, 4]
    assert "could have removed it only if" in _problems(v, "lost")[0]["reason"]


def test_newest_acknowledged_step_may_be_retired_by_k_newer_recovered_ones() -> None:
    # Two indeterminate writes after step 5 landed; keep-last-2 legitimately retired step 5.
    b = _five_steps([5])
    b.write(0, 6, "info", publish=True)
    b.write(0, 7, "info", publish=True)
    b.unpublish(0, 5)
    v = _check(b, [0], keep_last=2)
    assert v.valid is True
    assert [p["step"] for p in _problems(v, "recovered")] == [6, 7]


def test_newest_acknowledged_step_missing_with_fewer_than_k_newer_is_lost() -> None:
    b = _five_steps([4, 5])
    b.write(0, 6, "info", publish=True)
    b.unpublish(0, 5)
    v = _check(b, [0], keep_last=2)
    assert v.valid is False
    lost = _problems(v, "lost")
    assert [p["step"] for p in lost] == [5]
    assert "newest acknowledged" in lost[0]["reason"]


def test_keep_all_means_any_missing_step_is_lost() -> None:
    v = _check(_five_steps([4, 5]), [0], keep_last=0)
    assert [p["step"] for p in _problems(v, "lost")] == [1, 2, 3]


# --- ordinals without volumes ---------------------------------------------------------------


def test_ordinal_with_acknowledged_writes_but_no_volume_facts_loses_everything() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    b.write(1, 1)
    b.write(1, 2)
    v = _check(b, without_volume=(1,))
    assert v.valid is False
    assert [(p["ordinal"], p["step"]) for p in _problems(v, "lost")] == [(1, 1), (1, 2)]
    assert "no facts were gathered" in _problems(v, "lost")[0]["reason"]


def test_scaled_down_ordinal_under_when_scaled_delete_is_excused_not_lost() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    b.write(1, 1)
    v = _check(b, without_volume=(1,), scaled_down=(1,), retention=facts.RetentionPolicy(when_scaled="Delete"))
    assert v.valid is True
    [e] = _problems(v, "excused")
    assert e["ordinal"] == 1
    assert "whenScaled=Delete" in e["reason"]


def test_scaled_down_ordinal_under_retain_still_must_keep_its_checkpoints() -> None:
    b = synth.HistoryBuilder()
    b.write(1, 1)
    v = _check(b, without_volume=(1,), scaled_down=(1,), retention=facts.RetentionPolicy(when_scaled="Retain"))
    assert v.valid is False


def test_deleted_set_under_when_deleted_delete_is_excused_only_when_declared() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    policy = facts.RetentionPolicy(when_deleted="Delete")
    assert _check(b, [0], without_volume=(0,), retention=policy).valid is False
    v = _check(b, [0], dataclasses.replace(EXP, set_deleted=True), without_volume=(0,), retention=policy)
    assert v.valid is True
    assert "whenDeleted=Delete" in _problems(v, "excused")[0]["reason"]


# --- the rest ---------------------------------------------------------------------------------


def test_no_acknowledged_write_is_unknown_not_a_pass() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1, "fail")
    v = _check(b, [0])
    assert v.valid == "unknown"
    assert "not exercised" in v.summary


def test_problem_lists_are_capped_but_counts_stay_exact() -> None:
    b = synth.HistoryBuilder()
    for step in range(1, 21):
        b.write(0, step, publish=False)
    v = _check(b, [0], dataclasses.replace(EXP, durability=expect.DurabilityOptions(max_listed=5)))
    assert _counts(v)["lost"] == 20
    assert len(_problems(v, "lost")) == 5
    assert v.details["omitted"] == {"lost": 15}


def test_interleaved_writers_on_one_ordinal_pair_by_process() -> None:
    b = synth.HistoryBuilder()
    a1 = b.begin_write(0, 1, process="w0-u1")
    a2 = b.begin_write(0, 2, process="w0-u2")
    b.advance(0.1)
    r2 = b.end_write(a2, "ok")
    r1 = b.end_write(a1, "info", publish=False)
    b.unpublish(0, 2)
    v = _check(b, [0])
    [lost] = _problems(v, "lost")
    assert (lost["step"], lost["request_id"]) == (2, r2.request_id)
    assert r1.request_id not in str(v.details["lost"])


def test_malformed_write_value_is_an_input_error_naming_the_op() -> None:
    b = synth.HistoryBuilder()
    b.record("invoke", "w", "write", {"ordinal": 0, "request_id": "r"})
    b.record("ok", "w", "write", {"ordinal": 0, "digest": "d"})
    with pytest.raises(writes.CheckerInputError, match=r"op 1: write value lacks 'step'"):
        durability.check(b.ops, b.facts([0]), EXP)


def test_two_volumes_claiming_one_ordinal_is_an_input_error() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    f = b.facts([0])
    f = dataclasses.replace(f, volumes=f.volumes * 2)
    with pytest.raises(writes.CheckerInputError, match="two volumes for ordinal 0"):
        durability.check(b.ops, f, EXP)


def test_details_are_json() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1, publish=False)
    b.write(0, 2, "info", publish=True)
    assert '"lost"' in _check(b, [0]).to_json()
