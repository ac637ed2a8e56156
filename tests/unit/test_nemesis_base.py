"""The fault context: start/stop recorded, heal always runs, no-target faults refused."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from harness import history, ops
from harness.nemesis import base


class RecordingNemesis:
    name = "fake-kill"

    def __init__(self, fail_inject: bool = False) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.fail_inject = fail_inject

    def inject(self, targets: Sequence[str]) -> None:
        self.calls.append(("inject", tuple(targets)))
        if self.fail_inject:
            raise RuntimeError("injection broke half-way")

    def heal(self, targets: Sequence[str]) -> None:
        self.calls.append(("heal", tuple(targets)))


def _ops(tmp_path: Path) -> list[tuple[str, str]]:
    return [(op.type, op.f) for op in history.read_history(tmp_path / "h")]


def test_fault_records_start_and_stop_around_the_body(tmp_path: Path) -> None:
    nem = RecordingNemesis()
    with history.HistoryWriter(tmp_path / "h", "nemesis") as rec, base.fault(rec, nem, ["ckpt-1"]):
        rec.record("invoke", "write", {"ordinal": 1}, process="u0")
    assert nem.calls == [("inject", ("ckpt-1",)), ("heal", ("ckpt-1",))]
    assert _ops(tmp_path) == [
        ("invoke", ops.FAULT_START),
        ("ok", ops.FAULT_START),
        ("invoke", "write"),
        ("invoke", ops.FAULT_STOP),
        ("ok", ops.FAULT_STOP),
    ]


def test_fault_heals_when_the_body_raises(tmp_path: Path) -> None:
    nem = RecordingNemesis()
    with (
        history.HistoryWriter(tmp_path / "h", "nemesis") as rec,
        pytest.raises(KeyboardInterrupt),
        base.fault(rec, nem, ["ckpt-0"]),
    ):
        raise KeyboardInterrupt
    assert nem.calls[-1] == ("heal", ("ckpt-0",))
    assert _ops(tmp_path)[-1] == ("ok", ops.FAULT_STOP)


def test_failed_injection_is_indeterminate_and_still_healed(tmp_path: Path) -> None:
    nem = RecordingNemesis(fail_inject=True)
    with (
        history.HistoryWriter(tmp_path / "h", "nemesis") as rec,
        pytest.raises(RuntimeError, match="half-way"),
        base.fault(rec, nem, ["ckpt-2"]),
    ):
        pass
    assert nem.calls == [("inject", ("ckpt-2",)), ("heal", ("ckpt-2",))]
    assert ("info", ops.FAULT_START) in _ops(tmp_path)


def test_fault_without_target_is_refused_before_anything_happens(tmp_path: Path) -> None:
    nem = RecordingNemesis()
    with (
        history.HistoryWriter(tmp_path / "h", "nemesis") as rec,
        pytest.raises(base.NemesisError, match="no target"),
        base.fault(rec, nem, []),
    ):
        pass
    assert nem.calls == []
