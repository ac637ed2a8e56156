"""The shutdown checker: a write in flight when a writer was stopped gracefully is answered."""

from __future__ import annotations

from harness import facts, history, ops
from harness.checkers import expect, registry, shutdown, synth
from harness.checkers.verdict import Verdict


def _check(b: synth.HistoryBuilder) -> Verdict:
    return shutdown.check(b.ops, facts.RunFacts(), expect.Expectations())


def _term_during(outcome: synth.Outcome, *, graceful: bool = True) -> synth.HistoryBuilder:
    """A write to ordinal 2 sent, then SIGTERM to ckpt-2, then the write completes with ``outcome``."""
    b = synth.HistoryBuilder()
    b.write(2, 1)
    w = b.begin_write(2, 2)
    b.advance(0.01)
    b.fault_start("container-kill-term", ["ckpt-2"], {"2": "SIGTERMed"}, graceful=graceful)
    b.advance(0.2)
    b.end_write(w, outcome, error="RemoteDisconnected: closed" if outcome == "info" else None)
    b.advance(0.5)
    b.fault_stop("container-kill-term", ["ckpt-2"])
    return b


def test_in_flight_writes_answered_ok_or_fail_are_valid() -> None:
    for outcome in ("ok", "fail"):
        v = _check(_term_during(outcome))
        assert v.valid is True, v.summary
        [fault] = v.details["faults"]  # type: ignore[misc]
        assert (fault["in_flight"], fault["dropped"]) == (1, 0)
        assert v.summary.startswith("1 writes in flight at 1 graceful stop(s), every one answered")


def test_an_in_flight_write_dropped_by_a_graceful_stop_is_invalid_naming_it() -> None:
    v = _check(_term_during("info"))
    assert v.valid is False
    assert "ordinal 2: write" in v.summary
    assert "in flight at the graceful stop of op" in v.summary
    assert "RemoteDisconnected" in v.summary


def test_a_request_sent_after_the_signal_that_races_the_exit_is_counted_not_judged() -> None:
    b = synth.HistoryBuilder()
    w = b.begin_write(2, 1)
    b.advance(0.01)
    b.fault_start("container-kill-term", ["ckpt-2"], {"2": "SIGTERMed"}, graceful=True)
    b.advance(0.1)
    b.end_write(w, "ok")
    late = b.begin_write(2, 2)
    b.advance(0.1)
    b.end_write(late, "info", error="BrokenPipeError: [Errno 32] Broken pipe")
    b.fault_stop("container-kill-term", ["ckpt-2"])
    v = _check(b)
    assert v.valid is True, v.summary
    assert v.details["faults"][0]["later_info"] == 1  # type: ignore[index]


def test_writes_to_other_ordinals_and_sigkills_are_not_held_to_the_drain() -> None:
    b = synth.HistoryBuilder()
    w = b.begin_write(0, 1)
    b.advance(0.01)
    b.fault_start("container-kill-term", ["ckpt-2"], {"2": "SIGTERMed"}, graceful=True)
    b.advance(0.1)
    b.end_write(w, "info")  # ordinal 0 was not stopped
    b.fault_stop("container-kill-term", ["ckpt-2"])
    v = _check(b)
    assert v.valid == "unknown", "nothing was in flight on the stopped ordinal"
    assert "the drain was never exercised" in v.summary
    assert _check(_term_during("info", graceful=False)).valid == "unknown"


def test_in_the_default_set_only_for_a_history_with_a_graceful_stop() -> None:
    with_term = registry.compose(None, _term_during("ok").ops, facts.RunFacts())
    assert "shutdown" in with_term.verdicts
    without = registry.compose(None, _term_during("ok", graceful=False).ops, facts.RunFacts())
    assert "shutdown" not in without.verdicts


def test_the_signal_time_the_heal_recorded_draws_the_line_not_the_faults_start() -> None:
    """The runtime's signal comes well after the nemesis began (a CLI starts, a node is reached):
    a write sent in between was in flight at the signal; one sent after it raced the exit."""
    b = synth.HistoryBuilder()
    target = {"fault": "container-kill-term", "targets": ["ckpt-2"], "graceful_stop": True}
    b.record("invoke", ops.NEMESIS_PROCESS, ops.FAULT_START, target)
    b.advance(0.2)
    before_signal = b.begin_write(2, 1)
    b.advance(0.3)
    signalled = b.now
    b.advance(0.1)
    b.record("ok", ops.NEMESIS_PROCESS, ops.FAULT_START, target)
    after_signal = b.begin_write(2, 2)
    b.advance(0.05)
    b.end_write(after_signal, "info", error="BrokenPipeError: [Errno 32] Broken pipe")
    b.end_write(before_signal, "info", error="RemoteDisconnected: closed")
    b.record("invoke", ops.NEMESIS_PROCESS, ops.FAULT_STOP, target)
    b.advance(0.5)
    notes: dict[str, history.JsonValue] = {"signalled_at": {"ckpt-2": signalled}}
    b.record("ok", ops.NEMESIS_PROCESS, ops.FAULT_STOP, {**target, "notes": notes})
    v = _check(b)
    assert v.valid is False
    [fault] = v.details["faults"]  # type: ignore[misc]
    assert (fault["in_flight"], fault["dropped"], fault["later_info"]) == (1, 1, 1)
    assert fault["signalled_at"] == signalled
