"""The history log: concurrent writers, torn and corrupt lines, merge order, pairing."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from pathlib import Path

import pytest

from harness import history

WRITERS = 4
OPS_PER_WRITER = 400


def _hammer(directory: str, n: int, worker: int) -> None:
    """Child process: many ops with values big enough that a torn write would show."""
    with history.HistoryWriter(Path(directory), f"w{worker}") as w:
        for i in range(n):
            w.record("invoke", "write", {"worker": worker, "i": i, "pad": "x" * (97 * (i % 50))})
            w.record("ok", "write", {"worker": worker, "i": i})


def test_concurrent_writer_processes_never_interleave_half_lines(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), OPS_PER_WRITER, k)) for k in range(WRITERS)]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0, f"writer process {p.pid} exited {p.exitcode}"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    for path in tmp_path.glob("*.jsonl"):
        raw = path.read_bytes()
        assert raw.endswith(b"\n")
        for line in raw.splitlines():
            json.loads(line)  # every line is whole JSON
    ops = history.read_history(tmp_path)
    assert len(ops) == WRITERS * OPS_PER_WRITER * 2
    assert [op.index for op in ops] == list(range(len(ops)))
    for k in range(WRITERS):  # each process's own order survives the merge
        mine = [op.value["i"] for op in ops if op.process == f"w{k}" and op.type == "invoke"]  # type: ignore[index,call-overload]
        assert mine == list(range(OPS_PER_WRITER))
    pairs = history.pair(ops)
    assert len(pairs) == WRITERS * OPS_PER_WRITER
    assert all(p.outcome == "ok" for p in pairs)


def test_writers_of_the_same_process_name_in_several_processes_get_separate_files(tmp_path: Path) -> None:
    a = history.HistoryWriter(tmp_path, "probe-1")
    a.record("invoke", "read")
    a.close()
    b = history.HistoryWriter(tmp_path, "probe/1")  # odd characters are made safe for a file name
    b.close()
    assert a.path != b.path
    assert "/" not in b.path.name[:-6]


def _write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def _line(index: int, type_: str = "invoke", process: str = "p", t: float = 1.0) -> bytes:
    op = history.Op(index=index, time=t + index, mono=float(index), type=type_, process=process, f="write")  # type: ignore[arg-type]
    return (op.to_json() + "\n").encode()


def test_torn_last_line_is_skipped_with_a_warning_not_an_exception(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "p.jsonl"
    _write_lines(path, [_line(0), _line(1, "ok"), _line(2)[:25]])
    with caplog.at_level(logging.WARNING, logger="harness.history"):
        ops = history.read_history(path)
    assert [op.type for op in ops] == ["invoke", "ok"]
    assert "torn last line" in caplog.text
    assert f"{path}:3" in caplog.text


def test_corrupt_middle_line_is_a_history_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    _write_lines(path, [_line(0), b'{"index": 1, "tim\n', _line(2)])
    with pytest.raises(history.HistoryError, match=r"p\.jsonl:2: corrupt history line"):
        history.read_history(path)


def test_a_complete_last_line_that_is_corrupt_is_an_error_not_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    _write_lines(path, [_line(0), b"not json at all\n"])
    with pytest.raises(history.HistoryError, match=":2:"):
        history.read_history(path)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"index": 0, "time": 1, "mono": 1, "type": "maybe", "process": "p", "f": "write"}, "unknown op type"),
        ({"index": 0, "time": 1, "mono": 1, "type": "ok", "f": "write"}, "missing field 'process'"),
        ({"index": 0, "time": "soon", "mono": 1, "type": "ok", "process": "p", "f": "write"}, "wrong type"),
        ([1, 2, 3], "not a JSON object"),
    ],
)
def test_malformed_op_in_the_middle_is_rejected(tmp_path: Path, raw: object, message: str) -> None:
    path = tmp_path / "p.jsonl"
    _write_lines(path, [(json.dumps(raw) + "\n").encode(), _line(1)])
    with pytest.raises(history.HistoryError, match=message):
        history.read_history(path)


def test_missing_history_folder_is_a_history_error(tmp_path: Path) -> None:
    with pytest.raises(history.HistoryError, match="no history folder"):
        history.read_history(tmp_path / "nope")


def test_files_merge_by_wall_time_and_reindex(tmp_path: Path) -> None:
    _write_lines(tmp_path / "a.jsonl", [_line(0, process="a", t=0.0), _line(2, process="a", t=0.0)])
    _write_lines(tmp_path / "b.jsonl", [_line(1, process="b", t=0.0), _line(3, process="b", t=0.0)])
    ops = history.read_history(tmp_path)
    assert [(op.process, op.time) for op in ops] == [("a", 0.0), ("b", 1.0), ("a", 2.0), ("b", 3.0)]
    assert [op.index for op in ops] == [0, 1, 2, 3]


def test_a_process_whose_wall_clock_stepped_back_keeps_its_own_order(tmp_path: Path) -> None:
    inv = history.Op(index=0, time=100.0, mono=1.0, type="invoke", process="p", f="write")
    done = history.Op(index=1, time=99.0, mono=2.0, type="ok", process="p", f="write")  # NTP stepped back
    (tmp_path / "p.jsonl").write_text(inv.to_json() + "\n" + done.to_json() + "\n")
    ops = history.read_history(tmp_path)
    assert [op.type for op in ops] == ["invoke", "ok"]
    assert history.pair(ops)[0].outcome == "ok"


def test_short_os_write_still_produces_a_whole_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def short_write(fd: int, data: bytes) -> int:
        return real_write(fd, data[: max(1, len(data) // 3)])

    w = history.HistoryWriter(tmp_path, "p")
    monkeypatch.setattr(history.os, "write", short_write)
    w.record("invoke", "write", {"pad": "y" * 500})
    monkeypatch.undo()
    w.close()
    ops = history.read_history(w.path)
    assert ops[0].value == {"pad": "y" * 500}


def test_recording_after_close_is_an_error(tmp_path: Path) -> None:
    w = history.HistoryWriter(tmp_path, "p")
    w.close()
    with pytest.raises(history.HistoryError, match="closed"):
        w.record("invoke", "write")


def test_pair_joins_completion_to_latest_invoke_and_closes_abandoned_invokes_as_info() -> None:
    def op(i: int, type_: str, process: str) -> history.Op:
        return history.Op(index=i, time=float(i), mono=float(i), type=type_, process=process, f="write")  # type: ignore[arg-type]

    ops = [
        op(0, "invoke", "a"),
        op(1, "invoke", "b"),
        op(2, "fail", "b"),
        op(3, "invoke", "a"),  # a's first invoke was never completed
        op(4, "ok", "a"),
        op(5, "ok", "c"),  # completion with no invoke: skipped
        op(6, "invoke", "d"),  # never completed
    ]
    pairs = history.pair(ops)
    assert [(p.invoke.index, None if p.completion is None else p.completion.index, p.outcome) for p in pairs] == [
        (0, None, "info"),
        (1, 2, "fail"),
        (3, 4, "ok"),
        (6, None, "info"),
    ]


def test_op_json_round_trip() -> None:
    op = history.Op(index=3, time=1.5, mono=2.5, type="info", process="w0-u1", f="write",
                    value={"ordinal": 1, "request_id": "r1"}, error="timed out")
    assert history.Op.from_mapping(json.loads(op.to_json())) == op
