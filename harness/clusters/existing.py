"""A cluster somebody else runs, named by a kubeconfig file and a context.

Nothing is started or stopped: :meth:`ExistingCluster.start` only proves the cluster answers
and trusts us (one line when it does not: a missing file, an unknown context, a server that is
down), and learns its nodes. The defaults are kubectl's: the first file in ``$KUBECONFIG``, else
``~/.kube/config``, and its current context.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import yaml

from harness.clusters import base


@dataclasses.dataclass
class ExistingCluster:
    """``kubeconfig`` None means kubectl's default file; ``context`` None its current context."""

    kubeconfig_path: Path | None = None
    context_name: str | None = None
    reach_mode: base.Reach = "auto"
    _resolved: Path | None = None
    _context: str | None = None
    _nodes: tuple[str, ...] = ()
    _server: str | None = None
    _version: str | None = None

    @property
    def name(self) -> str:
        return self._context or self.context_name or "current-context"

    @property
    def kind(self) -> base.ClusterKind:
        return "existing"

    @property
    def kubeconfig(self) -> Path:
        if self._resolved is not None:
            return self._resolved
        if self.kubeconfig_path is not None:
            return self.kubeconfig_path
        from harness.kube import client as kube_client

        return kube_client.default_kubeconfig_path()

    @property
    def context(self) -> str | None:
        return self._context or self.context_name

    @property
    def nodes(self) -> tuple[str, ...]:
        return self._nodes

    @property
    def reach(self) -> base.Reach:
        return self.reach_mode

    @property
    def capabilities(self) -> frozenset[base.Capability]:
        return frozenset()

    def collect_logs(self, dest: Path, namespace: str | None) -> None:
        """Not ours to read: an existing cluster's logs stay where its operators keep them (the
        run's object dump, made through the API, is all the harness takes)."""
        del dest, namespace

    def crash_node(self, node: str) -> None:
        raise base.not_offered(self, "node-crash")

    def restore_node(self, node: str) -> None:
        raise base.not_offered(self, "node-crash")

    def kill_container(self, namespace: str, pod: str, container: str, signal: str) -> float:
        raise base.not_offered(self, "kill-container")

    def power_loss(self, node: str) -> Mapping[str, int]:
        raise base.not_offered(self, "power-loss")

    def start(self) -> None:
        from harness.kube import client as kube_client
        from harness.kube import identity as kube_identity

        path = self.kubeconfig.expanduser()
        try:
            api = kube_client.new_api_client(path, self.context_name)
        except kube_client.KubeconfigError as exc:
            raise base.ClusterError(str(exc)) from None
        try:
            self._version = kube_client.server_version(api)
            self._nodes = kube_identity.node_names(api)
            self._server = str(api.configuration.host)
        except (kube_client.ClusterUnreachable, kube_identity.IdentityError) as exc:
            raise base.ClusterError(str(exc)) from None
        finally:
            kube_client.close(api)
        self._resolved = path
        self._context = self.context_name or current_context(path)

    def stop(self) -> None:
        """Not ours to stop."""

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "kubeconfig": str(self.kubeconfig), "context": self.context,
                "server": self._server, "version": self._version, "nodes": list(self._nodes), "reach": self.reach}


def current_context(kubeconfig: Path) -> str | None:
    """The kubeconfig's ``current-context`` (None when it names none)."""
    try:
        doc = yaml.safe_load(kubeconfig.read_text())
    except (OSError, yaml.YAMLError):
        return None
    value = doc.get("current-context") if isinstance(doc, dict) else None
    return value if isinstance(value, str) and value else None
