"""Image references → how a container of that image runs on this machine.

kubesim has no registry and no image store: a small table says which images are "present on the
machine" and what their ENTRYPOINT/CMD/WORKDIR/ENV would be, so a pod's ``command``/``args``
combine with them exactly as a container runtime combines them with an image config
(``command`` replaces ENTRYPOINT and drops CMD; ``args`` replace CMD). Everything else fails to
pull, which the kubelet turns into upstream's ErrImagePull / ImagePullBackOff.

* ``ckpt-writer:<any tag>`` (also with a registry prefix): the checkpoint writer of this project —
  ENTRYPOINT ``harness writer serve``, CMD ``--data-dir /data``, WORKDIR /data, USER 10001 (as
  infra/Dockerfile builds it), with this Python environment's bin directory first on PATH so
  ``harness`` and ``python -m harness.workload`` resolve.
* ``registry.k8s.io/pause:<tag>``: sleeps until SIGTERM/SIGINT and exits 0 (run by the shim itself).
* ``busybox[:tag]`` / ``docker.io/library/busybox``: no ENTRYPOINT, CMD ``sh``; commands resolve
  on the host's PATH (sh, sleep, echo, ... — enough for test pods).

Pulls take time, as on a real node (:class:`NodeImages`): each node remembers which images it has
pulled (``nodes/<node>/images.json``, kept across kubelet restarts as a node's containerd store
is); a container whose image must be pulled (``imagePullPolicy: Always``, or ``IfNotPresent`` and
not yet on the node) waits the cluster's pull time, pulls on one node one after another (the
kubelet's default ``serializeImagePulls: true``; a second pull of a reference already in flight
finishes with it, as containerd joins them). ``Never`` runs an image from the table as if it had
been side-loaded (``kind load``). The pause image is on every node from the start, as on kind's
node image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import sys
import threading
from pathlib import Path

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclasses.dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI image config a kubelet/runtime uses to start a container."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    workdir: str = ""
    env: tuple[tuple[str, str], ...] = ()
    user: int | None = None
    group: int | None = None
    pause: bool = False
    """Run the built-in pause loop instead of a command (registry.k8s.io/pause)."""
    dirs: tuple[str, ...] = ()
    """Directories the image's filesystem has that a host may lack (created privately in the container)."""
    traverse: tuple[str, ...] = ()
    """Host paths the image's programs live in; made reachable for a non-root user inside the container."""


@dataclasses.dataclass(frozen=True)
class Image:
    ref: str
    """The normalised reference (docker.io/library/busybox:latest), what containerStatuses[].image shows."""
    image_id: str
    """``<repository>@sha256:<digest>``: stable per reference (there are no real digests here)."""
    config: ImageConfig


class PullError(Exception):
    """The image cannot be pulled; the message is shaped like containerd's."""


_REF = re.compile(r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::\d+)?|localhost)/)?(?P<path>[a-z0-9._/-]+)"
                  r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$")


def normalise(ref: str) -> str:
    """docker's reference normalisation: ``busybox`` → ``docker.io/library/busybox:latest``."""
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, remainder = first, rest
    else:
        registry, remainder = "docker.io", ref
        if "/" not in remainder:
            remainder = f"library/{remainder}"
    name_part = remainder.rsplit("/", 1)[-1]
    if "@" not in remainder and ":" not in name_part:
        remainder += ":latest"
    return f"{registry}/{remainder}"


def repository(normalised: str) -> str:
    base = normalised.split("@", 1)[0]
    head, _, last = base.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}"


def venv_bin() -> str:
    return str(Path(sys.executable).parent)


def _python_paths() -> tuple[str, ...]:
    import harness  # the writer's own code: an editable install lives in the checkout

    paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix),
             os.path.realpath(os.path.dirname(os.path.dirname(harness.__file__)))}
    return tuple(sorted(paths))


def _writer() -> ImageConfig:
    return ImageConfig(
        entrypoint=("harness", "writer", "serve"),
        cmd=("--data-dir", "/data"),
        workdir="/data",
        env=(("PATH", f"{venv_bin()}:{DEFAULT_PATH}"), ("PYTHONUNBUFFERED", "1"), ("PYTHONDONTWRITEBYTECODE", "1")),
        user=10001,
        group=10001,
        dirs=("/data",),
        traverse=_python_paths(),
    )


def _pause() -> ImageConfig:
    return ImageConfig(entrypoint=("/pause",), env=(("PATH", DEFAULT_PATH),), user=65535, group=65535, pause=True)


def _busybox() -> ImageConfig:
    return ImageConfig(cmd=("sh",), env=(("PATH", DEFAULT_PATH),))


def _config_for(normalised: str) -> ImageConfig | None:
    repo = repository(normalised)
    name = repo.rsplit("/", 1)[-1]
    if name == "ckpt-writer":
        return _writer()
    if repo in ("registry.k8s.io/pause", "k8s.gcr.io/pause"):
        return _pause()
    if repo == "docker.io/library/busybox":
        return _busybox()
    return None


def resolve(ref: str) -> Image:
    """The image for ``ref``, or :class:`PullError` with containerd's message for an unknown one."""
    if not ref or not _REF.match(ref) or ref != ref.strip():
        raise InvalidImageName(f'Failed to apply default image tag "{ref}": couldn\'t parse image name "{ref}": '
                               "invalid reference format")
    norm = normalise(ref)
    config = _config_for(norm)
    if config is None:
        raise PullError(
            f'rpc error: code = NotFound desc = failed to pull and unpack image "{norm}": failed to resolve '
            f'reference "{norm}": {norm}: not found')
    digest = hashlib.sha256(norm.encode()).hexdigest()
    return Image(ref=norm, image_id=f"{repository(norm)}@sha256:{digest}", config=config)


class InvalidImageName(PullError):
    """The reference does not parse (upstream: InvalidImageName, never retried)."""


def command_line(config: ImageConfig, command: list[str] | None, args: list[str] | None) -> list[str]:
    """How runtimes combine a pod's command/args with ENTRYPOINT/CMD."""
    if command:
        return list(command) + list(args or [])
    return list(config.entrypoint) + (list(args) if args else list(config.cmd))


#: Images every node has before its first pull (kind's node image ships the pause image).
PRELOADED: tuple[str, ...] = ("registry.k8s.io/pause:3.10",)


class NodeImages:
    """The images one node has pulled, and its pull queue (why: a pull must cost time, and only once per node).

    ``schedule`` returns when a pull asked for now completes: after the node's pulls already queued
    (serialised), or with the pull of the same reference already in flight. ``pulled`` records the
    image as present; the record survives the kubelet (``images.json`` in the node's directory).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._present: set[str] = {normalise(ref) for ref in PRELOADED}
        self._in_flight: dict[str, float] = {}  # ref -> monotonic completion
        self._busy_until = 0.0
        if path is not None:
            with contextlib.suppress(OSError, ValueError, TypeError):
                self._present.update(str(ref) for ref in json.loads(path.read_text()))

    def present(self, ref: str) -> bool:
        with self._lock:
            return normalise(ref) in self._present

    def schedule(self, ref: str, now: float, duration: float) -> float:
        """Queue a pull of ``ref`` at monotonic ``now``; the monotonic time it completes."""
        norm = normalise(ref)
        with self._lock:
            done = self._in_flight.get(norm)
            if done is not None and done > now:
                return done
            done = max(now, self._busy_until) + duration
            self._busy_until = done
            self._in_flight[norm] = done
            return done

    def pulled(self, ref: str) -> None:
        norm = normalise(ref)
        with self._lock:
            self._in_flight.pop(norm, None)
            if norm in self._present:
                return
            self._present.add(norm)
            if self.path is not None:
                with contextlib.suppress(OSError):
                    tmp = self.path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(sorted(self._present)))
                    tmp.replace(self.path)
