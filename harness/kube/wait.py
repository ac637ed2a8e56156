"""Waits with a deadline that say what they waited for and what they last saw.

Every wait is a probe returning (done, status line) polled by tenacity; each sleep is cut to
what is left of the deadline, so the wait never sleeps past it and the probe gets a last look
at the deadline itself. The status line is reported when it changes, so a long rollout shows
its progress, and a timeout names the last status or error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import tenacity
from kubernetes import client as k8s_client
from kubernetes.client import exceptions as k8s_exceptions
from urllib3 import exceptions as urllib3_exceptions

from harness.kube import apply as kube_apply

Probe = Callable[[], "Status"]


@dataclasses.dataclass(frozen=True)
class Status:
    done: bool
    message: str


class WaitTimeout(Exception):
    """The deadline passed; the message is one line: what, how long, last status seen."""


def until(
    what: str,
    probe: Probe,
    *,
    timeout: float,
    interval: float = 0.5,
    on_progress: Callable[[str], None] | None = None,
) -> Status:
    """Poll ``probe`` until it reports done; raise :class:`WaitTimeout` at the deadline.

    An API error inside the probe is not the end: it is remembered as the last thing seen
    (the control plane may be restarting) and the wait goes on until the deadline.
    """
    last: list[str] = []

    def attempt() -> Status:
        try:
            status = probe()
        except k8s_exceptions.ApiException as exc:
            status = Status(False, f"API error {kube_apply.describe_api_error(exc)}")
        except (OSError, urllib3_exceptions.HTTPError) as exc:
            reason = getattr(exc, "reason", None) or exc
            status = Status(False, f"cannot reach the API server ({reason})")
        if not last or last[-1] != status.message:
            last.append(status.message)
            if on_progress is not None:
                on_progress(status.message)
        return status

    def give_up(state: tenacity.RetryCallState) -> Status:
        seen = last[-1] if last else "nothing (the probe never ran)"
        raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}; last seen: {seen}")

    def sleep_for(state: tenacity.RetryCallState) -> float:
        return max(0.0, min(interval, timeout - (state.seconds_since_start or 0.0)))

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout),
        wait=sleep_for,
        retry=tenacity.retry_if_result(lambda status: not status.done),
        retry_error_callback=give_up,
        reraise=True,
    )
    result: Status = retrying(attempt)
    return result


def statefulset_rollout(api_client: k8s_client.ApiClient, name: str, namespace: str) -> Probe:
    """The rollout of one StatefulSet as a probe (see :func:`rollout_status`)."""
    apps = k8s_client.AppsV1Api(api_client)

    def probe() -> Status:
        try:
            sts = apps.read_namespaced_stateful_set(name, namespace)
        except k8s_exceptions.ApiException as exc:
            if exc.status == 404:
                return Status(False, f"statefulset {namespace}/{name} does not exist")
            raise
        return rollout_status(sts)

    return probe


def rollout_status(sts: k8s_client.V1StatefulSet) -> Status:
    """kubectl's `rollout status` rules for a StatefulSet, one step stricter.

    Same order as kubectl (staging/src/k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go):
    generation observed, then every replica ready, then updatedReplicas >= replicas - partition.
    kubectl stops there whenever rollingUpdate is set; with partition 0 we also wait until the
    controller records updateRevision as current (it does once every pod is updated and ready),
    so a scenario starting right after sees a settled set. OnDelete has no roll-out (kubectl
    refuses it): done once every replica is ready.
    """
    spec, status = sts.spec, sts.status
    generation = sts.metadata.generation if sts.metadata is not None else None
    observed = status.observed_generation if status is not None else None
    if status is None or not observed or (generation is not None and observed < generation):
        return Status(
            False,
            f"spec generation {generation} not yet observed by the StatefulSet controller "
            f"(observedGeneration {observed}); is a StatefulSet controller running?",
        )
    replicas = spec.replicas if spec.replicas is not None else 1
    ready = status.ready_replicas or 0
    if ready < replicas:
        return Status(False, f"{ready} of {replicas} pods ready")
    strategy = spec.update_strategy
    if strategy is not None and strategy.type == "OnDelete":
        return Status(True, f"{ready} of {replicas} pods ready (OnDelete: pods update only when deleted)")
    partition = 0
    if strategy is not None and strategy.rolling_update is not None:
        partition = strategy.rolling_update.partition or 0
    updated = status.updated_replicas or 0
    if updated < replicas - partition:
        return Status(False, f"rolling update: {updated} of {replicas - partition} pods updated")
    if partition > 0:
        return Status(True, f"partitioned roll-out complete: {updated} new pods, partition {partition}")
    if status.update_revision != status.current_revision:
        return Status(False, f"rolling update: waiting for revision {status.update_revision} to become current")
    return Status(True, f"{ready} of {replicas} pods ready at revision {status.current_revision}")


def pods_gone(api_client: k8s_client.ApiClient, namespace: str, label_selector: str) -> Probe:
    """Done when no pod matches the selector any more (graceful termination included)."""
    core = k8s_client.CoreV1Api(api_client)

    def probe() -> Status:
        pods = core.list_namespaced_pod(namespace, label_selector=label_selector).items
        if not pods:
            return Status(True, "no pods left")
        names = sorted(p.metadata.name for p in pods if p.metadata is not None and p.metadata.name)
        return Status(False, f"{len(pods)} pods still present: {', '.join(names[:5])}")

    return probe
