"""The CI workflows do what the README says: `make test` on every change, and the nightly on kind
runs the README's "Nightly on kind" commands; both pass actionlint (also run by `make lint`)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
FENCE = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def workflow(name: str) -> dict[Any, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(doc, dict)
    return doc


def triggers(doc: dict[Any, Any]) -> dict[str, Any]:
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on:` key as the boolean True
    assert isinstance(on, dict)
    return on


def run_lines(doc: dict[Any, Any]) -> list[str]:
    """Every line of every `run:` script, in order, comments dropped."""
    lines = []
    for job in doc["jobs"].values():
        for step in job["steps"]:
            for line in str(step.get("run", "")).splitlines():
                if line.strip() and not line.strip().startswith("#"):
                    lines.append(" ".join(line.split()))
    return lines


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start: end if end != -1 else len(text)]


def test_ci_runs_make_test_on_every_push_and_pull_request_with_python_311() -> None:
    doc = workflow("ci.yml")
    assert {"push", "pull_request"} <= set(triggers(doc))
    [job] = doc["jobs"].values()
    assert job["runs-on"].startswith("ubuntu")
    setup = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-python@")]
    assert [s["with"]["python-version"] for s in setup] == ["3.11"]
    assert run_lines(doc)[-1] == "make test"


def test_the_ci_script_runs_exactly_the_readmes_test_command() -> None:
    commands = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]
    assert "make test   # lint, types, layering contracts and the test suite (exactly what CI runs)" in \
        (REPO / "README.md").read_text()


def test_the_nightly_runs_the_readmes_commands_in_their_order() -> None:
    documented = [" ".join(line.split()) for line in FENCE.findall(readme_section("Nightly on kind"))[0].splitlines()
                  if line.strip()]
    assert documented, "the README's Nightly on kind section lists no commands"
    lines = run_lines(workflow("nightly-durability.yml"))
    position = 0
    for command in documented:
        found = next((i for i in range(position, len(lines)) if command in lines[i]), None)
        assert found is not None, f"the nightly does not run `{command}` (after line {position} of its scripts)"
        position = found + 1


def test_the_nightly_is_scheduled_and_keeps_its_evidence_whatever_happens() -> None:
    doc = workflow("nightly-durability.yml")
    on = triggers(doc)
    assert "workflow_dispatch" in on
    assert on["schedule"][0]["cron"]
    [job] = doc["jobs"].values()
    steps = {step["name"]: step for step in job["steps"] if "name" in step}
    upload = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"
    assert {"reports/", ".pytest-kind/"} <= set(upload["with"]["path"].split())
    summary = steps["Verdicts into the job summary"]
    assert summary["if"] == "always()"
    assert "$GITHUB_STEP_SUMMARY" in summary["run"]
    assert steps["Delete the kind cluster"]["if"] == "always()"
    for name in ("Bounded soak (600 s of mixed faults)",
                 "Pulumi deploy compared with the direct deploy on the live cluster, then destroyed"):
        assert steps[name]["if"] == "${{ !cancelled() }}", f"{name} must run after a failed scenario step too"
    junit = [line for line in run_lines(doc) if line.startswith("pytest ")]
    assert junit, "no pytest step"
    assert all("--junitxml reports/" in line and "--cluster kind" in line for line in junit)


def test_the_nightly_installs_the_optional_extras_only_if_they_exist() -> None:
    script = next(s["run"] for s in workflow("nightly-durability.yml")["jobs"]["durability"]["steps"]
                  if s.get("name", "").startswith("Install the harness"))
    assert "optional-dependencies" in script
    assert '"torch", "orbax"' in script


def test_both_workflows_pass_actionlint() -> None:
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install -e '.[dev]')")
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or ""
    done = subprocess.run([actionlint, f"-shellcheck={shellcheck}", *sorted(map(str, WORKFLOWS.glob("*.yml")))],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
