"""The typed description of one checkpointing StatefulSet, and the one parser that builds it.

Every way in — `harness deploy` flags, Pulumi config keys (``ckpt:replicas``), scenario code —
goes through :func:`parse`, so a value means the same everywhere and a bad one is refused with
one line that names the flag or config key it came from, before any object is built.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Literal, TypeVar, get_args

import harness
from harness.deploy import quantity

AccessMode = Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany", "ReadOnlyMany"]
RetentionAction = Literal["Retain", "Delete"]
PodManagementPolicy = Literal["OrderedReady", "Parallel"]
UpdateStrategyType = Literal["RollingUpdate", "OnDelete"]
PullPolicy = Literal["IfNotPresent", "Always", "Never"]
Source = Literal["cli", "pulumi"]

ACCESS_MODES: tuple[AccessMode, ...] = get_args(AccessMode)
RETENTION_ACTIONS: tuple[RetentionAction, ...] = get_args(RetentionAction)
POD_MANAGEMENT_POLICIES: tuple[PodManagementPolicy, ...] = get_args(PodManagementPolicy)
UPDATE_STRATEGIES: tuple[UpdateStrategyType, ...] = get_args(UpdateStrategyType)
PULL_POLICIES: tuple[PullPolicy, ...] = get_args(PullPolicy)

#: Short forms kubectl prints (`kubectl get pvc`), accepted for convenience.
_ACCESS_MODE_SHORT: dict[str, AccessMode] = {
    "RWO": "ReadWriteOnce",
    "RWOP": "ReadWriteOncePod",
    "RWX": "ReadWriteMany",
    "ROX": "ReadOnlyMany",
}

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_PERCENT = re.compile(r"(0|[1-9][0-9]?|100)%")
#: The controller-revision-hash label is "<set>-<10 chars>" and a label value holds 63 characters.
MAX_SET_NAME = 52

DEFAULT_IMAGE_REPOSITORY = "ckpt-writer"


def default_image() -> str:
    """The writer image that `harness image build` produces for this harness version."""
    return f"{DEFAULT_IMAGE_REPOSITORY}:{harness.__version__}"


@dataclasses.dataclass(frozen=True)
class Resources:
    """Container requests/limits as quantity strings; None leaves that one unset.

    No CPU limit by default: CFS throttling would show up as write latency that is the
    harness's doing, not the storage's.
    """

    cpu_request: str | None = "50m"
    memory_request: str | None = "64Mi"
    cpu_limit: str | None = None
    memory_limit: str | None = "512Mi"


@dataclasses.dataclass(frozen=True)
class Pdb:
    """A PodDisruptionBudget: exactly one of the two is set (an int or "NN%")."""

    min_available: int | str | None = None
    max_unavailable: int | str | None = 1


@dataclasses.dataclass(frozen=True)
class WriterSettings:
    """What the writer process in each pod is told through its environment."""

    keep_last: int = 3
    max_checkpoint_bytes: int = 64 * 2**20
    listen_port: int = 8080
    #: the checkpoint format the writer publishes (docs/formats.md): env WRITER_FORMAT
    checkpoint_format: str = "raw"
    #: NEGATIVE CONTROLS ONLY: publish-protocol steps the writer skips (env WRITER_UNSAFE_SKIP). Deliberately
    #: not an :data:`OPTIONS` entry (no deploy flag, no Pulumi key): only a scenario sets it
    #: (:attr:`harness.scenario.model.Scenario.writer_unsafe_skip`), to prove a fault can catch a writer that
    #: skips a step; nobody deploys such a writer by accident
    unsafe_skip: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class DeploySpec:
    """One StatefulSet of checkpoint writers with one claim per replica.

    ``storage_class`` None means the cluster's default class (``standard`` on kind and kubesim).
    """

    name: str = "ckpt"
    namespace: str = "ckpt-chaos"
    replicas: int = 3
    image: str = dataclasses.field(default_factory=default_image)
    image_pull_policy: PullPolicy = "IfNotPresent"
    storage_class: str | None = None
    volume_size: str = "1Gi"
    access_mode: AccessMode = "ReadWriteOnce"
    claim_template: str = "data"
    when_deleted: RetentionAction = "Retain"
    when_scaled: RetentionAction = "Retain"
    pod_management: PodManagementPolicy = "OrderedReady"
    update_strategy: UpdateStrategyType = "RollingUpdate"
    partition: int = 0
    min_ready_seconds: int = 0
    termination_grace_seconds: int = 30
    pdb: Pdb | None = dataclasses.field(default_factory=Pdb)
    resources: Resources = dataclasses.field(default_factory=Resources)
    writer: WriterSettings = dataclasses.field(default_factory=WriterSettings)


class SpecError(ValueError):
    """A spec value is invalid; ``str()`` is the one line to show, naming the flag or key."""


@dataclasses.dataclass(frozen=True)
class Option:
    """One settable spec value, with its CLI flag and its Pulumi config key (``ckpt:<key>``)."""

    key: str
    flag: str
    config_key: str
    help: str

    def label(self, source: Source) -> str:
        return self.flag if source == "cli" else f"ckpt:{self.config_key}"


OPTIONS: tuple[Option, ...] = (
    Option("name", "--name", "name", "StatefulSet (and headless Service) name"),
    Option("namespace", "--namespace", "namespace", "namespace; created with the test label if missing"),
    Option("replicas", "--replicas", "replicas", "number of writer pods (>= 0)"),
    Option("image", "--image", "image", "writer image (default ckpt-writer:<harness version>)"),
    Option("image_pull_policy", "--image-pull-policy", "imagePullPolicy", "IfNotPresent, Always or Never"),
    Option("storage_class", "--storage-class", "storageClass", "claims' storage class (default: the cluster default)"),
    Option("volume_size", "--size", "volumeSize", "size of each claim, a Kubernetes quantity such as 1Gi"),
    Option("access_mode", "--access-mode", "accessMode", "ReadWriteOnce (RWO), ReadWriteOncePod, ReadWriteMany, ..."),
    Option("claim_template", "--claim-template", "claimTemplate", "name of the volume claim template"),
    Option("when_deleted", "--when-deleted", "whenDeleted", "claim retention when the set is deleted: Retain|Delete"),
    Option("when_scaled", "--when-scaled", "whenScaled", "claim retention when scaled down: Retain|Delete"),
    Option("pod_management", "--pod-management", "podManagementPolicy", "OrderedReady or Parallel"),
    Option("update_strategy", "--update-strategy", "updateStrategy", "RollingUpdate or OnDelete"),
    Option("partition", "--partition", "partition", "RollingUpdate partition (lower ordinals keep the old revision)"),
    Option("min_ready_seconds", "--min-ready-seconds", "minReadySeconds", "seconds a pod must be ready to count"),
    Option(
        "termination_grace_seconds",
        "--termination-grace",
        "terminationGracePeriodSeconds",
        "seconds between SIGTERM and SIGKILL",
    ),
    Option("pdb", "--pdb", "pdb", "create a PodDisruptionBudget: true|false"),
    Option("pdb_min_available", "--pdb-min-available", "pdbMinAvailable", "PDB minAvailable (int or NN%)"),
    Option("pdb_max_unavailable", "--pdb-max-unavailable", "pdbMaxUnavailable", "PDB maxUnavailable (int or NN%)"),
    Option("cpu_request", "--cpu-request", "cpuRequest", "writer CPU request ('none' to unset)"),
    Option("memory_request", "--memory-request", "memoryRequest", "writer memory request ('none' to unset)"),
    Option("cpu_limit", "--cpu-limit", "cpuLimit", "writer CPU limit ('none' to unset)"),
    Option("memory_limit", "--memory-limit", "memoryLimit", "writer memory limit ('none' to unset)"),
    Option("keep_last", "--keep-last", "keepLast", "checkpoints each writer keeps (0 = all)"),
    Option("max_checkpoint_bytes", "--max-checkpoint-size", "maxCheckpointSize", "largest checkpoint, e.g. 64Mi"),
    Option("listen_port", "--port", "listenPort", "writer HTTP port"),
    Option("checkpoint_format", "--format", "format",
           "checkpoint format the writers publish: raw, safetensors, torch-dcp, orbax (each also -hardened)"),
)
OPTIONS_BY_KEY: dict[str, Option] = {option.key: option for option in OPTIONS}

L = TypeVar("L", bound=str)


def parse(raw: Mapping[str, str | None], *, source: Source = "cli", base: DeploySpec | None = None) -> DeploySpec:
    """Build a spec from raw strings keyed by :attr:`Option.key`; None or absent keeps ``base``'s value.

    Raises :class:`SpecError` for the first bad value, naming its flag (``source="cli"``) or
    Pulumi config key (``source="pulumi"``).
    """
    unknown = sorted(set(raw) - set(OPTIONS_BY_KEY))
    if unknown:
        raise SpecError(f"unknown spec option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS_BY_KEY)}")
    spec = base if base is not None else DeploySpec()
    given = {key: value for key, value in raw.items() if value is not None}

    def fail(key: str, message: str) -> SpecError:
        return SpecError(f"{OPTIONS_BY_KEY[key].label(source)}: {message}")

    def take(into: dict[str, object], key: str, convert: Callable[[str], object]) -> None:
        if key in given:
            try:
                into[key] = convert(given[key])
            except (ValueError, quantity.QuantityError) as exc:
                raise fail(key, str(exc)) from None

    top: dict[str, object] = {}
    take(top, "name", _set_name)
    take(top, "namespace", _namespace)
    take(top, "replicas", _non_negative_int)
    take(top, "image", _image)
    take(top, "image_pull_policy", lambda v: _choice(v, PULL_POLICIES))
    take(top, "storage_class", _storage_class)
    take(top, "volume_size", _size)
    take(top, "access_mode", _access_mode)
    take(top, "claim_template", _claim_template)
    take(top, "when_deleted", lambda v: _choice(v, RETENTION_ACTIONS))
    take(top, "when_scaled", lambda v: _choice(v, RETENTION_ACTIONS))
    take(top, "pod_management", lambda v: _choice(v, POD_MANAGEMENT_POLICIES))
    take(top, "update_strategy", lambda v: _choice(v, UPDATE_STRATEGIES))
    take(top, "partition", _non_negative_int)
    take(top, "min_ready_seconds", _non_negative_int)
    take(top, "termination_grace_seconds", _non_negative_int)
    resources: dict[str, object] = {}
    take(resources, "cpu_request", _optional_quantity)
    take(resources, "memory_request", _optional_quantity)
    take(resources, "cpu_limit", _optional_quantity)
    take(resources, "memory_limit", _optional_quantity)
    writer: dict[str, object] = {}
    take(writer, "keep_last", _non_negative_int)
    take(writer, "max_checkpoint_bytes", quantity.parse_bytes)
    take(writer, "listen_port", _port)
    take(writer, "checkpoint_format", _checkpoint_format)
    spec = dataclasses.replace(
        spec,
        resources=dataclasses.replace(spec.resources, **resources),  # type: ignore[arg-type]
        writer=dataclasses.replace(spec.writer, **writer),  # type: ignore[arg-type]
        **top,  # type: ignore[arg-type]
    )
    spec = _with_pdb(spec, given, fail)
    _check_consistency(spec, given, fail)
    return spec


def _with_pdb(spec: DeploySpec, given: Mapping[str, str], fail: Callable[[str, str], SpecError]) -> DeploySpec:
    enabled = spec.pdb is not None
    if "pdb" in given:
        try:
            enabled = _bool(given["pdb"])
        except ValueError as exc:
            raise fail("pdb", str(exc)) from None
    min_raw, max_raw = given.get("pdb_min_available"), given.get("pdb_max_unavailable")
    if min_raw is not None and max_raw is not None:
        raise fail("pdb_min_available", "set either a minimum available or a maximum unavailable, not both")
    if (min_raw is not None or max_raw is not None) and not enabled:
        which = "pdb_min_available" if min_raw is not None else "pdb_max_unavailable"
        raise fail(which, "the PodDisruptionBudget is disabled (pdb=false); enable it or drop this value")
    if not enabled:
        return dataclasses.replace(spec, pdb=None)
    pdb = spec.pdb if spec.pdb is not None else Pdb()
    try:
        if min_raw is not None:
            pdb = Pdb(min_available=_int_or_percent(min_raw), max_unavailable=None)
    except ValueError as exc:
        raise fail("pdb_min_available", str(exc)) from None
    try:
        if max_raw is not None:
            pdb = Pdb(min_available=None, max_unavailable=_int_or_percent(max_raw))
    except ValueError as exc:
        raise fail("pdb_max_unavailable", str(exc)) from None
    return dataclasses.replace(spec, pdb=pdb)


def _check_consistency(spec: DeploySpec, given: Mapping[str, str], fail: Callable[[str, str], SpecError]) -> None:
    """Rules that span two values; checked on the finished spec so defaults count too."""
    if spec.update_strategy == "OnDelete" and spec.partition:
        raise fail("partition", "a partition only applies to --update-strategy RollingUpdate (got OnDelete)")
    for low, high in (("cpu_request", "cpu_limit"), ("memory_request", "memory_limit")):
        request, limit = getattr(spec.resources, low), getattr(spec.resources, high)
        if request is None or limit is None:
            continue
        if quantity.parse_quantity(request) > quantity.parse_quantity(limit):
            key = high if high in given else low
            raise fail(key, f"the request {request} is above the limit {limit}")
    if len(f"{spec.claim_template}-{spec.name}-{max(spec.replicas - 1, 0)}") > 253:
        raise fail("claim_template", "claim names <template>-<set>-<ordinal> would exceed 253 characters")


def _set_name(value: str) -> str:
    # The set name is also the headless Service's name (a DNS-1035 label) and the pods' hostname prefix.
    if len(value) > MAX_SET_NAME or not _DNS1035_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} must be lower-case letters, digits and '-', start with a letter, "
            f"and be at most {MAX_SET_NAME} characters (e.g. ckpt)"
        )
    return value


def _namespace(value: str) -> str:
    if len(value) > 63 or not _DNS1123_LABEL.fullmatch(value):
        raise ValueError(f"{value!r} must be a DNS label: lower-case letters, digits and '-', at most 63 characters")
    return value


def _claim_template(value: str) -> str:
    if len(value) > 63 or not _DNS1123_LABEL.fullmatch(value):
        raise ValueError(f"{value!r} must be a DNS label: lower-case letters, digits and '-', at most 63 characters")
    return value


def _storage_class(value: str) -> str | None:
    if value in ("", "default"):
        return None
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{value!r} is not a storage class name (lower-case DNS subdomain); omit it for the default")
    return value


def _image(value: str) -> str:
    if not value or any(ch.isspace() for ch in value) or value.startswith(("-", ":", "@")):
        raise ValueError(f"{value!r} is not an image reference (e.g. ckpt-writer:0.1.0)")
    return value


def _size(value: str) -> str:
    quantity.parse_bytes(value)
    return value


def _optional_quantity(value: str) -> str | None:
    if value.lower() in ("", "none"):
        return None
    if quantity.parse_quantity(value) <= 0:
        raise ValueError(f"{value!r} must be more than zero (or 'none' to leave it unset)")
    return value


def _access_mode(value: str) -> AccessMode:
    if value.upper() in _ACCESS_MODE_SHORT:
        return _ACCESS_MODE_SHORT[value.upper()]
    return _choice(value, ACCESS_MODES)


def _choice(value: str, allowed: tuple[L, ...]) -> L:
    for candidate in allowed:
        if value.lower() == candidate.lower():
            return candidate
    raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")


def _checkpoint_format(value: str) -> str:
    # the writer's own list; its config module imports only the standard library
    from harness.workload import config as writer_config

    if value not in writer_config.CHECKPOINT_FORMATS:
        raise ValueError(f"{value!r} is not one of {', '.join(writer_config.CHECKPOINT_FORMATS)}")
    return value


def _int(value: str) -> int:
    try:
        return int(value.strip(), 10)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None


def _non_negative_int(value: str) -> int:
    number = _int(value)
    if number < 0:
        raise ValueError(f"must be 0 or more, got {number}")
    return number


def _port(value: str) -> int:
    number = _int(value)
    if not 1 <= number <= 65535:
        raise ValueError(f"must be a port number 1-65535, got {number}")
    return number


def _int_or_percent(value: str) -> int | str:
    if value.endswith("%"):
        if not _PERCENT.fullmatch(value):
            raise ValueError(f"{value!r} is not a percentage 0%-100%")
        return value
    return _non_negative_int(value)


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"{value!r} is not true or false")
