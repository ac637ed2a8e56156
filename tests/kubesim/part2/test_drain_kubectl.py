"""D5 (+ D3, D4, C5): unmodified `kubectl drain` against the 3-node kubesim cluster.

kubectl drain cordons the node, lists its pods by ``spec.nodeName``, POSTs evictions (retrying every
5 s on 429) and waits for each pod to be gone or replaced by a new uid. ``--pod-selector`` keeps
the drain to this test's pods, so other tests' leftovers on the same node are not touched.
"""

from __future__ import annotations

from typing import Any

import k4_cluster as kc
import k4_support as ks
import pytest

VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
BLOCKED_TIMEOUT = "3s"
"""kubectl gives up at its global timeout even while an eviction goroutine sleeps its 5 s before retrying."""
WRITE_ONCE = ["sh", "-c", 'test -f /data/marker || echo "written on $NODE_NAME" > /data/marker; '
              "cat /data/marker; exec sleep 3600"]


@pytest.fixture
def _pieces() -> None:
    kc.require_pieces()


def _drain(kubesim_cluster: Any, node: str, app: str, timeout: str, *extra: str) -> Any:
    return kc.kubectl(kubesim_cluster.kubeconfig, "drain", node, f"--pod-selector=app={app}", "--ignore-daemonsets",
                      "--delete-emptydir-data", f"--timeout={timeout}", *extra)


def test_drain_of_two_budgeted_bare_pods_evicts_one_and_reports_the_real_429_for_the_other(
        kubesim_cluster: Any, namespace: str) -> None:
    """D4/D5 without a workload controller: minAvailable 1 of 2 pods on one node; drain --force evicts one, the
    other's eviction is refused until the drain gives up, with kubectl showing the apiserver's message."""
    kc.require_pieces(("scheduler", "disruption"))
    api = kubesim_cluster.client
    node = kubesim_cluster.nodes[-1]
    for name in ("solo-a", "solo-b"):
        api.create("pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "solo"}},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": node}, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}}, namespace)
    api.create("poddisruptionbudgets", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "solo"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "solo"}}}}, namespace)
    for name in ("solo-a", "solo-b"):
        kc.await_ready(api, namespace, name, timeout=30)
    ks.await_value("budget allows one disruption", lambda: api.get("poddisruptionbudgets", "solo", namespace),
                   lambda pdb: (pdb.get("status") or {}).get("disruptionsAllowed") == 1, timeout=10)
    with kc.uncordoned_after(kubesim_cluster, node):
        drained = _drain(kubesim_cluster, node, "solo", BLOCKED_TIMEOUT, "--force")
    assert drained.returncode != 0, drained.stdout + drained.stderr
    assert VIOLATION in drained.stderr, drained.stderr
    left = [name for name in ("solo-a", "solo-b") if kc.is_ready(kc.pod_or_none(api, namespace, name))]
    assert len(left) == 1, f"exactly one pod should survive the drain, got {left}"


@pytest.mark.usefixtures("_pieces")
def test_drain_with_a_budget_evicts_one_pod_blocks_the_next_and_local_path_pod_waits_for_uncordon(
        kubesim_cluster: Any, namespace: str) -> None:
    """First eviction passes; the next is refused with the real 429 while the replacement is not Ready; the
    replacement of a local-path pod stays Pending with FailedScheduling until its node is uncordoned."""
    api = kubesim_cluster.client
    api.create("statefulsets", kc.statefulset("db", storage_class="standard", replicas=2), namespace)
    api.create("poddisruptionbudgets", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "db"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}}, namespace)
    before = {name: kc.await_ready(api, namespace, name, timeout=40) for name in ("db-0", "db-1")}
    ks.await_value("budget allows one disruption", lambda: api.get("poddisruptionbudgets", "db", namespace),
                   lambda pdb: (pdb.get("status") or {}).get("disruptionsAllowed") == 1, timeout=10)
    node_a, node_b = before["db-0"]["spec"]["nodeName"], before["db-1"]["spec"]["nodeName"]

    with kc.uncordoned_after(kubesim_cluster, node_a, node_b):
        first = _drain(kubesim_cluster, node_a, "db", "30s" if node_a != node_b else BLOCKED_TIMEOUT)
        if node_a != node_b:
            assert first.returncode == 0, first.stdout + first.stderr
            blocked = _drain(kubesim_cluster, node_b, "db", BLOCKED_TIMEOUT)
        else:
            blocked = first  # both pods on one node: drain evicts them together, one of the two must wait
        assert blocked.returncode != 0, blocked.stdout + blocked.stderr
        assert VIOLATION in blocked.stderr, blocked.stderr
        assert "will retry after 5s" in blocked.stderr, blocked.stderr

        pods = {name: kc.pod_or_none(api, namespace, name) for name in ("db-0", "db-1")}
        replaced = [n for n, p in pods.items() if p is None or p["metadata"]["uid"] != before[n]["metadata"]["uid"]]
        assert len(replaced) == 1, f"exactly one pod should have been evicted: {pods}"
        evicted = replaced[0]
        survivor = "db-1" if evicted == "db-0" else "db-0"
        assert kc.is_ready(pods[survivor]), "the budget must keep the other pod running"
        home = before[evicted]["spec"]["nodeName"]
        waiting = ks.await_value(f"{evicted} recreated", lambda: kc.pod_or_none(api, namespace, evicted),
                                 lambda p: p is not None and p["metadata"]["uid"] != before[evicted]["metadata"]["uid"],
                                 timeout=20)
        ks.await_value(f"{evicted} FailedScheduling (volume pinned to cordoned {home})",
                       lambda: ks.events_for(api, namespace, evicted, waiting["metadata"]["uid"]),
                       lambda evs: any(reason == "FailedScheduling" for _t, reason, _m in evs), timeout=20)
        waiting = api.get("pods", evicted, namespace)
        assert waiting["status"].get("phase") == "Pending"
        assert not waiting["spec"].get("nodeName")

        uncordon = kc.kubectl(kubesim_cluster.kubeconfig, "uncordon", home)
        assert uncordon.returncode == 0, uncordon.stderr
        back = kc.await_ready(api, namespace, evicted, timeout=40)
        assert back["spec"]["nodeName"] == home


@pytest.mark.usefixtures("_pieces")
def test_drain_moves_a_shared_volume_pod_to_another_node_with_its_data(kubesim_cluster: Any, namespace: str) -> None:
    """The shared class is attachable anywhere: the drained pod's replacement runs elsewhere and reads the
    file its predecessor wrote."""
    api = kubesim_cluster.client
    api.create("statefulsets", kc.statefulset("files", storage_class="shared", command=WRITE_ONCE), namespace)
    first = kc.await_ready(api, namespace, "files-0", timeout=40)
    home = first["spec"]["nodeName"]
    ks.await_value("files-0 wrote its marker", lambda: kc.pod_log(api, namespace, "files-0"),
                   lambda text: f"written on {home}" in text, timeout=10)

    with kc.uncordoned_after(kubesim_cluster, home):
        drained = _drain(kubesim_cluster, home, "files", "60s")
        assert drained.returncode == 0, drained.stdout + drained.stderr
        assert "evicting pod" in drained.stdout + drained.stderr
        moved = ks.await_value("files-0 Ready on another node", lambda: kc.pod_or_none(api, namespace, "files-0"),
                               lambda p: kc.is_ready(p) and p["metadata"]["uid"] != first["metadata"]["uid"],
                               timeout=40)
        assert moved["spec"]["nodeName"] != home
        text = ks.await_value("the new pod prints the old marker", lambda: kc.pod_log(api, namespace, "files-0"),
                              lambda t: "written on" in t, timeout=10)
        assert f"written on {home}" in text, text
