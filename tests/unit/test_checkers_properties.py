"""Property tests: the durability checker accepts exactly the histories it should."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.checkers import durability, expect, synth

OUTCOMES = st.sampled_from(["ok", "ok", "ok", "fail", "info", "never"])


@st.composite
def histories(draw: st.DrawFn) -> tuple[synth.HistoryBuilder, int, list[synth.WriteRecord]]:
    """Random interleaved writes over a few ordinals; every ok published, some info published,
    then the writer's keep-last-K retention applied to each volume."""
    b = synth.HistoryBuilder()
    n_ordinals = draw(st.integers(1, 4))
    keep_last = draw(st.sampled_from([0, 0, 1, 2, 3]))
    steps = dict.fromkeys(range(n_ordinals), 0)
    records: list[synth.WriteRecord] = []
    for _ in range(draw(st.integers(1, 6))):
        batch = draw(st.lists(st.tuples(st.integers(0, n_ordinals - 1), OUTCOMES, st.booleans()), min_size=1,
                              max_size=6))
        opened = []
        for k, (ordinal, outcome, lands) in enumerate(batch):
            steps[ordinal] += 1
            opened.append((b.begin_write(ordinal, steps[ordinal], process=f"u{k}"), outcome, lands))
        b.advance(draw(st.floats(0.001, 0.5)))
        for w, outcome, lands in reversed(opened):
            records.append(b.end_write(w, outcome, publish=outcome == "ok" or (outcome in ("info", "never") and lands)))
    if keep_last:
        # The writer's retention: the K newest valid checkpoints of each volume survive.
        for ordinal, cps in b.checkpoints.items():
            keep = set(sorted(c.step for c in cps)[-keep_last:])
            b.checkpoints[ordinal] = [c for c in cps if c.step in keep]
    return b, keep_last, records


@settings(max_examples=150, deadline=None)
@given(histories())
def test_history_with_every_ok_checkpoint_present_is_valid(
    case: tuple[synth.HistoryBuilder, int, list[synth.WriteRecord]],
) -> None:
    b, keep_last, records = case
    n = 1 + max(r.ordinal for r in records)
    v = durability.check(b.ops, b.facts(range(n), keep_last=keep_last), expect.Expectations())
    if any(r.outcome == "ok" for r in records):
        assert v.valid is True, v.details
    else:
        assert v.valid == "unknown", v.details


@settings(max_examples=150, deadline=None)
@given(histories(), st.data())
def test_deleting_any_present_ok_checkpoint_is_invalid_and_named(
    case: tuple[synth.HistoryBuilder, int, list[synth.WriteRecord]], data: st.DataObject
) -> None:
    b, keep_last, records = case
    present = {(o, c.step) for o, cps in b.checkpoints.items() for c in cps}
    candidates = [r for r in records if r.outcome == "ok" and (r.ordinal, r.step) in present]
    if not candidates:
        return
    victim = data.draw(st.sampled_from(candidates))
    b.unpublish(victim.ordinal, victim.step)
    n = 1 + max(r.ordinal for r in records)
    v = durability.check(b.ops, b.facts(range(n), keep_last=keep_last), expect.Expectations())
    assert v.valid is False
    lost = v.details["lost"]
    assert any(
        p["ordinal"] == victim.ordinal and p["step"] == victim.step and p["request_id"] == victim.request_id
        for p in lost  # type: ignore[attr-defined]
    ), lost
