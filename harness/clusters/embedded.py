"""The embedded cluster (kubesim), started and stopped as processes through its CLI only.

``python -m kubesim up --state DIR --nodes N`` starts a control plane and N kubelets, waits
until every Node is Ready and writes ``DIR/kubeconfig``; ``python -m kubesim down --state DIR``
stops exactly the processes it recorded. The harness never imports kubesim (an import-linter
contract): everything it learns afterwards comes through the Kubernetes API, exactly as on kind.

Shortened periods (node monitor grace, toleration seconds, crash-loop back-off) keep fault
scenarios short; they are passed as ``up`` flags and recorded in :meth:`describe`. They are
periods kind is configured with too (infra/kind/cluster.yaml), and kubesim runs with ``--timing
upstream`` (readiness probed every periodSeconds, image pulls take time), so a scenario's timing
expectations hold on a real cluster as well.

Capabilities: ``node-crash`` and ``kill-container`` always; ``power-loss`` (``kubesim node
power-loss``: the node crashes and its ``lazy``-class volumes drop what was never made durable)
only where kubesim's lazy file system can mount on this machine — asked once, through
``python -m kubesim.lazyfs check``, and when it cannot, :meth:`describe` says why.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

from harness.clusters import base

#: Periods a scenario session runs with (kubesim's flags; upstream defaults in brackets). Each is a
#: period a real cluster can be configured with too: infra/kind/cluster.yaml sets the same values
#: (tests/unit/test_infra_kind.py asserts they agree), so nothing passes on kubesim only because
#: kubesim was configured faster than kind can be.
DEFAULT_PERIODS: Mapping[str, str] = {
    "--node-monitor-grace": "4s",  # silent node -> Ready=Unknown [50s]; kcm --node-monitor-grace-period
    "--node-monitor-period": "500ms",  # node health re-checked [5s]; kcm --node-monitor-period
    "--node-status-interval": "1s",  # kubelet heartbeat [10s]; nodeStatusUpdateFrequency, lease = grace
    "--toleration-seconds": "10",  # not-ready/unreachable tolerations of new pods [300]; kube-apiserver
    # first restart back-off and cap [10s, 300s]: kind can only lower the cap (crashLoopBackOff
    # .maxContainerRestartPeriod), which lowers the initial 10s to the cap, so both are 8s
    "--crashloop-base": "8s",
    "--crashloop-max": "8s",
}

#: kubesim's timing profile for scenarios: upstream's (probes every periodSeconds, image pulls take time).
#: ``fast`` (env HARNESS_KUBESIM_TIMING=fast) is for the harness's own plumbing tests, whose claims are
#: about sessions and reports, not recovery times; every run records the profile it ran under.
TIMING = "upstream"
ENV_TIMING = "HARNESS_KUBESIM_TIMING"
TIMINGS = ("upstream", "fast")

#: the end of ``kubesim node kill-container``'s line: when the signal was sent
_SIGNALLED_AT = re.compile(r" at (\d+\.\d+)$")

Network = Literal["private", "host"]
NETWORKS: tuple[Network, ...] = get_args(Network)
ENV_NETWORK = "HARNESS_KUBESIM_NETWORK"

#: Lines of each log shown when the cluster does not come up.
TAIL_LINES = 8
#: Output of ``up`` that means a part of kubesim is not installed here (e.g. no kubelet module):
#: the cluster cannot run on this machine at all, which scenarios report as a skip naming the
#: module. Anything else (a kubesim that is there but broken) is an error, never a skip.
_MISSING_MARKERS = ("No module named kubesim", "No module named 'kubesim")


@dataclasses.dataclass
class EmbeddedCluster:
    """kubesim with ``node_count`` kubelets, its state (store, volumes, logs) under ``state_dir``."""

    state_dir: Path
    node_count: int = 3
    periods: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_PERIODS))
    start_timeout_s: float = 120.0
    stop_grace_s: float = 5.0
    name: str = "kubesim"
    #: ``private``: a network namespace of the cluster's own, pods reached through the API server's
    #: port-forward exactly as on kind; ``host``: a host-wide address range, pods reached directly
    #: (for machines that refuse network namespaces; env HARNESS_KUBESIM_NETWORK)
    network: Network = "private"
    #: kubesim's timing profile (``upstream`` unless HARNESS_KUBESIM_TIMING says ``fast``)
    timing: str = TIMING
    _nodes: tuple[str, ...] = ()
    _started: bool = False
    _server: str | None = None
    #: why ``power-loss`` cannot be offered here (None: it can); asked once, see :meth:`power_loss_missing`
    _power_loss_missing: str | None = None
    _power_loss_checked: bool = False

    @property
    def kind(self) -> base.ClusterKind:
        return "embedded"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def context(self) -> str | None:
        return None  # kubesim's kubeconfig has one context and it is current

    @property
    def nodes(self) -> tuple[str, ...]:
        return self._nodes

    @property
    def reach(self) -> base.Reach:
        # private: the host cannot reach pod IPs (as on kind), so the code path real clusters use runs
        return "port-forward" if self.network == "private" else "pod-ip"

    @property
    def capabilities(self) -> frozenset[base.Capability]:
        offered: set[base.Capability] = {"node-crash", "kill-container"}
        if self.power_loss_missing() is None:
            offered.add("power-loss")
        return frozenset(offered)

    def missing_reason(self, capability: base.Capability) -> str | None:
        """Why ``capability`` is not offered here (see :func:`harness.clusters.base.missing_reason`)."""
        return self.power_loss_missing() if capability == "power-loss" else None

    def power_loss_missing(self) -> str | None:
        """Why kubesim cannot cut a node's power on this machine (no /dev/fuse, not root, libfuse
        missing, ...), or None when it can: ``python -m kubesim.lazyfs check``, run once."""
        if not self._power_loss_checked:
            try:
                done = subprocess.run([sys.executable, "-m", "kubesim.lazyfs", "check"], capture_output=True,
                                      text=True, timeout=60, check=False, stdin=subprocess.DEVNULL, env=_env())
            except (OSError, subprocess.TimeoutExpired) as exc:
                self._power_loss_missing = f"python -m kubesim.lazyfs check did not run: {exc}"
            else:
                said = _last_line(done.stdout) or _last_line(done.stderr) or f"exit code {done.returncode}"
                self._power_loss_missing = None if done.returncode == 0 else said
            self._power_loss_checked = True
        return self._power_loss_missing

    def collect_logs(self, dest: Path, namespace: str | None) -> None:
        """The control plane's and kubelets' logs, and the container logs of ``namespace``'s pods
        (``nodes/<node>/pods/<ns>_<pod>_<uid>/<container>/<restart>.log``); volumes are not copied."""
        patterns = ["apiserver.log", "apiserver.out", "controlplane.log", "controlplane.out", "state.json",
                    "nodes/*/kubelet.log", "nodes/*/kubelet.out", "nodes/*/containers.json"]
        if namespace:
            patterns.append(f"nodes/*/pods/{namespace}_*/*/*.log")
        for pattern in patterns:
            for path in sorted(self.state_dir.glob(pattern)):
                target = dest / path.relative_to(self.state_dir)
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
                except OSError:
                    continue  # a log that vanished or cannot be read is simply not in the copy

    def crash_node(self, node: str) -> None:
        """SIGKILL the node's kubelet and every container it runs (a kind node's container stopped)."""
        self._node_command("crash", node)

    def restore_node(self, node: str) -> None:
        """Start the node's kubelet again; returns once the Node is Ready."""
        self._node_command("restore", node)

    def kill_container(self, namespace: str, pod: str, container: str, signal: str) -> float:
        """Signal the container's processes as the runtime would (``crictl stop``/``kill``); kubesim
        says when it sent the signal (``... at <epoch seconds>``)."""
        before = time.time()
        out = self._node_command("kill-container", pod, container, "-n", namespace, "--signal", signal)
        said = _SIGNALLED_AT.search(_last_line(out))
        return float(said.group(1)) if said else before

    def power_loss(self, node: str) -> Mapping[str, int]:
        """Cut the node's power (``kubesim node power-loss``): its kubelet and containers are frozen, its
        ``lazy`` volumes drop every change never made durable, then everything is SIGKILLed;
        :meth:`restore_node` is the reboot. Returns what was dropped, summed over the node's volumes."""
        if self.power_loss_missing() is not None:
            raise base.not_offered(self, "power-loss")
        out = self._node_command("power-loss", node, "--json")
        try:
            doc = json.loads(_last_line(out))
            return {str(k): int(v) for k, v in doc["dropped"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise base.ClusterError(f"kubesim node power-loss {node}: cannot read what it did ({exc}): "
                                    f"{_last_line(out)!r}") from None

    def _node_command(self, *args: str) -> str:
        if not self._started:
            raise base.ClusterError(f"the embedded cluster is not running; cannot run kubesim node {args[0]}")
        cmd = [sys.executable, "-m", "kubesim", "node", *args, "--state", str(self.state_dir)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=self.start_timeout_s, check=False,
                              stdin=subprocess.DEVNULL, env=_env())
        if done.returncode != 0:
            raise base.ClusterError(f"kubesim node {' '.join(args)} failed ({done.returncode}): "
                                    f"{_last_line(done.stderr) or _last_line(done.stdout)}")
        return done.stdout

    def up_command(self) -> list[str]:
        cmd = [sys.executable, "-m", "kubesim", "up", "--state", str(self.state_dir), "--port", "0",
               "--nodes", str(self.node_count), "--nodes-timeout", str(max(10.0, self.start_timeout_s - 15)),
               "--network", self.network, "--timing", self.timing]
        for flag, value in self.periods.items():
            cmd += [flag, value]
        return cmd

    def down_command(self) -> list[str]:
        return [sys.executable, "-m", "kubesim", "down", "--state", str(self.state_dir),
                "--grace", f"{self.stop_grace_s:g}"]

    def start(self) -> None:
        if self.node_count < 1:
            raise base.ClusterError(f"the embedded cluster needs at least one node, got {self.node_count}")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._started = True  # from here on, stop() must run `down` whatever happens
        try:
            done = subprocess.run(self.up_command(), capture_output=True, text=True, timeout=self.start_timeout_s,
                                  check=False, stdin=subprocess.DEVNULL, env=_env())
        except subprocess.TimeoutExpired as exc:
            raise base.ClusterError(
                f"kubesim did not come up within {self.start_timeout_s:g}s (state {self.state_dir}; logs above)",
                details=self._log_tails(_text(exc.stdout) + _text(exc.stderr)),
            ) from None
        output = (done.stdout or "") + (done.stderr or "")
        if done.returncode != 0:
            problem = _last_line(output) or f"exit code {done.returncode}"
            if any(marker in output for marker in _MISSING_MARKERS):
                raise base.ClusterUnavailable(f"the embedded cluster cannot start here: {problem}",
                                              details=self._log_tails(output))
            raise base.ClusterError(
                f"kubesim up --nodes {self.node_count} failed ({done.returncode}): {problem} (logs above)",
                details=self._log_tails(output),
            )
        if not self.kubeconfig.is_file():
            raise base.ClusterError(f"kubesim up succeeded but wrote no kubeconfig at {self.kubeconfig}")
        self._nodes, self._server = _inspect(self.kubeconfig)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        done = subprocess.run(self.down_command(), capture_output=True, text=True, timeout=120, check=False,
                              stdin=subprocess.DEVNULL, env=_env())
        if done.returncode != 0:
            raise base.ClusterError(f"kubesim down --state {self.state_dir} failed: {_last_line(done.stderr)}")

    def describe(self) -> dict[str, object]:
        missing = self.power_loss_missing()
        return {"kind": self.kind, "name": self.name, "server": self._server, "nodes": list(self._nodes),
                "state_dir": str(self.state_dir), "periods": dict(self.periods), "timing": self.timing,
                "reach": self.reach, "network": self.network, "capabilities": sorted(self.capabilities),
                "power_loss": "offered (lazy storage class)" if missing is None else f"not offered: {missing}"}

    def _log_tails(self, output: str) -> str:
        """The end of every log kubesim wrote, so one failure message says why."""
        parts = [f"kubesim up said:\n{_tail_text(output)}"] if output.strip() else []
        logs = [self.state_dir / "apiserver.out", self.state_dir / "apiserver.log"]
        logs += sorted(self.state_dir.glob("nodes/*/kubelet.out")) + sorted(self.state_dir.glob("nodes/*/kubelet.log"))
        for path in logs:
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            if text.strip():
                parts.append(f"{path}:\n{_tail_text(text)}")
        return "\n".join(parts) if parts else "kubesim wrote no logs"


def _env() -> dict[str, str]:
    """Our environment with the project importable (``python -m kubesim`` from any cwd)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _inspect(kubeconfig: Path) -> tuple[tuple[str, ...], str]:
    """Node names and server address, read through the API like any other cluster's."""
    from harness.kube import client as kube_client
    from harness.kube import identity as kube_identity

    try:
        api = kube_client.new_api_client(kubeconfig)
    except kube_client.KubeconfigError as exc:
        raise base.ClusterError(str(exc)) from None
    try:
        kube_client.server_version(api)
        return kube_identity.node_names(api), str(api.configuration.host)
    except (kube_client.ClusterUnreachable, kube_identity.IdentityError) as exc:
        raise base.ClusterError(f"kubesim came up but {exc}") from None
    finally:
        kube_client.close(api)


def _text(raw: str | bytes | None) -> str:
    if raw is None:
        return ""
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _tail_text(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    return "\n".join(f"  {line}" for line in lines[-TAIL_LINES:])
