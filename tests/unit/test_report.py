"""report.html from hand-built runs: verdicts grouped by what failed, one fault row and band per
fault, incomplete and fact-less runs still shown for what they are, huge runs within bounds."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from harness import facts, history, store
from harness.report import model, page, scan, synthrun, timeline

FAULTS = 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One folder per shape, written once for the module (each is read-only to the tests)."""
    base = tmp_path_factory.mktemp("report-runs")
    shapes = {
        "valid": synthrun.Shape(faults=FAULTS),
        "invalid": synthrun.Shape(faults=FAULTS, lost=2, torn=1, seed=3),
        "incomplete": synthrun.Shape(faults=FAULTS, with_results=False, seed=4),
        "bare": synthrun.Shape(faults=FAULTS, with_results=False, with_facts=False, seed=5),
        "no-facts": synthrun.Shape(faults=FAULTS, with_facts=False, seed=6),
    }
    return {name: synthrun.write(base / name, shape) for name, shape in shapes.items()}


def _group(html: str, cls: str) -> str | None:
    m = re.search(rf'<div class="group {cls}" id="group-{cls}">(.*?)</div>', html, re.S)
    return None if m is None else m.group(1)


def _copy(src: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(src, tmp_path / src.name))


def test_valid_run_lists_every_checker_as_valid_and_nothing_as_deviated(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["valid"], tmp_path)
    html = page.build(run).read_text()
    results = json.loads((run / store.RESULTS_FILE).read_text())
    passed = _group(html, "passed")
    assert passed is not None
    for name in results["checkers"]:
        assert f'id="checker-{name}"' in passed
    assert _group(html, "deviated") is None
    assert _group(html, "undecided") is None
    assert 'data-status="valid"' in html.split('id="verdicts"')[1].split("</p>")[0]


def test_deviated_is_kept_apart_from_unknown_and_crashed(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["invalid"], tmp_path)
    results = json.loads((run / store.RESULTS_FILE).read_text())
    results["checkers"]["identity"] = {"valid": "unknown", "summary": "checker crashed: ValueError: boom",
                                       "details": {"error": "ValueError: boom", "traceback": "Traceback ..."}}
    results["checkers"]["faults"]["valid"] = "unknown"
    results["checkers"]["faults"]["summary"] = "declared 3 faults, only 2 took effect"
    (run / store.RESULTS_FILE).write_text(json.dumps(results))
    html = page.build(run).read_text()

    deviated, undecided, passed = (_group(html, c) for c in ("deviated", "undecided", "passed"))
    assert deviated is not None
    assert undecided is not None
    assert passed is not None
    assert 'id="checker-durability"' in deviated
    assert 'data-status="deviated"' in deviated
    assert "lost" in deviated
    assert 'id="checker-identity"' in undecided
    assert 'data-status="errored"' in undecided
    assert "error: ValueError: boom" in undecided
    assert 'id="checker-faults"' in undecided
    assert 'data-status="unknown"' in undecided
    assert "durability" not in undecided
    assert "identity" not in deviated
    assert html.index('id="verdicts"') < html.index('id="timeline"')  # verdicts first


def test_one_fault_row_and_one_band_per_fault(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["valid"], tmp_path)
    html = page.build(run).read_text()
    view = model.load(run)
    assert len(view.timeline.faults) == FAULTS
    assert html.count('class="fault-row"') == FAULTS
    assert len(re.findall(r'<g id="fault-band-\d+" class="fault-band"><title>', html)) == FAULTS
    for f in view.timeline.faults:
        row = re.search(rf'<tr class="fault-row" id="fault-{f.index}">(.*?)</tr>', html, re.S)
        assert row is not None
        assert f.fault in row.group(1)
        assert f.targets[0] in row.group(1)
        assert f"{f.start:.3f}" in row.group(1)
        assert f.end is not None
        assert f"{f.end:.3f}" in row.group(1)
        assert f.recoveries  # from the availability details
        assert f.resumes  # from the resume details


def test_lost_and_torn_checkpoints_are_marked_and_tabled(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["invalid"], tmp_path)
    view = model.load(run)
    kinds = [m.kind for m in view.timeline.marks]
    assert kinds.count("lost") >= 1
    assert kinds.count("torn") == 1
    lost = next(m for m in view.timeline.marks if m.kind == "lost")
    assert lost.t is not None
    assert 0 <= lost.t <= view.timeline.span
    html = page.render(view)
    assert 'id="marks-lost"' in html
    assert 'id="marks-torn"' in html
    assert 'id="problems-lost"' in html
    assert view.checkpoints is not None
    assert view.checkpoints.totals["torn"] == 1


def test_run_without_results_is_incomplete_with_its_evidence(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["incomplete"], tmp_path)
    html = page.build(run).read_text()
    view = model.load(run)
    assert view.verdicts.status == "incomplete"
    assert not view.verdicts.stored
    assert 'id="incomplete"' in html
    assert "Not judged" in html
    assert 'data-status="valid"' not in html
    assert 'data-status="deviated"' not in html
    # the evidence there is: the timeline and tables computed from the history and facts
    assert len(view.timeline.faults) == FAULTS
    assert html.count('class="fault-row"') == FAULTS
    assert "computed from the stored evidence" in view.timeline.source
    assert view.timeline.buckets
    assert view.checkpoints is not None
    assert view.ordinals is not None


def test_run_with_only_a_history_still_renders(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["bare"], tmp_path)
    html = page.build(run).read_text()
    assert 'id="incomplete"' in html
    assert f"no {facts.FACTS_FILE}" in html
    assert "identity was not recorded" in html
    assert html.count('class="fault-row"') == FAULTS


def test_run_without_facts_says_so_and_shows_the_rest(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["no-facts"], tmp_path)
    view = model.load(run)
    assert view.ordinals is None
    assert any(facts.FACTS_FILE in p for p in view.problems)
    html = page.render(view)
    assert 'id="evidence-problems"' in html
    assert "identity was not recorded" in html
    assert view.verdicts.stored
    assert html.count('class="fault-row"') == FAULTS


def test_a_broken_history_is_named_not_fatal(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["valid"], tmp_path)
    victim = sorted((run / history.HISTORY_DIR).glob("*.jsonl"))[0]
    lines = victim.read_text().splitlines()
    victim.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    view = model.load(run)
    assert any("history unreadable" in p for p in view.problems)
    assert view.verdicts.status == "valid"  # the stored verdicts are still the run's verdicts
    assert "history unreadable" in page.render(view)


def test_not_a_run_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(store.StoreError):
        page.build(tmp_path)


def test_links_are_relative_and_optional_parts_linked_when_present(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["valid"], tmp_path)
    html = page.build(run).read_text()
    assert 'id="locust-html"' not in html
    assert 'id="cluster-logs"' not in html
    (run / "load").mkdir()
    (run / "load" / "locust.html").write_text("<html></html>")
    (run / model.CLUSTER_LOGS_DIR).mkdir()
    html = page.build(run).read_text()
    assert '<a href="load/locust.html" id="locust-html">' in html
    assert '<a href="cluster-logs/" id="cluster-logs">' in html
    for name in (p.name for p in (run / history.HISTORY_DIR).glob("*.jsonl")):
        assert f'href="history/{name}"' in html
    hrefs = re.findall(r'href="([^"#]+)"', html)
    assert hrefs
    assert all("://" not in h and not h.startswith("/") for h in hrefs)
    assert "<script" not in html


def test_replay_command_names_the_node_or_the_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "test_pod_kill.py").write_text('SCENARIO = Scenario(name="pod-kill")\n')
    (tmp_path / "scenarios" / "test_rollout.py").write_text('name="partitioned-update"\n')
    (tmp_path / "scenarios" / "test_node_crash.py").write_text("")
    (tmp_path / "scenarios" / "test_node_crash_force_delete.py").write_text("")
    run_dir = tmp_path / "reports" / "r"

    def info(scenario: str, **settings: object) -> store.RunInfo:
        return store.RunInfo(name="r", scenario=scenario, seed=42, cluster_kind="embedded", started="x",
                             settings=settings)

    assert model.replay_command(run_dir, info("pod-kill")) == "pytest scenarios/test_pod_kill.py -s --seed=42"
    assert "scenarios/test_rollout.py" in model.replay_command(run_dir, info("partitioned-update"))
    assert "test_node_crash_force_delete.py" in model.replay_command(run_dir, info("node-crash-force-delete-shared"))
    node = "scenarios/test_container_kill.py::test_x[KILL]"
    assert model.replay_command(run_dir, info("container-kill-kill", pytest_nodeid=node)) == \
        f"pytest '{node}' -s --seed=42"
    assert "file not found" in model.replay_command(run_dir, info("no-such-scenario"))


def test_scan_matches_the_history_reader(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["valid"], tmp_path)
    # a tie across files and a torn last line: both readers must agree op for op
    extra = run / history.HISTORY_DIR / "zz-extra.jsonl"
    ops_ = history.read_history(run)
    tie = history.Op(0, ops_[10].time, 1.0, "invoke", "probe-9", "read", {"ordinal": 9})
    extra.write_text(tie.to_json() + "\n" + '{"torn": ')
    expected = history.read_history(run)
    sc = scan.scan_run(run)
    assert list(sc.times) == [op.time for op in expected]
    assert sc == scan.from_ops(expected)
    assert sc.probes[9].samples == 1


def test_huge_timeline_is_merged_and_bounded() -> None:
    n = 20_000  # the perf checker's MAX_BUCKETS
    buckets = tuple(model.Bucket(t=float(i), width=1.0, ok=10 + i % 7, unacked=i % 3, per_s=10.0 + i % 7,
                                 p50_s=0.03, p99_s=0.1 + (i % 100) / 1000) for i in range(n))
    faults_ = tuple(model.Fault(i, "pod-kill", (f"ckpt-{i % 3}",), i * 40.0, i * 40.0 + 5, "ok", {})
                    for i in range(400))
    lanes = tuple(model.Lane(o, 0.0, float(n), n, tuple(model.Window(o, i * 40.0 + 1, i * 40.0 + 4, True, ())
                                                        for i in range(400) if i % 3 == o)) for o in range(3))
    marks = tuple(model.Mark("lost", i % 3, i, float(i * 6), "gone") for i in range(3_000))
    tl = model.Timeline(1.0, float(n), buckets, lanes, faults_, marks, "test")
    started = time.perf_counter()
    drawn = timeline.draw(tl)
    elapsed = time.perf_counter() - started
    assert drawn is not None
    assert drawn.merged == 17  # 20,000 buckets drawn as 1,177 points
    assert drawn.svg.count('class="fault-band"') == 400
    assert len(drawn.svg.encode()) < 5 * 2**20
    assert elapsed < 10  # generous: the bench holds the real budget


def test_huge_run_report_stays_under_the_size_bound(runs: dict[str, Path], tmp_path: Path) -> None:
    """A long run's results.json at its limits (20,000 perf buckets, 1,000 listed problems per
    kind, hundreds of faults) still gives a report.html under 5 MB."""
    run = _copy(runs["invalid"], tmp_path)
    results = json.loads((run / store.RESULTS_FILE).read_text())
    perf_d = results["checkers"]["perf"]["details"]
    perf_d["series"] = [{"t": float(i), "ok": 12, "fail": 0, "info": 1, "checkpoints_per_s": 12.0, "mb_per_s": 1.0,
                         "latency_p50_s": 0.03, "latency_p99_s": 0.2} for i in range(20_000)]
    avail = results["checkers"]["availability"]["details"]
    avail["faults"] = [{"fault": "pod-kill", "targets": [f"ckpt-{i % 3}"], "start": i * 40.0, "end": i * 40.0 + 3,
                        "heal": "ok", "expected_unavailable": {}, "start_op": 0, "stop_op": 1} for i in range(500)]
    dur = results["checkers"]["durability"]["details"]
    for kind in ("lost", "torn", "unexpected"):
        dur[kind] = [{"kind": kind, "ordinal": i % 3, "step": i, "request_id": None, "op": i, "name": f"step-{i}",
                      "reason": "x" * 80} for i in range(1_000)]
    (run / store.RESULTS_FILE).write_text(json.dumps(results))
    out = page.build(run)
    assert out.stat().st_size < 5 * 2**20
    html = out.read_text()
    assert html.count('class="fault-row"') == 500
    assert "… and 950 more" in html


def test_a_later_recheck_is_shown_beside_the_live_verdicts(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["valid"], tmp_path)
    (run / store.CHECK_RESULTS_FILE).write_text(json.dumps({"valid": False, "summary": "INVALID (durability: x)"}))
    html = page.build(run).read_text()
    assert f'<a href="{store.CHECK_RESULTS_FILE}">' in html
    assert "INVALID: INVALID (durability: x)" in html
    assert _group(html, "deviated") is None  # the page's verdicts stay the live run's
