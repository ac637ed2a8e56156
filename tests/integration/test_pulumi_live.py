"""``harness deploy --via pulumi`` makes the same live objects as ``--via direct`` on a real cluster.

The same spec is deployed twice into two fresh namespaces — once through the direct path, once
through Pulumi (the Automation API, local file backend) — and the live objects the API server
holds are read back and compared field by field, after removing only what differs by nature:
the namespace name, server-assigned identity (uid, resourceVersion, timestamps, managedFields,
allocated cluster IPs), status, and Pulumi's own bookkeeping annotations and labels. Then both
are destroyed (``pulumi destroy``, ``harness undeploy``), whatever happened.

Needs the ``pulumi`` CLI and a real cluster (the nightly runs it on kind: ``--cluster kind``, or
``--cluster existing`` with a kubeconfig); skipped otherwise, before any cluster is started.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness import settings
from harness.clusters import base
from harness.deploy import manifests
from harness.deploy import spec as deploy_spec
from harness.kube import apply as kube_apply
from harness.kube import client as kube_client

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SPEC = {"replicas": "1", "keep_last": "2"}
#: set by the API server on every object, or allocated to it
SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink")
SERVICE_ALLOCATED = ("clusterIP", "clusterIPs")
#: what Pulumi adds to the objects it manages
PULUMI_MARKS = ("pulumi.com/",)
PULUMI_LABELS = {"app.kubernetes.io/managed-by": "pulumi"}


def harness(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=600,
                          check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"harness {' '.join(args[:3])} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"


def normalised(live: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The object without what differs by nature between two deployments of one spec."""
    meta = dict(live.get("metadata") or {})
    for key in (*SERVER_FIELDS, "namespace"):
        meta.pop(key, None)
    annotations = {k: v for k, v in (meta.pop("annotations", None) or {}).items()
                   if not k.startswith(PULUMI_MARKS) and k != "kubectl.kubernetes.io/last-applied-configuration"}
    labels = {k: v for k, v in (meta.pop("labels", None) or {}).items() if PULUMI_LABELS.get(k) != v}
    if meta.get("name") == namespace:
        meta["name"] = "<namespace>"
    out: dict[str, Any] = {k: v for k, v in live.items() if k not in ("metadata", "status")}
    out["metadata"] = {**meta, "annotations": annotations, "labels": labels}
    if live.get("kind") == "Service":  # a headless Service's "None" is ours, an allocated address is not
        out["spec"] = {k: v for k, v in out["spec"].items() if k not in SERVICE_ALLOCATED or v in ("None", ["None"])}
    return _replace(out, namespace, "<namespace>")


def _replace(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {k: _replace(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    return value.replace(old, new) if isinstance(value, str) else value


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [line for key in sorted(set(a) | set(b))
                for line in differences(a.get(key, "<absent>"), b.get(key, "<absent>"), f"{path}.{key}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [line for i, (x, y) in enumerate(zip(a, b, strict=True)) for line in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: direct {a!r} / pulumi {b!r}"]


def test_pulumi_deploys_the_same_live_objects_as_the_direct_path(
        cluster_settings: settings.ClusterSettings, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if shutil.which("pulumi") is None:
        pytest.skip("needs the pulumi CLI (the nightly installs it)")
    if cluster_settings.kind == "embedded":
        pytest.skip("needs a real cluster: --cluster kind, or --cluster existing with a kubeconfig")
    cluster: base.Cluster = request.getfixturevalue("cluster")
    suffix = secrets.token_hex(3)
    spaces = {"direct": f"chaos-cmp-direct-{suffix}", "pulumi": f"chaos-cmp-pulumi-{suffix}"}
    where = ["--kubeconfig", str(cluster.kubeconfig), *(["--context", cluster.context] if cluster.context else [])]
    spec_flags = [f"--{key.replace('_', '-')}={value}" for key, value in SPEC.items()]
    state = ["--state-dir", str(tmp_path / "pulumi-state")]
    cleanups: list[Callable[[], None]] = []
    try:
        cleanups.append(lambda: harness("undeploy", *where, "--namespace", spaces["direct"], "--delete-claims",
                                        "--delete-namespace"))
        harness("deploy", "--via", "direct", *where, "--namespace", spaces["direct"], *spec_flags)
        cleanups.append(lambda: harness("undeploy", "--via", "pulumi", *where, "--namespace", spaces["pulumi"], *state))
        harness("deploy", "--via", "pulumi", *where, "--namespace", spaces["pulumi"], *spec_flags, *state)
        api = kube_client.new_api_client(cluster.kubeconfig, cluster.context)
        try:
            found = []
            for kind_of in ("Namespace", "Service", "StatefulSet", "PodDisruptionBudget"):
                sides = {}
                for via, namespace in spaces.items():
                    [obj] = [o for o in manifests.build(deploy_spec.parse({**SPEC, "namespace": namespace},
                                                                          source="cli")) if o.kind == kind_of]
                    live = kube_apply.read(api, obj.body)
                    assert live is not None, f"{obj.ref} is not on the cluster after the {via} deploy"
                    sides[via] = normalised(live, namespace)
                found += [f"{kind_of}{line}" for line in differences(sides["direct"], sides["pulumi"])]
        finally:
            kube_client.close(api)
        assert not found, "the two paths made different live objects:\n" + "\n".join(found)
    finally:
        problems = []
        for cleanup in reversed(cleanups):
            try:
                cleanup()
            except AssertionError as exc:
                problems.append(str(exc))
        assert not problems, "\n".join(problems)
