"""A scenario session end to end, on local writer processes: what a run leaves behind, and how
it is replayed (``--replay``, ``--seed=last``) and judged again (``harness check``)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

SCENARIO = textwrap.dedent('''
    """One writer SIGKILLed once and restarted: nothing acknowledged is lost."""
    from harness.scenario import model, schedule

    SCENARIO = model.Scenario(
        name="mini-kill", claim=__doc__, system="local-processes", deploy={"replicas": "1", "keep_last": "2"},
        faults={"kill": model.Fault("kill-writer-process", "SIGKILLed")},
        schedule=lambda ctx: schedule.repeat(ctx.seed, "kill", schedule.ordinals("ordinal", ctx.replicas), 1,
                                             delay_s=(0.1, 0.3)),
        load=model.LoadProfile(users=2, checkpoint_bytes=4096, shards=1, tail_s=0.5),
        checkers=("durability", "availability", "resume", "faults"),
    )

    def test_mini(run_scenario):
        run_scenario(SCENARIO)
''')


def _pytest(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s", "--timeout", "120",
                           "test_mini.py", *args], cwd=where, capture_output=True, text=True, timeout=240,
                          check=False)


def _runs(where: Path) -> list[Path]:
    return sorted(p for p in (where / "reports").iterdir() if p.is_dir() and not p.is_symlink())


def test_a_session_leaves_reports_and_replays_by_run_and_by_last_seed(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["harness.pytest_plugin"]\n')
    (tmp_path / "test_mini.py").write_text(SCENARIO)
    first = _pytest(tmp_path, "--seed", "4242", "--html", "reports/scenarios.html", "--self-contained-html")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    [run] = _runs(tmp_path)
    info = json.loads((run / "run.json").read_text())
    assert (info["seed"], info["outcome"]) == (4242, "finished")
    assert info["settings"]["pytest_nodeid"] == "test_mini.py::test_mini"
    for produced in ("report.html", "results.json", "facts.json", "schedule.json", "cluster-logs/writers"):
        assert (run / produced).exists(), f"{produced} missing from {run}"
    assert (tmp_path / "reports" / "index.html").exists()
    assert (tmp_path / "reports" / "scenarios.html").exists()
    assert not (tmp_path / "reports" / "scenarios.partial.html").exists()
    assert json.loads((tmp_path / "reports" / ".last-session.json").read_text()) == [run.name]

    replayed = _pytest(tmp_path, "--replay", str(run))
    assert replayed.returncode == 0, replayed.stdout[-3000:]
    assert f"replaying {run}: seed 4242" in replayed.stdout
    last = _pytest(tmp_path, "--seed", "last")
    assert last.returncode == 0, last.stdout[-3000:]
    assert "--seed=last: seed 4242 of the last stored run of mini-kill" in last.stdout
    runs = _runs(tmp_path)
    assert len(runs) == 3
    schedules = {(r / "schedule.json").read_text() for r in runs}
    assert len(schedules) == 1, "a replay runs the very same schedule"

    check = subprocess.run([sys.executable, "-m", "harness", "check"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "1 runs of the last session: 1 valid" in check.stdout


def test_replay_of_something_that_is_not_a_run_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["harness.pytest_plugin"]\n')
    (tmp_path / "test_mini.py").write_text(SCENARIO)
    done = _pytest(tmp_path, "--replay", str(tmp_path / "nope"))
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert done.stderr.strip().splitlines()[0].startswith("ERROR: --replay")
