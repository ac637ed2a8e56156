"""The shutdown checker: every write a writer held when it was stopped gracefully is answered."""

from __future__ import annotations

from harness import facts, history, ops
from harness.checkers import expect, registry, shutdown, synth
from harness.checkers.verdict import Verdict
from harness.kube import stoplog

TERM = {"fault": "container-kill-term", "targets": ["ckpt-2"], "graceful_stop": True}


def _check(b: synth.HistoryBuilder) -> Verdict:
    return shutdown.check(b.ops, facts.RunFacts(), expect.Expectations())


def _stop(b: synth.HistoryBuilder, notes: dict[str, history.JsonValue] | None, *, graceful: bool = True) -> None:
    value: dict[str, history.JsonValue] = dict(TERM) if graceful else {"fault": "container-kill-kill",
                                                                        "targets": ["ckpt-2"]}
    b.record("invoke", ops.NEMESIS_PROCESS, ops.FAULT_STOP, value)
    b.advance(0.5)
    b.record("ok", ops.NEMESIS_PROCESS, ops.FAULT_STOP, {**value, "notes": notes} if notes else value)


def _held(*request_ids: str, at: float = 0.0) -> dict[str, history.JsonValue]:
    return {"held_at_stop": {"ckpt-2": {"ts": at, "in_flight": list(request_ids), "in_flight_without_id": 0}}}


def _term_during(outcome: synth.Outcome, *, graceful: bool = True, held: bool = True) -> synth.HistoryBuilder:
    """A write to ordinal 2, then SIGTERM to ckpt-2 while the writer holds it, then its answer."""
    b = synth.HistoryBuilder()
    w = b.begin_write(2, 1)
    b.advance(0.01)
    start: dict[str, history.JsonValue] = dict(TERM) if graceful else {"fault": "container-kill-kill",
                                                                        "targets": ["ckpt-2"]}
    b.record("invoke", ops.NEMESIS_PROCESS, ops.FAULT_START, start)
    b.advance(0.2)
    b.record("ok", ops.NEMESIS_PROCESS, ops.FAULT_START, start)
    b.end_write(w, outcome, error="RemoteDisconnected: closed" if outcome == "info" else None)
    _stop(b, _held(w.request_id, at=b.now) if held else _held(at=b.now), graceful=graceful)
    return b


def test_held_writes_answered_ok_or_fail_are_valid() -> None:
    for outcome in ("ok", "fail"):
        v = _check(_term_during(outcome))
        assert v.valid is True, v.summary
        [fault] = v.details["faults"]  # type: ignore[misc]
        assert (fault["held"], fault[f"answered_{outcome}"]) == (1, 1)
        assert v.summary.startswith("1 writes held at 1 graceful stop(s), every one answered")


def test_a_held_write_that_ended_info_is_invalid_naming_it() -> None:
    v = _check(_term_during("info"))
    assert v.valid is False
    assert "held by the writer at its graceful stop" in v.summary
    assert "RemoteDisconnected" in v.summary


def test_a_write_the_writer_never_had_is_counted_not_judged() -> None:
    """Sent before the signal but not yet read by the writer (a port-forward hop, a loaded
    machine): the writer's account does not list it, so its info is not held against the stop."""
    b = synth.HistoryBuilder()
    held, unread = b.begin_write(2, 1, process="u0"), b.begin_write(2, 2, process="u1")
    b.advance(0.01)
    b.record("invoke", ops.NEMESIS_PROCESS, ops.FAULT_START, TERM)
    b.advance(0.2)
    b.record("ok", ops.NEMESIS_PROCESS, ops.FAULT_START, TERM)
    b.end_write(held, "ok")
    b.end_write(unread, "info", error="BrokenPipeError: [Errno 32] Broken pipe")
    _stop(b, _held(held.request_id, at=b.now))
    v = _check(b)
    assert v.valid is True, v.summary
    [fault] = v.details["faults"]  # type: ignore[misc]
    assert (fault["held"], fault["unanswered_later"]) == (1, 1)
    assert _check(_term_during("ok", held=False)).valid == "unknown", "nothing held: the drain was never exercised"


def test_an_unreadable_account_is_unknown_with_the_reason() -> None:
    b = synth.HistoryBuilder()
    b.record("invoke", ops.NEMESIS_PROCESS, ops.FAULT_START, TERM)
    b.record("ok", ops.NEMESIS_PROCESS, ops.FAULT_START, TERM)
    _stop(b, {"stop_account_missing": {"ckpt-2": "cannot read the previous log (403)"}})
    v = _check(b)
    assert v.valid == "unknown"
    assert "cannot read the previous log (403)" in v.summary


def test_sigkills_are_not_held_to_the_drain() -> None:
    assert _check(_term_during("info", graceful=False)).valid == "unknown"


def test_in_the_default_set_only_for_a_history_with_a_graceful_stop() -> None:
    with_term = registry.compose(None, _term_during("ok").ops, facts.RunFacts())
    assert "shutdown" in with_term.verdicts
    without = registry.compose(None, _term_during("ok", graceful=False).ops, facts.RunFacts())
    assert "shutdown" not in without.verdicts


def test_the_stop_account_is_the_last_stopping_event_of_the_log() -> None:
    log = "\n".join([
        '{"ts": 1.0, "event": "listening", "port": 8080}',
        "not json: a traceback line",
        '{"ts": 2.0, "event": "stopping", "in_flight": ["a"], "in_flight_without_id": 0}',
        '{"ts": 3.0, "event": "stopping", "in_flight": ["b", "c"], "in_flight_without_id": 1}',
    ])
    assert stoplog.parse(log) == {"ts": 3.0, "in_flight": ["b", "c"], "in_flight_without_id": 1}
    older_writer = '{"ts": 2.0, "event": "stopping", "draining_seconds": 20}'
    assert stoplog.parse(older_writer) is None, "no account is not an empty account"


def test_a_held_write_the_client_stopped_waiting_for_is_unknown_not_a_drop() -> None:
    """The writer may drain for longer than the load waits: its late answer is not a drop."""
    b = synth.HistoryBuilder()
    w = b.begin_write(2, 1)
    b.record("invoke", ops.NEMESIS_PROCESS, ops.FAULT_START, TERM)
    b.record("ok", ops.NEMESIS_PROCESS, ops.FAULT_START, TERM)
    b.advance(10.0)
    b.end_write(w, "info", error="RequestDeadline: no answer within 10.0s")
    _stop(b, _held(w.request_id))
    v = _check(b)
    assert v.valid == "unknown"
    assert "the client stopped waiting before the writer answered" in v.summary
