"""`harness image build`: the ckpt-writer image from infra/Dockerfile, optionally loaded into kind.

Docker and kind are external tools that many machines (and our CI) lack; each is detected
before use and its absence is one line that says what to do instead. The `docker` client
binary alone proves nothing — the daemon is what builds — so ``docker info`` is the check.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.deploy import checkout
from harness.deploy import spec as deploy_spec

DOCKERFILE = checkout.DOCKERFILE
DOCKER_INFO_TIMEOUT = 20.0
#: optional checkpoint libraries the image can carry (infra/writer-requirements-<name>.txt): the writer's
#: raw and safetensors formats are always in it; torch-dcp and orbax cost several hundred MB each
FORMAT_LAYERS: tuple[str, ...] = ("torch", "orbax")


class ImageError(Exception):
    """One line: what is missing or failed, and what to do.

    ``exit_code`` 2 means nothing was attempted (bad argument, missing tool or daemon);
    1 means a tool ran and failed.
    """

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclasses.dataclass(frozen=True)
class BuildPlan:
    context: Path
    dockerfile: Path
    tag: str
    kind_cluster: str | None
    #: optional format libraries built into the image (a subset of FORMAT_LAYERS, in its order)
    formats: tuple[str, ...] = ()

    def docker_build_argv(self, docker: str = "docker") -> list[str]:
        extra = ["--build-arg", f"WRITER_FORMATS={' '.join(self.formats)}"] if self.formats else []
        return [docker, "build", "--file", str(self.dockerfile), *extra, "--tag", self.tag, str(self.context)]

    def kind_load_argv(self, kind: str = "kind") -> list[str] | None:
        if self.kind_cluster is None:
            return None
        return [kind, "load", "docker-image", self.tag, "--name", self.kind_cluster]


def parse_formats(text: str | None) -> tuple[str, ...]:
    """``torch,orbax`` -> the layers in FORMAT_LAYERS order; an unknown name is one line naming the known ones."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in FORMAT_LAYERS]
    if unknown:
        raise ImageError(f"--formats {','.join(unknown)}: not an optional format library of the image; "
                         f"choose from {', '.join(FORMAT_LAYERS)} (raw and safetensors are always in it)")
    return tuple(n for n in FORMAT_LAYERS if n in names)


def plan(context: Path | None, tag: str | None, kind_cluster: str | None,
         formats: tuple[str, ...] = ()) -> BuildPlan:
    root = context if context is not None else checkout.source_root()
    if root is None:
        raise ImageError(
            "no source checkout found (infra/Dockerfile next to pyproject.toml); pass --context PATH_TO_REPO"
        )
    if not (root / DOCKERFILE).is_file():
        raise ImageError(f"--context {root} has no {DOCKERFILE}; pass the repository root")
    image = tag if tag is not None else deploy_spec.default_image()
    if not image or any(ch.isspace() for ch in image):
        raise ImageError(f"--tag {image!r} is not an image reference (e.g. ckpt-writer:0.1.0)")
    if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
        # The pods use imagePullPolicy IfNotPresent; with :latest the kubelet defaults to Always and
        # would try to pull an image that only exists inside the kind nodes.
        raise ImageError(f"--tag {image}: give an explicit version tag (not :latest), e.g. ckpt-writer:0.1.0")
    for name in formats:
        if not (root / f"infra/writer-requirements-{name}.txt").is_file():
            raise ImageError(f"--context {root} has no infra/writer-requirements-{name}.txt for --formats {name}")
    return BuildPlan(context=root, dockerfile=root / DOCKERFILE, tag=image, kind_cluster=kind_cluster,
                     formats=tuple(formats))


def docker_daemon_problem(run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> str | None:
    """None when a Docker daemon answers; otherwise the one-line reason it cannot build."""
    docker = shutil.which("docker")
    if docker is None:
        return "docker is not installed (no `docker` on PATH); install Docker to build the writer image"
    try:
        result = run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_INFO_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"the Docker daemon did not answer `docker info` within {DOCKER_INFO_TIMEOUT:g}s; is it running?"
    version = result.stdout.strip()
    if result.returncode != 0 or not version or version == "<no value>":
        detail = _first_line(result.stderr) or "no server version"
        return f"the Docker daemon is not running or not reachable ({detail}); start Docker and retry"
    return None


def build(the_plan: BuildPlan, *, echo: Callable[[str], None]) -> None:
    """Build (and load into kind when asked); streams the tools' output through ``echo``."""
    problem = docker_daemon_problem()
    if problem is not None:
        raise ImageError(problem)
    kind_argv = the_plan.kind_load_argv()
    kind = None
    if kind_argv is not None:
        kind = shutil.which("kind")
        if kind is None:
            raise ImageError("kind is not installed (no `kind` on PATH); install kind or drop --kind")
    docker = shutil.which("docker") or "docker"
    _stream(the_plan.docker_build_argv(docker), echo, what=f"docker build of {the_plan.tag}")
    if kind is not None:
        argv = the_plan.kind_load_argv(kind)
        assert argv is not None
        _stream(argv, echo, what=f"kind load of {the_plan.tag} into cluster {the_plan.kind_cluster}")


def _stream(argv: Sequence[str], echo: Callable[[str], None], *, what: str) -> None:
    echo(f"$ {' '.join(argv)}")
    with subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            echo(line.rstrip("\n"))
            tail = [*tail[-4:], line.strip()]
        code = proc.wait()
    if code != 0:
        last = next((line for line in reversed(tail) if line), "no output")
        raise ImageError(f"{what} failed (exit {code}): {last}", exit_code=1)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
