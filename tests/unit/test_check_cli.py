"""``harness check``: verdict table, exit codes 0/1/2, one-line errors, evidence untouched."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from harness import cli, facts, history, store

DATA = Path(__file__).resolve().parents[1] / "data"
EXAMPLE = DATA / "example-run"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_example_run", DATA / "make_example_run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run_copy(tmp_path: Path) -> Path:
    """A private copy of the example run, free to break."""
    return Path(shutil.copytree(EXAMPLE, tmp_path / "run"))


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def _check(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.build_app(), ["check", *args], env={"COLUMNS": "250"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_example_run_is_valid_and_prints_every_verdict() -> None:
    code, out, err = _check(str(EXAMPLE))
    assert code == 0, out + err
    for name in ("durability", "identity", "availability", "perf"):
        assert name in out
    assert "overall: valid" in out
    assert "1 recovered" in out
    assert err == ""


def test_committed_example_run_is_what_its_generator_produces(tmp_path: Path) -> None:
    fresh = _generator().write(tmp_path / "example-run")
    assert {k: v[0] for k, v in _snapshot(fresh).items()} == {k: v[0] for k, v in _snapshot(EXAMPLE).items()}


def test_run_with_a_lost_checkpoint_exits_1(tmp_path: Path) -> None:
    broken = _generator().write(tmp_path / "broken", "lost")
    code, out, _ = _check(str(broken))
    assert code == 1
    assert "INVALID" in out
    assert "lost" in out


def test_chosen_checkers_only(run_copy: Path) -> None:
    code, out, _ = _check(str(run_copy), "--checker", "durability", "-c", "identity")
    assert code == 0
    assert "durability" in out
    assert "identity" in out
    assert "availability" not in out


def test_by_default_a_run_is_judged_by_the_checkers_it_used_live(run_copy: Path) -> None:
    # A run without a cluster judged durability and perf only; identity would be "unknown" (exit 2).
    (run_copy / "results.json").write_text(json.dumps({"checkers": {"durability": {}, "perf": {}}}))
    code, out, _ = _check(str(run_copy))
    assert code == 0
    assert "durability" in out
    assert "perf" in out
    assert "identity" not in out


def test_unknown_verdict_exits_2(run_copy: Path) -> None:
    (run_copy / history.HISTORY_DIR / "probe.jsonl").unlink()  # availability can no longer be observed
    code, out, _ = _check(str(run_copy))
    assert code == 2
    assert "no probe samples" in out


def test_crashing_checker_is_unknown_and_exits_2(run_copy: Path) -> None:
    raw = json.loads((run_copy / facts.FACTS_FILE).read_text())
    raw["volumes"].append(raw["volumes"][0])  # two volumes claim ordinal 0
    (run_copy / facts.FACTS_FILE).write_text(json.dumps(raw))
    code, out, _ = _check(str(run_copy), "-c", "durability")
    assert code == 2
    assert "checker crashed" in out


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (shutil.rmtree, "no run folder at"),
        (lambda r: (r / store.RUN_FILE).unlink(), "has no run.json"),
        (lambda r: (r / store.RUN_FILE).write_text("{"), "cannot read"),
        (lambda r: (r / facts.FACTS_FILE).unlink(), "no facts file at"),
        (lambda r: (r / facts.FACTS_FILE).write_text('{"keep_last": "many"}'), "malformed facts"),
        (lambda r: shutil.rmtree(r / history.HISTORY_DIR), "no history folder"),
        (lambda r: (r / history.HISTORY_DIR / "nemesis.jsonl").write_text("garbage\n{}\n"),
         "nemesis.jsonl:1: corrupt history line"),
        (lambda r: (r / store.RUN_FILE).write_text(json.dumps({
            **json.loads((r / store.RUN_FILE).read_text()), "expectations": {"availabilty": {}}})),
         "unknown keys"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(run_copy: Path, breakage: object, message: str) -> None:
    breakage(run_copy)  # type: ignore[operator]
    before = _snapshot(run_copy) if run_copy.exists() else {}
    code, out, err = _check(str(run_copy), "--write")
    assert code == 2
    assert message in _one_line(err)
    assert out == ""
    assert (_snapshot(run_copy) if run_copy.exists() else {}) == before


def test_unknown_checker_name_is_refused_before_reading_anything(tmp_path: Path) -> None:
    code, _, err = _check(str(tmp_path / "does-not-exist"), "--checker", "durabilty")
    assert code == 2
    assert _one_line(err) == ("error: unknown checker 'durabilty'; "
                              "known: durability, identity, availability, perf, faults, resume, shutdown")


def test_torn_last_history_line_is_a_warning_and_the_check_goes_on(run_copy: Path) -> None:
    with (run_copy / history.HISTORY_DIR / "probe.jsonl").open("a") as f:
        f.write('{"index": 99, "time": 17960')
    code, out, err = _check(str(run_copy))
    assert code == 0, out + err
    assert "torn last line" in err


def test_check_never_rewrites_the_evidence_and_write_goes_to_results_check(run_copy: Path) -> None:
    (run_copy / store.RESULTS_FILE).write_text('{"valid": true, "from": "the live run"}\n')
    before = _snapshot(run_copy)
    code, _, _ = _check(str(run_copy))
    assert code == 0
    assert _snapshot(run_copy) == before
    code, _, _ = _check(str(run_copy), "--write")
    assert code == 0
    after = _snapshot(run_copy)
    written = json.loads(after.pop(store.CHECK_RESULTS_FILE)[0])
    assert after == before
    assert written["valid"] is True
    assert set(written["checkers"]) == {"durability", "identity", "availability", "perf"}


def test_console_script_runs_check_as_a_subprocess() -> None:
    proc = subprocess.run([sys.executable, "-m", "harness", "check", str(EXAMPLE), "-c", "identity"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "identity" in proc.stdout


def test_an_interrupted_run_is_judged_as_far_as_its_history_goes(run_copy: Path) -> None:
    (run_copy / facts.FACTS_FILE).unlink()
    info = json.loads((run_copy / store.RUN_FILE).read_text())
    (run_copy / store.RUN_FILE).write_text(json.dumps({**info, "outcome": "interrupted"}))
    code, out, _ = _check(str(run_copy))
    assert code == 2, out
    assert "(interrupted: judged as" in out
    assert "before its volumes were read back" in out
    assert "availability" in out
