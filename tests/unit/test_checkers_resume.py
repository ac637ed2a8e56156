"""The resume checker: after each heal, a trainer resumes from at least what was acknowledged."""

from __future__ import annotations

from harness import facts, history, ops
from harness.checkers import expect, resume, synth
from harness.checkers.verdict import Verdict


def _resume(b: synth.HistoryBuilder, ordinal: int, after: int | None, outcome: str = "ok", *,
            step: int | None = None, digest: str | None = None, skipped: list[str] | None = None,
            latency: float = 0.01) -> None:
    proc = f"resume-{ordinal}"
    inv: dict[str, history.JsonValue] = {"ordinal": ordinal, "after_fault": after}
    b.record("invoke", proc, ops.RESUME, inv)
    b.advance(latency)
    if outcome == "ok":
        b.record("ok", proc, ops.RESUME, {**inv, "step": step, "digest": digest, "bytes": 10, "read_seconds": 0.001,
                                          "skipped": list(skipped or [])})
    else:
        b.record(outcome, proc, ops.RESUME, inv, "HTTP 503: not ready" if outcome == "fail" else "timed out")  # type: ignore[arg-type]


def _check(b: synth.HistoryBuilder) -> Verdict:
    return resume.check(b.ops, facts.RunFacts(), expect.Expectations())


def _killed_after(acks: int) -> tuple[synth.HistoryBuilder, list[synth.WriteRecord]]:
    """``acks`` steps acknowledged on ordinal 1, then a pod kill healed at +1.1 s."""
    b = synth.HistoryBuilder()
    done = [b.write(1, s) for s in range(1, acks + 1)]
    b.advance(0.5)
    b.fault_start("pod-kill", ["ckpt-1"], {"1": "killed"})
    b.advance(1.0)
    b.fault_stop("pod-kill", ["ckpt-1"])
    b.advance(0.2)
    return b, done


def test_resume_at_the_newest_acknowledged_step_with_its_digest_is_valid() -> None:
    b, done = _killed_after(3)
    _resume(b, 1, 0, "fail")  # not ready yet: recorded, not held against it
    b.advance(0.3)
    _resume(b, 1, 0, step=3, digest=done[-1].digest)
    v = _check(b)
    assert v.valid is True, v.summary
    [report] = v.details["resumes"]  # type: ignore[misc]
    assert (report["resumed_step"], report["required_step"], report["attempts"]) == (3, 3, 2)
    assert 0.5 < report["resumable_after_s"] < 0.6
    assert 0.5 <= report["redo_s"] < 0.6


def test_resuming_from_an_older_step_than_acknowledged_is_a_failure_even_if_the_newer_exists() -> None:
    b, done = _killed_after(3)
    _resume(b, 1, 0, step=2, digest=done[1].digest)
    v = _check(b)
    assert v.valid is False
    assert "resumed from step 2, but step 3 was acknowledged" in v.summary


def test_resuming_an_acknowledged_step_with_other_bytes_is_a_failure() -> None:
    b, _done = _killed_after(2)
    _resume(b, 1, 0, step=2, digest="f" * 32)
    v = _check(b)
    assert v.valid is False
    assert "resumed step 2 with digest ffffffffffff" in v.summary


def test_a_torn_newer_checkpoint_skipped_by_the_read_is_a_failure() -> None:
    b, done = _killed_after(2)
    _resume(b, 1, 0, step=2, digest=done[-1].digest, skipped=["3: shard-00000.bin digest mismatch"])
    assert "did not verify (3: shard-00000.bin" in _check(b).summary


def test_never_resumable_after_acknowledged_writes_is_a_failure_but_no_answer_is_unknown() -> None:
    b, _ = _killed_after(1)
    _resume(b, 1, 0, "fail")
    _resume(b, 1, 0, "fail")
    v = _check(b)
    assert v.valid is False
    assert "never resumable (2 attempts" in v.summary
    b2, _ = _killed_after(1)
    _resume(b2, 1, 0, "info")
    assert _check(b2).valid == "unknown"


def test_resuming_from_a_refused_write_is_a_failure() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1, "fail", send_step=True)
    _resume(b, 0, None, step=1, digest="d")
    assert "a write the writer refused" in _check(b).summary


def test_an_ordinal_with_nothing_acknowledged_may_have_nothing_to_resume() -> None:
    b = synth.HistoryBuilder()
    _resume(b, 2, None, "fail")
    assert _check(b).valid is True


def test_no_resume_at_all_is_unknown_never_a_pass() -> None:
    b, _ = _killed_after(1)
    assert _check(b).valid == "unknown"


def test_a_write_acknowledged_after_the_resume_was_asked_is_not_required() -> None:
    b, done = _killed_after(2)
    proc = "resume-1"
    b.record("invoke", proc, ops.RESUME, {"ordinal": 1, "after_fault": 0})
    late = b.write(1, 3)  # acknowledged while the resume read was under way
    b.record("ok", proc, ops.RESUME, {"ordinal": 1, "after_fault": 0, "step": 2, "digest": done[-1].digest,
                                      "bytes": 10, "read_seconds": 0.01, "skipped": []})
    assert late.step == 3
    assert _check(b).valid is True


def test_an_ordinal_whose_claim_the_policy_deleted_is_held_only_to_its_new_volume() -> None:
    b = synth.HistoryBuilder()
    b.write(1, 5)  # on the old volume
    b.advance(0.5)
    b.fault_start("scale", ["ckpt"], {"1": "scaled away; claim deleted by whenScaled=Delete"})
    b.advance(1.0)
    b.fault_stop("scale", ["ckpt"])
    fresh = b.write(1, 1)  # the new, empty volume starts at step 1
    _resume(b, 1, 0, step=1, digest=fresh.digest)
    deleted = b.facts([0, 1], retention=facts.RetentionPolicy(when_scaled="Delete"), scaled_down=(1,))
    kept = b.facts([0, 1], retention=facts.RetentionPolicy(when_scaled="Retain"), scaled_down=(1,))
    assert resume.check(b.ops, deleted, expect.Expectations()).valid is True
    assert resume.check(b.ops, kept, expect.Expectations()).valid is False  # Retain: step 5 must come back
