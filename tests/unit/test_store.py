"""Run folders: names, atomic files, the latest symlink, read-only stored runs."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path

import pytest

from harness import facts, history, store

T = dt.datetime(2026, 11, 29, 8, 15, 0, tzinfo=dt.UTC)


def _create(base: Path, scenario: str = "pod-kill", **kw: object) -> store.Run:
    return store.create_run(scenario, seed=42, cluster_kind="embedded", base=base, now=T, **kw)  # type: ignore[arg-type]


def test_run_folder_is_named_by_utc_start_and_scenario(tmp_path: Path) -> None:
    run = _create(tmp_path)
    assert run.path == tmp_path / "20261129T081500Z-pod-kill"
    assert (run.path / history.HISTORY_DIR).is_dir()
    info = json.loads((run.path / store.RUN_FILE).read_text())
    assert info["seed"] == 42
    assert info["cluster_kind"] == "embedded"
    assert info["started"] == "2026-11-29T08:15:00Z"
    assert info["ended"] is None
    assert info["versions"]["python"]
    assert "kubernetes" in info["versions"]


def test_local_start_time_is_stored_as_utc(tmp_path: Path) -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    when = dt.datetime(2026, 1, 1, 1, 0, tzinfo=cet)
    run = store.create_run("x", seed=1, cluster_kind="kind", base=tmp_path, now=when)
    assert run.path.name == "20260101T000000Z-x"


def test_two_runs_in_the_same_second_get_distinct_folders(tmp_path: Path) -> None:
    paths = [_create(tmp_path).path for _ in range(3)]
    assert [p.name for p in paths] == ["20261129T081500Z-pod-kill", "20261129T081500Z-pod-kill-2",
                                       "20261129T081500Z-pod-kill-3"]


def test_concurrent_creators_never_share_a_folder(tmp_path: Path) -> None:
    made: list[Path] = []
    lock = threading.Lock()

    def make() -> None:
        p = _create(tmp_path).path
        with lock:
            made.append(p)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 8
    assert (tmp_path / store.LATEST).resolve() in {p.resolve() for p in made}


def test_scenario_names_become_safe_folder_names(tmp_path: Path) -> None:
    run = _create(tmp_path, "scenarios/test_pods.py::test_pod_kill[3 replicas]")
    assert run.path.name == "20261129T081500Z-scenarios-test_pods.py-test_pod_kill-3-replicas"
    with pytest.raises(store.StoreError, match="no letters or digits"):
        _create(tmp_path, "///")


def test_latest_points_at_the_newest_run_through_a_relative_symlink(tmp_path: Path) -> None:
    first = _create(tmp_path)
    second = store.create_run("scale", seed=1, cluster_kind="kind", base=tmp_path, now=T + dt.timedelta(seconds=5))
    link = tmp_path / store.LATEST
    assert link.is_symlink()
    assert os.readlink(link) == second.path.name
    assert first.path.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_latest_that_is_a_real_folder_is_a_clear_error_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / store.LATEST).mkdir()
    (tmp_path / store.LATEST / "keep.txt").write_text("mine")
    with pytest.raises(store.StoreError, match="not a symlink"):
        _create(tmp_path)
    assert (tmp_path / store.LATEST / "keep.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_settings_that_are_not_json_fail_before_the_run_starts(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        _create(tmp_path, settings={"when": object()})


def test_facts_are_written_once(tmp_path: Path) -> None:
    run = _create(tmp_path)
    run.write_facts(facts.RunFacts(keep_last=3))
    with pytest.raises(store.StoreError, match="written once"):
        run.write_facts(facts.RunFacts(keep_last=4))
    assert facts.RunFacts.load(run.path / facts.FACTS_FILE).keep_last == 3


def test_finish_records_the_end_time(tmp_path: Path) -> None:
    run = _create(tmp_path)
    run.finish(T + dt.timedelta(minutes=2))
    stored = store.open_run(run.path)
    assert stored.info.ended == "2026-11-29T08:17:00Z"
    assert stored.info.started == "2026-11-29T08:15:00Z"


def test_atomic_write_leaves_the_old_file_when_the_write_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "results.json"
    target.write_text("old")

    def boom(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", boom)
    with pytest.raises(OSError, match="No space"):
        store.atomic_write_text(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_full_run_reads_back_through_stored_run(tmp_path: Path) -> None:
    run = _create(tmp_path, expectations={"set_deleted": True})
    with run.history_writer("w0-u0") as w:
        w.record("invoke", "write", {"ordinal": 0, "request_id": "r1", "bytes": 1, "shards": 1})
        w.record("ok", "write", {"ordinal": 0, "step": 1, "digest": "d", "bytes": 1, "epoch": "e",
                                 "durable_at": 1.0, "request_id": "r1"})
    run.write_facts(facts.RunFacts(keep_last=2))
    run.write_results({"valid": True})
    run.finish(T)
    stored = store.open_run(tmp_path / store.LATEST)
    assert [op.type for op in stored.history()] == ["invoke", "ok"]
    assert stored.facts().keep_last == 2
    assert stored.results() == {"valid": True}
    assert stored.info.expectations == {"set_deleted": True}


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def test_opening_and_checking_a_stored_run_changes_no_file(tmp_path: Path) -> None:
    run = _create(tmp_path)
    with run.history_writer("p") as w:
        w.record("invoke", "write", {"ordinal": 0, "request_id": "r", "bytes": 1, "shards": 1})
    run.write_facts(facts.RunFacts())
    run.write_results({"valid": True})
    before = _snapshot(run.path)
    stored = store.open_run(run.path)
    stored.history()
    stored.facts()
    stored.results()
    out = stored.write_check_results({"valid": False})
    after = _snapshot(run.path)
    assert out.name == store.CHECK_RESULTS_FILE
    del after[store.CHECK_RESULTS_FILE]
    assert after == before


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "no run folder at"),
        (lambda p: p.write_text("x"), "is a file, not a run folder"),
        (lambda p: p.mkdir(), "has no run.json"),
        (lambda p: (p.mkdir(), (p / "run.json").write_text("{oops")), "cannot read"),
        (lambda p: (p.mkdir(), (p / "run.json").write_text('{"name": "x"}')), "lacks field 'scenario'"),
        (lambda p: (p.mkdir(), (p / "run.json").write_text(
            '{"name": "x", "scenario": "s", "seed": "one", "cluster_kind": "k", "started": "t"}')),
         "'seed' should be int"),
    ],
)
def test_bad_run_folders_are_one_line_store_errors(tmp_path: Path, setup: object, message: str) -> None:
    folder = tmp_path / "run"
    setup(folder)  # type: ignore[operator]
    with pytest.raises(store.StoreError, match=message) as err:
        store.open_run(folder)
    assert "\n" not in str(err.value)


def test_stored_run_without_facts_or_history_says_which_file(tmp_path: Path) -> None:
    run = _create(tmp_path)
    stored = store.open_run(run.path)
    with pytest.raises(store.StoreError, match=r"no facts file at .*facts\.json"):
        stored.facts()
    (run.path / history.HISTORY_DIR).rmdir()
    with pytest.raises(store.StoreError, match="no history folder"):
        stored.history()
