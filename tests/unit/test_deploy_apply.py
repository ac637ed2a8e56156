"""Create-or-update against a scripted API: AlreadyExists, the resourceVersion of a PUT, conflicts.

kubesim (tests/integration/test_deploy_kubesim.py) cannot be made to lose a write race on cue,
so the 409-on-PUT path is driven here through a stand-in for the typed API class.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kubernetes import client

from harness.deploy import manifests, spec
from harness.kube import apply


def api_error(status: int, reason: str, message: str) -> client.exceptions.ApiException:
    exc = client.exceptions.ApiException(status=status, reason=reason)
    exc.body = json.dumps({"kind": "Status", "reason": reason, "message": message})
    return exc


class ScriptedStatefulSets:
    """A StatefulSet API whose live object and write races are set by the test."""

    def __init__(self, live: dict[str, Any] | None, conflicts: int = 0, refuse_with: int | None = None) -> None:
        self.live = live
        self.conflicts = conflicts
        self.refuse_with = refuse_with
        self.puts: list[dict[str, Any]] = []

    def __call__(self, _api_client: object) -> ScriptedStatefulSets:
        return self

    def _model(self) -> client.V1StatefulSet:
        return client.V1StatefulSet.model_validate(copy.deepcopy(self.live))

    def create_namespaced_stateful_set(self, namespace: str, body: client.V1StatefulSet) -> client.V1StatefulSet:
        if self.live is not None:
            raise api_error(409, "AlreadyExists", f'statefulsets.apps "{body.metadata.name}" already exists')
        self.live = client.ApiClient().sanitize_for_serialization(body)
        self.live["metadata"].update(resourceVersion="1", generation=1)
        return self._model()

    def read_namespaced_stateful_set(self, name: str, namespace: str) -> client.V1StatefulSet:
        return self._model()

    def replace_namespaced_stateful_set(
        self, name: str, namespace: str, body: client.V1StatefulSet
    ) -> client.V1StatefulSet:
        sent = client.ApiClient().sanitize_for_serialization(body)
        self.puts.append(sent)
        assert self.live is not None
        if self.refuse_with is not None:
            raise api_error(self.refuse_with, "Invalid", "StatefulSet.apps \"ckpt\" is invalid: spec: Forbidden")
        if self.conflicts:
            # someone else wrote first: their write bumps the version we sent
            self.conflicts -= 1
            self.live["metadata"]["resourceVersion"] = str(int(self.live["metadata"]["resourceVersion"]) + 1)
            raise api_error(409, "Conflict", "the object has been modified; please apply your changes")
        assert sent["metadata"]["resourceVersion"] == self.live["metadata"]["resourceVersion"]
        version = int(self.live["metadata"]["resourceVersion"]) + 1
        self.live = {**sent, "metadata": {**sent["metadata"], "resourceVersion": str(version), "generation": 2}}
        return self._model()


@pytest.fixture
def statefulset_body() -> dict[str, Any]:
    return copy.deepcopy(manifests.build(spec.parse({})).statefulset.body)  # type: ignore[arg-type]


def use(monkeypatch: pytest.MonkeyPatch, fake: ScriptedStatefulSets) -> None:
    kinds = dict(apply._KINDS)
    kinds[("apps/v1", "StatefulSet")] = apply._Kind(fake, "stateful_set", namespaced=True)
    monkeypatch.setattr(apply, "_KINDS", kinds)


def live_with(body: dict[str, Any], **spec_changes: Any) -> dict[str, Any]:
    live = copy.deepcopy(body)
    live["spec"].update(spec_changes)
    live["metadata"].update(resourceVersion="7", generation=1, labels={**live["metadata"]["labels"], "x.io/keep": "1"})
    return live


def test_missing_object_is_created(monkeypatch: pytest.MonkeyPatch, statefulset_body: dict[str, Any]) -> None:
    fake = ScriptedStatefulSets(live=None)
    use(monkeypatch, fake)
    result = apply.apply(client.ApiClient(), statefulset_body)
    assert (result.action, result.resource_version, result.generation) == ("created", "1", 1)
    assert fake.puts == []


def test_identical_live_object_is_left_alone(monkeypatch: pytest.MonkeyPatch, statefulset_body: dict[str, Any]) -> None:
    fake = ScriptedStatefulSets(live=live_with(statefulset_body))
    use(monkeypatch, fake)
    result = apply.apply(client.ApiClient(), statefulset_body)
    assert (result.action, result.resource_version) == ("unchanged", "7")
    assert fake.puts == []


def test_update_is_a_put_with_the_live_resource_version_keeping_foreign_labels(
    monkeypatch: pytest.MonkeyPatch, statefulset_body: dict[str, Any]
) -> None:
    fake = ScriptedStatefulSets(live=live_with(statefulset_body, replicas=1))
    use(monkeypatch, fake)
    result = apply.apply(client.ApiClient(), statefulset_body)
    assert result.action == "updated"
    (put,) = fake.puts
    assert put["metadata"]["resourceVersion"] == "7"
    assert put["metadata"]["labels"]["x.io/keep"] == "1"
    assert put["spec"]["replicas"] == 3


def test_lost_race_is_retried_against_the_newer_version(
    monkeypatch: pytest.MonkeyPatch, statefulset_body: dict[str, Any]
) -> None:
    fake = ScriptedStatefulSets(live=live_with(statefulset_body, replicas=1), conflicts=2)
    use(monkeypatch, fake)
    result = apply.apply(client.ApiClient(), statefulset_body)
    assert result.action == "updated"
    assert [put["metadata"]["resourceVersion"] for put in fake.puts] == ["7", "8", "9"]


def test_endless_races_give_up_with_one_line(monkeypatch: pytest.MonkeyPatch, statefulset_body: dict[str, Any]) -> None:
    fake = ScriptedStatefulSets(live=live_with(statefulset_body, replicas=1), conflicts=100)
    use(monkeypatch, fake)
    with pytest.raises(apply.ApplyError, match=r"update lost 5 resourceVersion races in a row; another client"):
        apply.apply(client.ApiClient(), statefulset_body)
    assert len(fake.puts) == apply.MAX_CONFLICT_RETRIES


def test_refused_update_names_the_reason_and_the_way_out(
    monkeypatch: pytest.MonkeyPatch, statefulset_body: dict[str, Any]
) -> None:
    fake = ScriptedStatefulSets(live=live_with(statefulset_body, replicas=1), refuse_with=422)
    use(monkeypatch, fake)
    with pytest.raises(apply.ApplyError) as caught:
        apply.apply(client.ApiClient(), statefulset_body)
    message = str(caught.value)
    assert message.startswith('StatefulSet ckpt-chaos/ckpt: update refused (422 Invalid: StatefulSet.apps "ckpt"')
    assert "run `harness undeploy` first" in message


def test_invalid_body_is_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch, statefulset_body: dict[str, Any]
) -> None:
    fake = ScriptedStatefulSets(live=None)
    use(monkeypatch, fake)
    statefulset_body["spec"]["service_name"] = statefulset_body["spec"].pop("serviceName")
    with pytest.raises(apply.ApplyError, match=r"spec\.service_name is not a Kubernetes field name"):
        apply.apply(client.ApiClient(), statefulset_body)
    assert fake.live is None
