"""Reading every volume back after recovery, through the Kubernetes API only.

The harness never reaches into a node's directories (on kind it cannot): the StatefulSet is
scaled to 0 — its claims stay, retained by the default ``whenScaled: Retain`` policy — and one
short-lived verifier pod per claim mounts it read-only and runs the offline verifier
(``harness verify /data --json``) from the writer's own image. The scheduler and the PV's node
affinity put each verifier where its volume is, exactly as they would place the writer. The
verifier's log (pods/log) is the :class:`harness.facts.VolumeFacts` JSON; exit 1 (torn
checkpoints found) is still a full report, which is what the checkers need.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Literal

from kubernetes import client as k8s_client
from kubernetes.client import exceptions as k8s_exceptions
from urllib3 import exceptions as urllib3_exceptions

from harness import facts
from harness.kube import apply as kube_apply
from harness.kube import wait as kube_wait

VERIFIER_NAME = "ckpt-verifier"
RUN_LABEL = "chaos.harness/verify-run"
CONTAINER = "verify"
MOUNT_PATH = "/data"
#: exit codes of `harness verify`: 0 all valid, 1 something torn (both full reports), 2 bad input
REPORT_EXIT_CODES = (0, 1)

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


class VolumeReadError(Exception):
    """A volume could not be read back; one line naming the claim and what happened."""


def verifier_pod_name(claim: str) -> str:
    """``verify-<claim>``, kept a valid DNS label (the pod's hostname) by trimming."""
    return f"verify-{claim}"[:63].rstrip("-.")


def verifier_command(ordinal: int) -> list[str]:
    """The writer image's CLI. ``--ordinal`` is the claim's ordinal: the facts carry it as the ordinal
    the volume was read as, apart from its stamp's, so a swapped volume shows (and an unstamped one
    is still reported as its claim's)."""
    return ["harness", "verify", MOUNT_PATH, "--json", "--ordinal", str(ordinal)]


def verifier_pod(
    namespace: str,
    claim: str,
    ordinal: int,
    *,
    image: str,
    run_as: int,
    run_id: str,
    pull_policy: str = "IfNotPresent",
) -> dict[str, object]:
    """A one-shot pod that mounts ``claim`` read-only at /data and prints its VolumeFacts.

    Same user as the writer (``run_as``) so it can read what the writer wrote; no fsGroup (a
    read-only mount must not be chowned); no node pinning (the PV's node affinity does that).
    """
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": verifier_pod_name(claim),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": VERIFIER_NAME, RUN_LABEL: run_id},
        },
        "spec": {
            "restartPolicy": "Never",
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 5,
            "securityContext": {"runAsNonRoot": True, "runAsUser": run_as, "runAsGroup": run_as},
            "containers": [{
                "name": CONTAINER,
                "image": image,
                "imagePullPolicy": pull_policy,
                "command": verifier_command(ordinal),
                "volumeMounts": [{"name": "data", "mountPath": MOUNT_PATH, "readOnly": True}],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
        },
    }


def parse_verifier_log(text: str, claim: str) -> facts.VolumeFacts:
    """The VolumeFacts printed by the verifier; its warnings (stderr, same log) are skipped."""
    for raw_line in reversed(text.splitlines()):
        line = raw_line.strip()
        if not line.startswith("{"):
            continue
        try:
            raw = json.loads(line)
        except ValueError:
            continue
        if isinstance(raw, dict) and "ordinal" in raw:
            try:
                return facts.volume_facts_from_dict(raw)
            except (KeyError, TypeError, ValueError) as exc:
                raise VolumeReadError(f"verifier of claim {claim} printed malformed VolumeFacts: {exc}") from None
    tail = " / ".join(text.strip().splitlines()[-3:]) or "(empty log)"
    raise VolumeReadError(f"verifier of claim {claim} printed no VolumeFacts JSON; log ends: {tail}")


def exit_code(pod: k8s_client.V1Pod) -> int | None:
    """The verifier container's exit code once it terminated."""
    statuses = (pod.status.container_statuses if pod.status is not None else None) or []
    for status in statuses:
        terminated = status.state.terminated if status.state is not None else None
        if status.name == CONTAINER and terminated is not None:
            return int(terminated.exit_code)
    return None


def scale(api: k8s_client.ApiClient, namespace: str, statefulset: str, replicas: int) -> None:
    """Set the set's replicas through its /scale subresource."""
    try:
        k8s_client.AppsV1Api(api).patch_namespaced_stateful_set_scale(
            statefulset, namespace, {"spec": {"replicas": replicas}}
        )
    except k8s_exceptions.ApiException as exc:
        raise VolumeReadError(
            f"cannot scale {namespace}/{statefulset} to {replicas} ({kube_apply.describe_api_error(exc)})"
        ) from None
    except urllib3_exceptions.HTTPError as exc:
        raise VolumeReadError(f"cannot reach the API server to scale {namespace}/{statefulset} ({exc})") from None


def delete_statefulset(api: k8s_client.ApiClient, namespace: str, statefulset: str) -> None:
    """Delete the set; its pods go by garbage collection, its claims stay or go by whenDeleted."""
    try:
        k8s_client.AppsV1Api(api).delete_namespaced_stateful_set(
            statefulset, namespace, body=k8s_client.V1DeleteOptions(propagation_policy="Background"))
    except k8s_exceptions.ApiException as exc:
        raise VolumeReadError(
            f"cannot delete statefulset {namespace}/{statefulset} ({kube_apply.describe_api_error(exc)})"
        ) from None
    except urllib3_exceptions.HTTPError as exc:
        raise VolumeReadError(f"cannot reach the API server to delete {namespace}/{statefulset} ({exc})") from None


def _why_not_done(pod: k8s_client.V1Pod) -> str:
    """The most telling reason a verifier has not finished: scheduling, image, or phase."""
    status = pod.status
    for cond in (status.conditions if status is not None else None) or []:
        if cond.type == "PodScheduled" and cond.status == "False":
            return f"unschedulable ({cond.reason}: {cond.message})"
    for cs in (status.container_statuses if status is not None else None) or []:
        waiting = cs.state.waiting if cs.state is not None else None
        if waiting is not None and waiting.reason:
            return f"{waiting.reason}: {waiting.message or ''}".rstrip(": ")
    return (status.phase if status is not None else None) or "no status yet"


def _name(pod: k8s_client.V1Pod) -> str:
    return str(pod.metadata.name) if pod.metadata is not None else "?"


def _finished_probe(core: k8s_client.CoreV1Api, namespace: str, run_id: str, count: int) -> kube_wait.Probe:
    def probe() -> kube_wait.Status:
        pods = core.list_namespaced_pod(namespace, label_selector=f"{RUN_LABEL}={run_id}").items
        done = [p for p in pods if p.status is not None and p.status.phase in ("Succeeded", "Failed")]
        pending = sorted((p for p in pods if p not in done), key=_name)
        if len(done) == count:
            return kube_wait.Status(True, f"all {count} verifiers finished")
        first = f"; {_name(pending[0])}: {_why_not_done(pending[0])}" if pending else ""
        return kube_wait.Status(False, f"{len(done)} of {count} verifiers finished ({len(pods)} exist){first}")

    return probe


def read_volumes(
    api: k8s_client.ApiClient,
    namespace: str,
    statefulset: str,
    claims: Mapping[int, str],
    *,
    image: str,
    run_as: int,
    pod_selector: str,
    timeout: float = 120.0,
    restore_replicas: int | None = None,
    pull_policy: str = "IfNotPresent",
    progress: Progress = lambda _line: None,
    stop: Literal["scale", "delete-set"] = "scale",
) -> tuple[facts.VolumeFacts, ...]:
    """Stop the set's pods, verify every claim in a pod of its own, and (optionally) scale back.

    ``stop`` says how the pods go while the claims stay: ``scale`` to 0 (the claims survive by
    ``whenScaled: Retain``) or ``delete-set`` (by ``whenDeleted: Retain``; no scaling back then).
    ``claims`` maps ordinal → claim name; ``pod_selector`` selects the set's pods (to wait until
    they are gone). Verifier pods are deleted whatever happens.
    """
    core = k8s_client.CoreV1Api(api)
    if stop == "scale":
        progress(f"scaling {namespace}/{statefulset} to 0 so its volumes can be read (whenScaled: Retain)")
        scale(api, namespace, statefulset, 0)
    else:
        progress(f"deleting statefulset {namespace}/{statefulset} so its volumes can be read (whenDeleted: Retain)")
        delete_statefulset(api, namespace, statefulset)
        restore_replicas = None
    try:
        kube_wait.until(f"the pods of {namespace}/{statefulset} to be gone after scaling to 0",
                        kube_wait.pods_gone(api, namespace, pod_selector), timeout=timeout, interval=0.2,
                        on_progress=lambda line: progress(f"  {line}"))
    except kube_wait.WaitTimeout as exc:
        raise VolumeReadError(str(exc)) from None
    run_id = secrets.token_hex(4)
    created: list[str] = []
    try:
        for ordinal, claim in sorted(claims.items()):
            body = verifier_pod(namespace, claim, ordinal, image=image, run_as=run_as, run_id=run_id,
                                pull_policy=pull_policy)
            try:
                core.create_namespaced_pod(namespace, k8s_client.V1Pod.model_validate(body))
            except k8s_exceptions.ApiException as exc:
                raise VolumeReadError(
                    f"cannot create the verifier of claim {claim} ({kube_apply.describe_api_error(exc)})"
                ) from None
            created.append(verifier_pod_name(claim))
        progress(f"verifying {len(created)} volumes in pods {', '.join(created)}")
        try:
            kube_wait.until(f"the verifier pods of {namespace} to finish",
                            _finished_probe(core, namespace, run_id, len(created)), timeout=timeout, interval=0.25,
                            on_progress=lambda line: progress(f"  {line}"))
        except kube_wait.WaitTimeout as exc:
            raise VolumeReadError(str(exc)) from None
        found = tuple(_collect(core, namespace, claim) for _ordinal, claim in sorted(claims.items()))
    finally:
        _delete_verifiers(api, namespace, run_id, created, timeout=timeout)
    if restore_replicas is not None:
        progress(f"scaling {namespace}/{statefulset} back to {restore_replicas}")
        scale(api, namespace, statefulset, restore_replicas)
    return found


def _collect(core: k8s_client.CoreV1Api, namespace: str, claim: str) -> facts.VolumeFacts:
    name = verifier_pod_name(claim)
    try:
        pod = core.read_namespaced_pod(name, namespace)
        log = core.read_namespaced_pod_log(name, namespace, container=CONTAINER)
    except k8s_exceptions.ApiException as exc:
        raise VolumeReadError(
            f"cannot read the verifier {name} of claim {claim} ({kube_apply.describe_api_error(exc)})"
        ) from None
    code = exit_code(pod)
    if code not in REPORT_EXIT_CODES:
        tail = " / ".join(log.strip().splitlines()[-3:]) or "(empty log)"
        raise VolumeReadError(f"verifier {name} of claim {claim} exited {code}; log ends: {tail}")
    return parse_verifier_log(log, claim)


def _delete_verifiers(api: k8s_client.ApiClient, namespace: str, run_id: str, names: list[str], *,
                      timeout: float) -> None:
    """Force-delete the verifiers (they have finished) and wait until they are gone, so the claims
    are free for the writers again."""
    core = k8s_client.CoreV1Api(api)
    for name in names:
        with contextlib.suppress(k8s_exceptions.ApiException, urllib3_exceptions.HTTPError):
            core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    try:
        kube_wait.until(f"verifier pods of run {run_id} to be gone",
                        kube_wait.pods_gone(api, namespace, f"{RUN_LABEL}={run_id}"), timeout=min(timeout, 30),
                        interval=0.2)
    except kube_wait.WaitTimeout as exc:
        log.warning("%s (they go with the namespace)", exc)
