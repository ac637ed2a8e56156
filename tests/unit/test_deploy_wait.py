"""Deadline waits and the StatefulSet rollout rules, without a cluster."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import urllib3
from kubernetes import client

from harness.kube import apply, wait
from harness.kube import client as kube_client


def sts(
    *,
    replicas: int = 3,
    generation: int = 2,
    observed: int | None = 2,
    ready: int = 3,
    updated: int = 3,
    current: str = "ckpt-a",
    update: str = "ckpt-a",
    strategy: str = "RollingUpdate",
    partition: int | None = 0,
) -> client.V1StatefulSet:
    rolling = client.V1RollingUpdateStatefulSetStrategy(partition=partition) if strategy == "RollingUpdate" else None
    return client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name="ckpt", namespace="ns", generation=generation),
        spec=client.V1StatefulSetSpec(
            replicas=replicas,
            service_name="ckpt",
            selector=client.V1LabelSelector(match_labels={"a": "b"}),
            template=client.V1PodTemplateSpec(),
            update_strategy=client.V1StatefulSetUpdateStrategy(type=strategy, rolling_update=rolling),
        ),
        status=client.V1StatefulSetStatus(
            replicas=replicas,
            observed_generation=observed,
            ready_replicas=ready,
            updated_replicas=updated,
            current_revision=current,
            update_revision=update,
        ),
    )


@pytest.mark.parametrize(
    ("obj", "done", "says"),
    [
        (sts(observed=None), False, "not yet observed by the StatefulSet controller"),
        (sts(observed=1), False, "spec generation 2 not yet observed"),
        (sts(ready=1), False, "1 of 3 pods ready"),
        (sts(updated=1, update="ckpt-b"), False, "rolling update: 1 of 3 pods updated"),
        (sts(update="ckpt-b"), False, "waiting for revision ckpt-b to become current"),
        (sts(), True, "3 of 3 pods ready at revision ckpt-a"),
        (sts(partition=2, updated=0, update="ckpt-b"), False, "rolling update: 0 of 1 pods updated"),
        (sts(partition=2, updated=1, update="ckpt-b"), True, "partitioned roll-out complete"),
        (sts(strategy="OnDelete", partition=None, update="ckpt-b", updated=0), True, "OnDelete"),
        (sts(replicas=0, ready=0, updated=0), True, "0 of 0 pods ready"),
    ],
)
def test_rollout_status_follows_kubectl(obj: client.V1StatefulSet, done: bool, says: str) -> None:
    status = wait.rollout_status(obj)
    assert status.done is done
    assert says in status.message


def test_wait_reports_each_new_status_and_returns_the_last() -> None:
    seen: list[str] = []
    answers = iter(["0 of 2 ready", "0 of 2 ready", "1 of 2 ready", "2 of 2 ready"])

    def probe() -> wait.Status:
        message = next(answers)
        return wait.Status(message.startswith("2"), message)

    result = wait.until("the thing", probe, timeout=5, interval=0.001, on_progress=seen.append)
    assert result == wait.Status(True, "2 of 2 ready")
    assert seen == ["0 of 2 ready", "1 of 2 ready", "2 of 2 ready"]


def test_wait_gives_up_at_its_deadline_naming_the_last_status() -> None:
    started = time.monotonic()
    with pytest.raises(wait.WaitTimeout) as caught:
        wait.until(
            "statefulset ns/ckpt rollout", lambda: wait.Status(False, "1 of 3 pods ready"), timeout=0.5, interval=0.2
        )
    elapsed = time.monotonic() - started
    assert str(caught.value) == (
        "timed out after 0.5s waiting for statefulset ns/ckpt rollout; last seen: 1 of 3 pods ready"
    )
    assert 0.45 <= elapsed < 1.5  # the last look is at the deadline, never a full interval past it


def test_api_errors_are_remembered_not_fatal() -> None:
    def probe() -> wait.Status:
        raise client.exceptions.ApiException(status=503, reason="Service Unavailable")

    with pytest.raises(wait.WaitTimeout, match=r"last seen: API error 503 Service Unavailable$"):
        wait.until("x", probe, timeout=0.2, interval=0.05)


@pytest.mark.parametrize(
    ("live", "desired", "expected"),
    [
        ({"a": 1, "b": {"c": 2, "server": "x"}}, {"b": {"c": 2}}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"l": [{"n": 1, "extra": 0}]}, {"l": [{"n": 1}]}, True),
        ({"l": [{"n": 1}, {"n": 2}]}, {"l": [{"n": 1}]}, False),  # a list is owned whole
        ({}, {"a": None}, True),
        ({"a": "1"}, {"a": 1}, False),
    ],
)
def test_contains_ignores_server_defaults_only(live: object, desired: object, expected: bool) -> None:
    assert apply.contains(live, desired) is expected


def test_api_status_body_becomes_one_line() -> None:
    exc = client.exceptions.ApiException(status=422, reason="Unprocessable Entity")
    exc.body = json.dumps(
        {"kind": "Status", "reason": "Invalid", "message": 'StatefulSet.apps "ckpt" is invalid: spec: Forbidden\nmore'}
    )
    assert apply.describe_api_error(exc) == '422 Invalid: StatefulSet.apps "ckpt" is invalid: spec: Forbidden'


def test_kubeconfig_that_is_not_a_kubeconfig_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("just: text\n")
    with pytest.raises(kube_client.KubeconfigError, match=r"has no 'contexts' list; is it really a kubeconfig\?$"):
        kube_client.new_api_client(path)
    path.write_text("{unbalanced")
    with pytest.raises(kube_client.KubeconfigError, match="is not valid YAML"):
        kube_client.new_api_client(path)


def test_unreachable_server_inside_a_wait_is_remembered() -> None:
    from urllib3 import exceptions as urllib3_exceptions

    def probe() -> wait.Status:
        raise urllib3_exceptions.MaxRetryError(None, "/apis", reason=ConnectionRefusedError("connection refused"))  # type: ignore[arg-type]

    with pytest.raises(wait.WaitTimeout, match=r"last seen: cannot reach the API server \(connection refused\)$"):
        wait.until("x", probe, timeout=0.2, interval=0.05)


def test_api_errors_become_the_callers_error_in_one_line_without_a_chain() -> None:
    class Refused(Exception):
        pass

    said = ("delete claim data-ckpt-1 refused", "delete claim: unreachable")
    refusal = client.exceptions.ApiException(status=403, reason="Forbidden")
    with pytest.raises(Refused, match=r"^delete claim data-ckpt-1 refused \(403 Forbidden\)$") as got, \
            apply.api_errors(Refused, *said):
        raise refusal
    assert got.value.__suppress_context__
    timeout = urllib3.exceptions.ReadTimeoutError(None, "/", "timed out")  # type: ignore[arg-type]
    with pytest.raises(Refused, match=r"^delete claim: unreachable \(.*timed out.*\)$"), \
            apply.api_errors(Refused, *said):
        raise timeout
