"""index.html across runs, the ``harness report`` command and the report bench, on hand-built runs."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from harness import cli, store
from harness.report import bench, page, runs, synthrun


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reports folder: two runs of one scenario (one invalid), one of another, one incomplete,
    a folder that is no run, a broken results.json, a ``latest`` link and a stray file."""
    base = tmp_path_factory.mktemp("reports")
    synthrun.write(base / "20261201T000000Z-a", synthrun.Shape(scenario="a", faults=2, seed=1))
    synthrun.write(base / "20261202T000000Z-a", synthrun.Shape(scenario="a", faults=2, seed=2, lost=1))
    synthrun.write(base / "20261203T000000Z-b", synthrun.Shape(scenario="b", faults=1, seed=3))
    synthrun.write(base / "20261204T000000Z-b", synthrun.Shape(scenario="b", faults=1, seed=4, with_results=False))
    broken = synthrun.write(base / "20261205T000000Z-c", synthrun.Shape(scenario="c", faults=1, seed=5))
    (broken / store.RESULTS_FILE).write_text("{truncated")
    (base / "not-a-run").mkdir()
    (base / "README.md").write_text("generated\n")
    os.symlink("20261203T000000Z-b", base / store.LATEST)
    return base


def test_summaries_carry_the_key_figures_and_never_raise(reports: Path) -> None:
    rows = {r.name: r for r in runs.collect(reports)}
    assert set(rows) == {"20261201T000000Z-a", "20261202T000000Z-a", "20261203T000000Z-b", "20261204T000000Z-b",
                         "20261205T000000Z-c", "not-a-run"}
    valid = rows["20261201T000000Z-a"]
    assert valid.status == "valid"
    assert valid.acks is not None
    assert valid.acks > 0
    assert (valid.faults, valid.declared_faults) == (2, 2)
    assert valid.slowest_recovery_s is not None
    assert valid.per_s is not None
    assert rows["20261202T000000Z-a"].status == "deviated"
    assert "durability" in rows["20261202T000000Z-a"].summary
    incomplete = rows["20261204T000000Z-b"]
    assert incomplete.status == "incomplete"
    assert incomplete.acks is not None
    assert incomplete.acks > 0  # counted from the history: what evidence there is
    assert incomplete.faults == 1
    assert rows["not-a-run"].status is None
    assert rows["not-a-run"].problem
    assert rows["20261205T000000Z-c"].problem  # results.json unreadable: said, not fatal


def test_index_lists_every_run_with_links_and_a_trend_per_scenario(reports: Path) -> None:
    page.build(reports / "20261201T000000Z-a")
    html = runs.build_index(reports).read_text()
    for name in ("20261201T000000Z-a", "20261202T000000Z-a", "20261203T000000Z-b", "20261204T000000Z-b",
                 "20261205T000000Z-c", "not-a-run"):
        assert f'id="run-{name}"' in html
    assert '<a href="20261201T000000Z-a/report.html">report</a>' in html
    assert 'href="20261203T000000Z-b/"' in html  # no report.html yet: the folder, and how to build it
    row = re.search(r'<tr class="run st-row-incomplete" id="run-20261204T000000Z-b">(.*?)</tr>', html, re.S)
    assert row is not None
    assert "incomplete" in row.group(1)
    assert 'id="run-latest"' not in html
    for scenario in ("a", "b", "c"):
        assert f'id="trend-svg-{scenario}"' in html
    assert "<script" not in html
    # newest first
    assert html.index('id="run-20261205T000000Z-c"') < html.index('id="run-20261201T000000Z-a"')


def test_index_of_an_empty_or_missing_folder(tmp_path: Path) -> None:
    html = runs.build_index(tmp_path / "none").read_text()
    assert "No run folders yet" in html


def _report(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.build_app(), ["report", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_cli_builds_a_report_the_index_or_everything(reports: Path, tmp_path: Path) -> None:
    run_dir = reports / "20261203T000000Z-b"
    code, out, err = _report(str(run_dir))
    assert code == 0, out + err
    assert (run_dir / page.REPORT_FILE).is_file()
    assert "wrote" in out

    code, out, err = _report("--index", "--reports-dir", str(reports))
    assert code == 0, out + err
    assert (reports / runs.INDEX_FILE).is_file()

    code, out, err = _report(str(tmp_path / "nope"), "--index", "--reports-dir", str(reports))
    assert code == 2
    assert "no run folder" in err
    assert "index.html" in out  # the other pages are still built

    code, _, err = _report()
    assert code == 2
    assert "--index" in err


def test_cli_all_rebuilds_every_readable_run(tmp_path: Path) -> None:
    base = tmp_path / "reports"
    for i in range(2):
        synthrun.write(base / f"r{i}", synthrun.Shape(n_ops=600, faults=1, seed=i))
    (base / "junk").mkdir()
    code, out, err = _report("--all", "--reports-dir", str(base))
    assert code == 0, out + err
    assert all((base / f"r{i}" / page.REPORT_FILE).is_file() for i in range(2))
    index = (base / runs.INDEX_FILE).read_text()
    assert index.count(">report</a>") == 2


def test_report_bench_prints_its_figures_against_the_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "N_OPS", 3_000)
    monkeypatch.setattr(bench, "N_FAULTS", 3)
    monkeypatch.setattr(bench, "N_INDEX_RUNS", 2)
    out = io.StringIO()
    bench.run(Console(file=out, width=200))
    text = out.getvalue()
    for needle in ("baseline: read the history (store)", "1.00x", "report.build, warm", "timeline.draw",
                   "index.html of 2 runs", "report.html size", "within the 5 s / 5 MB budget"):
        assert needle in text, text


def test_synthetic_run_is_what_a_scenario_leaves(tmp_path: Path) -> None:
    run_dir = synthrun.write(tmp_path / "r", synthrun.Shape(n_ops=1_000, faults=2))
    results = json.loads((run_dir / store.RESULTS_FILE).read_text())
    assert results["valid"] is True, results["summary"]
    assert results["checkers"]["faults"]["details"]["took_effect"] == 2
    assert len(store.open_run(run_dir).history()) >= 1_000
