"""The ONE definition of the checkpointing StatefulSet and everything it needs.

`harness deploy --via direct`, `--via pulumi`, `--render` and the Pulumi program in infra/ all
take their objects from :func:`build`, so every cluster gets exactly the same thing. Objects
are plain JSON-shaped dicts with the API's camelCase keys (what kubectl, the API server and
Pulumi's wire format all speak); :mod:`harness.kube.models` checks them against the
Kubernetes models before anything touches a cluster.

Facts carried over from upstream (kubernetes/kubernetes):
- the StatefulSet controller labels each pod ``apps.kubernetes.io/pod-index`` (GA in 1.32),
  which the writer reads through the downward API to know its ordinal;
- a StatefulSet's ``serviceName`` must name a governing headless Service — nothing creates
  or checks it, so it is built here next to the set;
- claim templates are claim *specs* inside the set; the controller creates
  ``<template>-<set>-<ordinal>`` from them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Literal, TypeAlias, Union

import harness
from harness.deploy import spec as deploy_spec

JsonValue: TypeAlias = Union[str, int, float, bool, "JsonObject", list["JsonValue"], None]
JsonObject: TypeAlias = dict[str, JsonValue]

Kind = Literal["Namespace", "Service", "StatefulSet", "PodDisruptionBudget"]

#: The label that marks a namespace as one the harness may deploy into and inject faults in.
#: Scenarios and `harness deploy` refuse any namespace without it (design rule 1).
TEST_NAMESPACE_LABEL = "chaos.harness/allowed"
TEST_NAMESPACE_LABEL_VALUE = "true"

#: Set by the StatefulSet controller on every pod (kubernetes pkg/apis/apps/types.go).
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"

APP_NAME = "ckpt-writer"
MANAGED_BY = "ckpt-chaos-harness"
CONTAINER_NAME = "writer"
PORT_NAME = "http"
DATA_MOUNT_PATH = "/data"
READINESS_PATH = "/readyz"
LIVENESS_PATH = "/healthz"
#: UID/GID the image's USER runs as (infra/Dockerfile); the pod asks for the same so a volume
#: provisioned root-owned is made group-writable by fsGroup.
RUN_AS_ID = 10001


@dataclasses.dataclass(frozen=True)
class KubeObject:
    """One manifest, with the identity fields lifted out so callers need not dig in the dict."""

    api_version: str
    kind: Kind
    name: str
    namespace: str | None
    body: JsonObject

    @property
    def ref(self) -> str:
        """``kind namespace/name`` for messages."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"


@dataclasses.dataclass(frozen=True)
class Manifests:
    """Every object of one deployment, in the order they must be created."""

    spec: deploy_spec.DeploySpec
    namespace: KubeObject
    service: KubeObject
    statefulset: KubeObject
    pdb: KubeObject | None

    def __iter__(self) -> Iterator[KubeObject]:
        yield self.namespace
        yield self.service
        yield self.statefulset
        if self.pdb is not None:
            yield self.pdb

    def objects(self) -> tuple[KubeObject, ...]:
        return tuple(self)


def selector_labels(spec: deploy_spec.DeploySpec) -> dict[str, str]:
    """What the set, the Service and the PDB select on; stable for the life of the set."""
    return {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/instance": spec.name}


def common_labels(spec: deploy_spec.DeploySpec) -> dict[str, str]:
    return {
        **selector_labels(spec),
        "app.kubernetes.io/component": "checkpoint-writer",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/version": harness.__version__,
    }


def build(spec: deploy_spec.DeploySpec) -> Manifests:
    return Manifests(
        spec=spec,
        namespace=namespace(spec),
        service=headless_service(spec),
        statefulset=statefulset(spec),
        pdb=pod_disruption_budget(spec),
    )


def namespace(spec: deploy_spec.DeploySpec) -> KubeObject:
    body: JsonObject = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": spec.namespace,
            "labels": {TEST_NAMESPACE_LABEL: TEST_NAMESPACE_LABEL_VALUE, "app.kubernetes.io/managed-by": MANAGED_BY},
        },
    }
    return KubeObject("v1", "Namespace", spec.namespace, None, body)


def headless_service(spec: deploy_spec.DeploySpec) -> KubeObject:
    """The governing Service named by the set's serviceName: gives each pod a stable DNS name.

    ``publishNotReadyAddresses`` keeps a recovering pod resolvable, so the harness can reach
    an ordinal that is up but not yet ready and ask it why.
    """
    body: JsonObject = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": _json(common_labels(spec))},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": _json(selector_labels(spec)),
            "ports": [{"name": PORT_NAME, "port": spec.writer.listen_port, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }
    return KubeObject("v1", "Service", spec.name, spec.namespace, body)


def statefulset(spec: deploy_spec.DeploySpec) -> KubeObject:
    update_strategy: JsonObject
    if spec.update_strategy == "RollingUpdate":
        update_strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": spec.partition}}
    else:
        update_strategy = {"type": "OnDelete"}
    body: JsonObject = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": _json(common_labels(spec))},
        "spec": {
            "serviceName": spec.name,
            "replicas": spec.replicas,
            "selector": {"matchLabels": _json(selector_labels(spec))},
            "podManagementPolicy": spec.pod_management,
            "updateStrategy": update_strategy,
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": spec.when_deleted, "whenScaled": spec.when_scaled},
            "minReadySeconds": spec.min_ready_seconds,
            "revisionHistoryLimit": 10,
            "template": {
                "metadata": {"labels": _json(common_labels(spec))},
                "spec": _pod_spec(spec),
            },
            "volumeClaimTemplates": [_claim_template(spec)],
        },
    }
    return KubeObject("apps/v1", "StatefulSet", spec.name, spec.namespace, body)


def pod_disruption_budget(spec: deploy_spec.DeploySpec) -> KubeObject | None:
    if spec.pdb is None:
        return None
    budget: JsonObject = {"selector": {"matchLabels": _json(selector_labels(spec))}}
    if spec.pdb.min_available is not None:
        budget["minAvailable"] = spec.pdb.min_available
    else:
        budget["maxUnavailable"] = spec.pdb.max_unavailable
    body: JsonObject = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": _json(common_labels(spec))},
        "spec": budget,
    }
    return KubeObject("policy/v1", "PodDisruptionBudget", spec.name, spec.namespace, body)


def claim_name(spec: deploy_spec.DeploySpec, ordinal: int) -> str:
    """The claim the StatefulSet controller creates for an ordinal."""
    return f"{spec.claim_template}-{spec.name}-{ordinal}"


def _claim_template(spec: deploy_spec.DeploySpec) -> JsonObject:
    claim_spec: JsonObject = {
        "accessModes": [spec.access_mode],
        "resources": {"requests": {"storage": spec.volume_size}},
    }
    if spec.storage_class is not None:
        claim_spec["storageClassName"] = spec.storage_class
    return {
        "metadata": {"name": spec.claim_template, "labels": _json(selector_labels(spec))},
        "spec": claim_spec,
    }


def _pod_spec(spec: deploy_spec.DeploySpec) -> JsonObject:
    return {
        "terminationGracePeriodSeconds": spec.termination_grace_seconds,
        # Service links would add ~7 env vars per Service in the namespace; the writer needs none.
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_ID,
            "runAsGroup": RUN_AS_ID,
            "fsGroup": RUN_AS_ID,
            "fsGroupChangePolicy": "OnRootMismatch",
        },
        "containers": [_writer_container(spec)],
    }


def _writer_container(spec: deploy_spec.DeploySpec) -> JsonObject:
    container: JsonObject = {
        "name": CONTAINER_NAME,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": ["harness", "writer", "serve", "--data-dir", DATA_MOUNT_PATH],
        "ports": [{"name": PORT_NAME, "containerPort": spec.writer.listen_port, "protocol": "TCP"}],
        "env": _writer_env(spec),
        "volumeMounts": [{"name": spec.claim_template, "mountPath": DATA_MOUNT_PATH}],
        # Ready = recovered and serving; the harness and the PDB count on it.
        "readinessProbe": _http_probe(READINESS_PATH, period=2, timeout=2, failures=2),
        # /healthz answers from the first moment the process serves, recovery or not (see
        # harness/workload/app.py), so liveness can never kill a pod mid-recovery; only a writer
        # silent for a minute (6 x 10 s) is restarted.
        "livenessProbe": _http_probe(LIVENESS_PATH, period=10, timeout=5, failures=6),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    resources = _resources(spec.resources)
    if resources:
        container["resources"] = resources
    return container


def _writer_env(spec: deploy_spec.DeploySpec) -> list[JsonValue]:
    def field(name: str, path: str) -> JsonObject:
        return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}

    def value(name: str, text: str) -> JsonObject:
        return {"name": name, "value": text}

    return [
        field("POD_NAME", "metadata.name"),
        field("POD_NAMESPACE", "metadata.namespace"),
        field("POD_INDEX", f"metadata.labels['{POD_INDEX_LABEL}']"),
        value("STATEFULSET_NAME", spec.name),
        value("CLAIM_TEMPLATE", spec.claim_template),
        value("KEEP_LAST", str(spec.writer.keep_last)),
        value("MAX_CHECKPOINT_BYTES", str(spec.writer.max_checkpoint_bytes)),
        value("LISTEN_PORT", str(spec.writer.listen_port)),
        value("WRITER_FORMAT", spec.writer.checkpoint_format),
        # Bind the pod's own address: on the embedded cluster pods share the host network, each
        # with its own 127.x address; the writer adds loopback itself where the pod IP is not
        # loopback, so kubectl port-forward keeps working on kind.
        field("LISTEN_HOST", "status.podIP"),
        # a negative control only (never set by a deploy flag): the writer skips these publish steps
        *([value("WRITER_UNSAFE_SKIP", ",".join(spec.writer.unsafe_skip))] if spec.writer.unsafe_skip else []),
    ]


def _http_probe(path: str, *, period: int, timeout: int, failures: int) -> JsonObject:
    return {
        "httpGet": {"path": path, "port": PORT_NAME, "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
        "successThreshold": 1,
    }


def _resources(resources: deploy_spec.Resources) -> JsonObject:
    requests: JsonObject = {}
    limits: JsonObject = {}
    if resources.cpu_request is not None:
        requests["cpu"] = resources.cpu_request
    if resources.memory_request is not None:
        requests["memory"] = resources.memory_request
    if resources.cpu_limit is not None:
        limits["cpu"] = resources.cpu_limit
    if resources.memory_limit is not None:
        limits["memory"] = resources.memory_limit
    out: JsonObject = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _json(labels: dict[str, str]) -> JsonObject:
    """dict[str, str] is not a JsonObject to mypy (dicts are invariant); copy it into one."""
    return dict(labels.items())
