"""A kind cluster (Kubernetes in Docker nodes), created or reused through pytest-kind.

pytest-kind's ``KindCluster`` (the maintained fork, pytest-kind-ng) creates the cluster from
``infra/kind/cluster.yaml`` — or reuses one of the same name, so ``make cluster-up`` followed by
``pytest --cluster kind`` costs no second cluster — and writes its kubeconfig (context
``kind-<name>``) under ``.pytest-kind/<name>/`` in the working directory. It would download kind
v0.17 when given no binary; we always give it one (``--kind-path`` or ``kind`` on PATH), so
nothing is ever downloaded at test time. Its ``port_forward`` does not leave its retry loop on
success (it restarts kubectl on each of its ten tries, a second apart) and is not used: pods are
reached with reach mode ``auto`` (harness.kube.endpoints: pod IPs where routable, else one
``kubectl port-forward`` per pod).

Before anything is created: the kind binary and a Docker daemon must be there (else
:class:`~harness.clusters.base.ClusterUnavailable`, one line naming what to install — the
``cluster`` fixture turns it into a skip), and the writer image is built from
``infra/Dockerfile`` (harness.deploy.image). Then the cluster is created or reused and the image
loaded into every node (``kind load docker-image``). At the end a cluster this session created is
deleted unless pytest-kind's ``--keep-cluster`` is given; a reused one is never deleted (it was
somebody's before the session).

Capabilities, all through Docker and each node's own runtime, as an operator would do them:

* ``node-crash``: ``docker stop --time 0 NODE`` (the node container's processes are killed at
  once, kubelet and containers alike); restore = ``docker start NODE``, then wait through the API
  until the kubelet renewed its Lease and the Node is Ready (harness.kube.runtime).
* ``kill-container``: ``docker exec NODE crictl ps`` finds the container by its pod uid,
  namespace, pod and container labels; SIGKILL = ``crictl stop --timeout 0``, SIGTERM =
  ``crictl stop --timeout <the pod's grace>`` (the runtime's own escalation to SIGKILL), any
  other signal = ``ctr -n k8s.io task kill --signal SIG<NAME>``. The kubelet then restarts it.
* ``power-loss`` is not offered: every kind node shares the host's page cache and disks.

On kind the API node name is the node's container name, which is what ``docker`` is given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from harness.clusters import base

if TYPE_CHECKING:
    import pytest_kind

    from harness.kube import client as kube_client_t

DEFAULT_NAME: Final = "ckpt-chaos"
#: kind's version the config file's node image was released with (infra/kind/cluster.yaml)
KIND_VERSION: Final = "v0.33.0"
INSTALL_KIND: Final = (f"install kind {KIND_VERSION} (https://kind.sigs.k8s.io/docs/user/quick-start/#installation) "
                       "or pass --kind-path")
#: the runtime's Kubernetes namespace inside a kind node (containerd, as the kubelet uses it)
CONTAINERD_NAMESPACE: Final = "k8s.io"
#: signals `crictl stop` delivers (KILL at once; TERM, then KILL after the grace period)
_STOP_SIGNALS: Final = ("KILL", "TERM")


def _config_file() -> Path:
    from harness.deploy import checkout

    root = checkout.source_root()
    return (root if root is not None else Path.cwd()) / "infra" / "kind" / "cluster.yaml"


@dataclasses.dataclass
class KindCluster:
    """kind cluster ``name`` from ``config_file``; ``kind_path`` None means ``kind`` on PATH."""

    name: str = DEFAULT_NAME
    config_file: Path = dataclasses.field(default_factory=_config_file)
    kind_path: Path | None = None
    keep: bool = False
    #: the writer image built and loaded (None: ckpt-writer:<harness version>, what scenarios deploy)
    image: str | None = None
    #: checkpoint libraries built into it besides raw and safetensors (env HARNESS_WRITER_FORMATS)
    image_formats: tuple[str, ...] = ()
    #: where pytest-kind keeps the kubeconfig (.pytest-kind/<name>/ in the working directory)
    work_dir: Path = dataclasses.field(default_factory=Path.cwd)
    restore_timeout_s: float = 180.0
    command_timeout_s: float = 900.0
    echo: Callable[[str], None] = print
    _pk: pytest_kind.KindCluster | None = None
    _kind_bin: str = ""
    _docker: str = ""
    _started: bool = False
    _created: bool = False
    _nodes: tuple[str, ...] = ()
    _server: str | None = None
    _version: str | None = None
    _image: str | None = None

    @property
    def kind(self) -> base.ClusterKind:
        return "kind"

    @property
    def kubeconfig(self) -> Path:
        return (self.work_dir / ".pytest-kind" / self.name / "kubeconfig").resolve()

    @property
    def context(self) -> str | None:
        return f"kind-{self.name}"

    @property
    def nodes(self) -> tuple[str, ...]:
        return self._nodes

    @property
    def reach(self) -> base.Reach:
        return "auto"  # port-forward where the host cannot route to pod IPs (most Docker set-ups)

    @property
    def capabilities(self) -> frozenset[base.Capability]:
        return frozenset({"node-crash", "kill-container"})

    # ----- start / stop ----------------------------------------------------------------------

    def preflight(self) -> None:
        """Everything that must hold before anything is created; ClusterUnavailable names what to install."""
        from harness.deploy import image

        found = str(self.kind_path) if self.kind_path is not None else shutil.which("kind")
        if found is None:
            raise base.ClusterUnavailable(f"kind is not installed (no `kind` on PATH): {INSTALL_KIND}")
        problem = image.docker_daemon_problem()
        if problem is not None:
            raise base.ClusterUnavailable(f"kind runs its nodes in Docker, and {problem}")
        if not self.config_file.is_file():
            raise base.ClusterError(f"kind config {self.config_file} does not exist; run from the repository checkout")
        self._kind_bin = found
        self._docker = shutil.which("docker") or "docker"

    def start(self) -> None:
        from harness.deploy import image

        self.preflight()
        try:
            plan = image.plan(None, self.image, None, self.image_formats)
        except image.ImageError as exc:
            raise base.ClusterError(str(exc)) from None
        self._version = self._run([self._kind_bin, "version"], "kind version").stdout.strip() or None
        existed = self.name in self.existing_clusters()
        self.echo(f"kind cluster {self.name}: {'reusing the existing cluster' if existed else 'creating it'} "
                  f"({self.config_file})")
        try:  # build before creating anything: a Dockerfile that does not build leaves nothing behind
            image.build(plan, echo=self.echo)
        except image.ImageError as exc:
            raise base.ClusterError(f"writer image: {exc}") from None
        self._image = plan.tag
        import pytest_kind

        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.chdir(self.work_dir):  # it makes .pytest-kind/<name> relative to the working directory
            self._pk = pytest_kind.KindCluster(self.name, kubeconfig=self.kubeconfig, kind_path=Path(self._kind_bin))
        self._started = True  # from here on stop() runs, whatever happens
        self._created = not existed
        if existed:  # pytest-kind reuses it with whatever kubeconfig file it finds: give it a current one
            self._run([self._kind_bin, "export", "kubeconfig", "--name", self.name, "--kubeconfig",
                       str(self.kubeconfig)], f"kind export kubeconfig of {self.name}")
        try:
            self._pk.create(config_file=self.config_file)
            self._pk.load_docker_image(plan.tag)
        except subprocess.CalledProcessError as exc:
            raise base.ClusterError(f"`{' '.join(map(str, exc.cmd))}` failed (exit {exc.returncode}); "
                                    "its output is above") from None
        self._nodes, self._server = self._inspect()

    def existing_clusters(self) -> list[str]:
        """``kind get clusters``: the names of the kind clusters Docker runs now."""
        done = self._run([self._kind_bin, "get", "clusters"], "kind get clusters")
        return [line.strip() for line in done.stdout.splitlines() if line.strip()]

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if not self._created:
            self.echo(f"kind cluster {self.name} left running: it existed before this session")
            return
        if self.keep:
            self.echo(f"kind cluster {self.name} kept (--keep-cluster); delete it with: "
                      f"kind delete cluster --name {self.name}")
            return
        assert self._pk is not None
        try:
            self._pk.delete()
        except subprocess.CalledProcessError as exc:
            raise base.ClusterError(f"kind delete cluster --name {self.name} failed (exit {exc.returncode}); "
                                    "delete it by hand") from None

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "server": self._server, "nodes": list(self._nodes),
                "context": self.context, "config": str(self.config_file), "kind_binary": self._kind_bin,
                "kind_version": self._version, "image": self._image, "image_formats": list(self.image_formats),
                "reach": self.reach,
                "created_by_session": self._created, "kept": self.keep}

    def collect_logs(self, dest: Path, namespace: str | None) -> None:
        """``kind export logs DEST/kind --name NAME``: every node's kubelet, containerd and container
        logs (all namespaces: kind cannot pick one). A failure is written down, never raised."""
        del namespace
        target = dest / "kind"
        try:
            dest.mkdir(parents=True, exist_ok=True)
            done = subprocess.run([self._kind_bin or "kind", "export", "logs", str(target), "--name", self.name],
                                  capture_output=True, text=True, timeout=self.command_timeout_s, check=False,
                                  stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                (dest / "kind-export-logs.failed.txt").write_text(done.stdout + done.stderr)
        except (OSError, subprocess.SubprocessError) as exc:
            with contextlib.suppress(OSError):
                (dest / "kind-export-logs.failed.txt").write_text(f"{type(exc).__name__}: {exc}\n")

    # ----- capabilities ----------------------------------------------------------------------

    def crash_node(self, node: str) -> None:
        """Stop the node's container at once: its kubelet and every container on it die together."""
        self._known(node)
        self._run([self._docker, "stop", "--time", "0", node], f"docker stop of node {node}")

    def restore_node(self, node: str) -> None:
        """Start the node's container again; returns once its kubelet is back and the Node Ready."""
        from harness.kube import client as kube_client
        from harness.kube import runtime as kube_runtime
        from harness.kube import wait as kube_wait

        self._known(node)
        since = time.time()
        self._run([self._docker, "start", node], f"docker start of node {node}")
        api = self._api()
        try:
            kube_runtime.wait_restarted(api, node, since, timeout=self.restore_timeout_s)
        except kube_wait.WaitTimeout as exc:
            raise base.ClusterError(str(exc)) from None
        finally:
            kube_client.close(api)

    def kill_container(self, namespace: str, pod: str, container: str, signal: str) -> float:
        """Signal the container through the node's runtime; the pod object stays, the kubelet restarts it."""
        from harness.kube import client as kube_client
        from harness.kube import runtime as kube_runtime

        name = signal.upper().removeprefix("SIG")
        api = self._api()
        try:
            where = kube_runtime.placement(api, namespace, pod)
        except kube_runtime.RuntimeTargetError as exc:
            raise base.ClusterError(str(exc)) from None
        finally:
            kube_client.close(api)
        exec_ = [self._docker, "exec", where.node]
        listed = self._run([*exec_, *crictl_ps(namespace, pod, where.uid, container)],
                           f"crictl ps on {where.node} for {namespace}/{pod}/{container}")
        ids = [line.strip() for line in listed.stdout.splitlines() if line.strip()]
        if len(ids) != 1:
            raise base.ClusterError(f"expected one running container {container} of pod {namespace}/{pod} "
                                    f"(uid {where.uid[:8]}) on {where.node}, the runtime lists {len(ids)}")
        before = time.time()  # the signal goes out after this, inside the node (same kernel clock)
        self._run([*exec_, *runtime_signal(ids[0], name, where.grace_s)],
                  f"SIG{name} to {namespace}/{pod}/{container} on {where.node}")
        return before

    def power_loss(self, node: str) -> Mapping[str, int]:
        raise base.not_offered(self, "power-loss")

    # ----- helpers ---------------------------------------------------------------------------

    def _known(self, node: str) -> None:
        if not self._started:
            raise base.ClusterError(f"the kind cluster {self.name} is not started")
        if node not in self._nodes:
            raise base.ClusterError(f"no node {node!r} in kind cluster {self.name} (nodes: {', '.join(self._nodes)})")

    def _api(self) -> kube_client_t.ApiClient:
        from harness.kube import client as kube_client

        try:
            return kube_client.new_api_client(self.kubeconfig, self.context)
        except kube_client.KubeconfigError as exc:
            raise base.ClusterError(str(exc)) from None

    def _inspect(self) -> tuple[tuple[str, ...], str]:
        from harness.kube import client as kube_client
        from harness.kube import identity as kube_identity

        api = self._api()
        try:
            kube_client.server_version(api)
            return kube_identity.node_names(api), str(api.configuration.host)
        except (kube_client.ClusterUnreachable, kube_identity.IdentityError) as exc:
            raise base.ClusterError(f"kind cluster {self.name} was created but {exc}") from None
        finally:
            kube_client.close(api)

    def _run(self, argv: Sequence[str], what: str) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(list(argv), capture_output=True, text=True, timeout=self.command_timeout_s,
                                  check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise base.ClusterError(f"{what}: `{' '.join(argv)}` did not finish within "
                                    f"{self.command_timeout_s:g}s") from None
        except OSError as exc:
            raise base.ClusterError(f"{what}: cannot run {argv[0]} ({exc.strerror})") from None
        if done.returncode != 0:
            raise base.ClusterError(f"{what} failed (exit {done.returncode}): "
                                    f"{_last_line(done.stderr) or _last_line(done.stdout) or 'no output'}")
        return done


def crictl_ps(namespace: str, pod: str, uid: str, container: str) -> list[str]:
    """The running container's full id, found by the labels the kubelet puts on every container."""
    labels = {"io.kubernetes.pod.namespace": namespace, "io.kubernetes.pod.name": pod,
              "io.kubernetes.pod.uid": uid, "io.kubernetes.container.name": container}
    argv = ["crictl", "ps", "--quiet", "--no-trunc", "--state", "running"]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    return argv


def runtime_signal(container_id: str, signal: str, grace_s: int) -> list[str]:
    """The command, run inside the node, that delivers ``signal`` (KILL, TERM, HUP, …) to the container."""
    if signal in _STOP_SIGNALS:
        return ["crictl", "stop", "--timeout", "0" if signal == "KILL" else str(grace_s), container_id]
    return ["ctr", "-n", CONTAINERD_NAMESPACE, "task", "kill", "--signal", f"SIG{signal}", container_id]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
