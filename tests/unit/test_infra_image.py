"""The ckpt-writer image: Dockerfile shape, its minimal dependency set, and `harness image build` without Docker."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from harness.deploy import image, manifests

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "infra" / "Dockerfile"
IGNORE = REPO / "infra" / "Dockerfile.dockerignore"
WRITER_REQUIREMENTS = REPO / "infra" / "writer-requirements.txt"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions(DOCKERFILE.read_text())
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_final_stage_is_python_slim_and_runs_the_writer_as_non_root() -> None:
    stage = final_stage()
    assert stage[0] == ("FROM", "python:3.11-slim")
    users = [args for word, args in stage if word == "USER"]
    assert users, "the final stage must set USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit(), "numeric UID so the kubelet can check runAsNonRoot without /etc/passwd"
    assert int(uid) != 0
    assert int(uid) == manifests.RUN_AS_ID
    assert gid == "" or int(gid) == manifests.RUN_AS_ID
    entry = [json.loads(args) for word, args in stage if word == "ENTRYPOINT"]
    assert entry == [["harness", "writer", "serve"]]
    assert [json.loads(args) for word, args in stage if word == "CMD"] == [["--data-dir", "/data"]]
    assert ("EXPOSE", "8080") in stage
    # USER comes after every RUN: nothing later in the stage runs as root
    last_user = max(i for i, (word, _) in enumerate(stage) if word == "USER")
    assert all(word != "RUN" for word, _ in stage[last_user:])


def test_image_installs_the_harness_without_deps_plus_only_the_writer_requirements() -> None:
    text = " ".join(args for _, args in instructions(DOCKERFILE.read_text()))
    assert "pip wheel --no-deps --wheel-dir /wheels ." in text
    assert "-r writer-requirements.txt" in text
    assert "pip install --no-deps --no-index /wheels/*.whl" in text


def test_build_context_allow_list_covers_every_copy_source() -> None:
    allowed = {line.strip().lstrip("!").rstrip("/") for line in IGNORE.read_text().splitlines() if line.startswith("!")}
    for word, args in instructions(DOCKERFILE.read_text()):
        if word != "COPY" or "--from" in args:
            continue
        *sources, _dest = shlex.split(args)
        for source in sources:
            assert source.rstrip("/") in allowed, f"COPY {source} is excluded by {IGNORE.name}"
            assert (REPO / source).exists()


def writer_modules() -> set[str]:
    """Top-level modules installed by writer-requirements.txt and everything it pulls in."""
    todo = [
        Requirement(line).name
        for line in WRITER_REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    seen: set[str] = set()
    modules: set[str] = set()
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        dist = importlib.metadata.distribution(name)
        for requirement in map(Requirement, dist.requires or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
        top_level = dist.read_text("top_level.txt")
        if top_level:
            modules.update(top_level.split())
        for file in dist.files or []:
            head = file.parts[0]
            if not head.endswith((".dist-info", ".data")) and head != "..":
                modules.add(head.removesuffix(".py").split(".")[0])
    return modules


BLOCKED_RUN = r"""
import importlib.abc, json, sys
allowed = set(json.loads(sys.argv[1])) | set(sys.stdlib_module_names) | {"harness"}
refused = []

class OnlyTheImageHas(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        # _sysconfigdata_* is stdlib but not in stdlib_module_names (its name is per platform)
        if top not in allowed and top not in sys.modules and not top.startswith("_sysconfigdata"):
            refused.append(name)
            raise ModuleNotFoundError(f"{name} is not in the writer image", name=name)
        return None

sys.meta_path.insert(0, OnlyTheImageHas())
import harness.workload.serve, harness.workload.config  # what `writer serve` imports when it runs
from harness import cli
sys.argv = ["harness", "writer", "serve", "--help"]
try:
    cli.main()
except SystemExit as exc:
    print(json.dumps({"exit": exc.code, "refused": refused}))
"""


def test_writer_cli_runs_with_only_what_the_image_installs() -> None:
    modules = writer_modules()
    assert {"blake3", "typer", "rich"} <= modules
    assert not {"kubernetes", "pulumi", "locust", "yaml"} & modules
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUN, json.dumps(sorted(modules))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert last.startswith("{"), f"writer CLI failed without the harness's other dependencies: {proc.stderr[-2000:]}"
    result = json.loads(last)
    # Refused imports that did not stop the CLI are optional probes (try: import attr ...).
    assert result["exit"] == 0, result
    assert "--data-dir" in proc.stdout


def run_harness(args: list[str], path_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": str(path_dir)}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def fake_tool(directory: Path, name: str, script: str) -> None:
    tool = directory / name
    tool.write_text(f"#!/bin/sh\n{script}\n")
    tool.chmod(0o755)


def test_image_build_without_a_docker_daemon_is_one_line(tmp_path: Path) -> None:
    # The client binary exists but no daemon answers: exactly this machine's situation.
    fake_tool(
        tmp_path,
        "docker",
        'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. '
        'Is the docker daemon running?" >&2; exit 1',
    )
    proc = run_harness(["image", "build"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: the Docker daemon is not running or not reachable (Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock. Is the docker daemon running?); start Docker and retry"
    ]
    assert proc.stdout == ""


def test_image_build_without_docker_installed_is_one_line(tmp_path: Path) -> None:
    proc = run_harness(["image", "build"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: docker is not installed (no `docker` on PATH); install Docker to build the writer image"
    ]


def test_kind_load_needs_kind_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path, "docker", 'echo "27.0.0"')  # a daemon that answers `docker info`
    monkeypatch.setenv("PATH", str(tmp_path))
    plan = image.plan(None, None, "ckpt-chaos")
    with pytest.raises(image.ImageError, match=r"kind is not installed .*drop --kind"):
        image.build(plan, echo=lambda _line: None)


def test_format_layers_become_one_build_arg_and_unknown_ones_are_refused() -> None:
    plan = image.plan(None, "ckpt-writer:9.9.9", None, image.parse_formats("orbax, torch"))
    argv = plan.docker_build_argv()
    assert argv[argv.index("--build-arg") + 1] == "WRITER_FORMATS=torch orbax"
    assert "--build-arg" not in image.plan(None, "ckpt-writer:9.9.9", None).docker_build_argv()
    with pytest.raises(image.ImageError, match=r"^--formats jax: not an optional format library .*torch, orbax"):
        image.parse_formats("torch,jax")


def test_each_format_layer_has_its_requirements_and_the_dockerfile_installs_them() -> None:
    text = " ".join(args for _, args in instructions(DOCKERFILE.read_text()))
    assert "ARG WRITER_FORMATS" in DOCKERFILE.read_text()
    assert '-r "writer-requirements-$format.txt"' in text
    for name in image.FORMAT_LAYERS:
        requirements = REPO / "infra" / f"writer-requirements-{name}.txt"
        pins = [line for line in requirements.read_text().splitlines() if line and not line.startswith(("#", "-"))]
        assert pins, f"{requirements.name} installs nothing"
        # the extra of the same name in pyproject.toml pins the same libraries
        extra = importlib.metadata.metadata("ckpt-chaos-harness").get_all("Requires-Dist") or []
        in_extra = {Requirement(r).name for r in extra if f'extra == "{name}"' in r}
        assert {Requirement(p).name for p in pins} == in_extra


def test_build_plan_commands() -> None:
    plan = image.plan(None, "ckpt-writer:9.9.9", "ckpt-chaos")
    assert plan.docker_build_argv() == [
        "docker",
        "build",
        "--file",
        str(REPO / "infra" / "Dockerfile"),
        "--tag",
        "ckpt-writer:9.9.9",
        str(REPO),
    ]
    assert plan.kind_load_argv() == ["kind", "load", "docker-image", "ckpt-writer:9.9.9", "--name", "ckpt-chaos"]
    assert image.plan(None, None, None).tag == f"ckpt-writer:{__import__('harness').__version__}"


@pytest.mark.parametrize("tag", ["ckpt-writer", "ckpt-writer:latest", "bad tag:1"])
def test_untagged_or_latest_image_is_refused(tag: str) -> None:
    with pytest.raises(image.ImageError):
        image.plan(None, tag, None)


def test_docker_daemon_check_uses_docker_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path, "docker", 'if [ "$1" = info ]; then echo 27.3.1; else exit 9; fi')
    monkeypatch.setenv("PATH", str(tmp_path))
    assert image.docker_daemon_problem() is None
