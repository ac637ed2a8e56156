"""Typed run settings, each resolved from the first layer that gives it a value.

Precedence (docs/design.md): a test's marker > the command line > the environment > the ini file
(``pyproject.toml``'s ``[tool.pytest.ini_options]``) > the built-in default. Every resolved value
remembers which layer it came from, so run.json can say why a run used what it used.

The cluster is chosen once per session (it is started once), so no marker can pick it: its
layers start at the command line. No pytest or cluster imports here: the plugin feeds the
layers in and gets typed settings (or one :class:`SettingsError` line) back.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

Source = Literal["marker", "cli", "env", "ini", "default"]
LAYERS: tuple[Source, ...] = get_args(Source)

#: Cluster kinds a session can run against (kind: through pytest-kind, harness.clusters.kind).
ClusterChoice = Literal["embedded", "kind", "existing"]
CLUSTER_CHOICES: tuple[ClusterChoice, ...] = get_args(ClusterChoice)
DEFAULT_CLUSTER: ClusterChoice = "embedded"
#: The kind cluster's name when none is given: the ``name`` of infra/kind/cluster.yaml, so
#: ``make cluster-up`` and ``pytest --cluster kind`` mean the same cluster (a test keeps them equal).
DEFAULT_KIND_CLUSTER = "ckpt-chaos"
#: kind's own rule for cluster names (sigs.k8s.io/kind pkg/cluster/internal/create: validNameRE)
_KIND_NAME = re.compile(r"^[a-z0-9.-]+$")

#: environment twins of the options
ENV_CLUSTER = "HARNESS_CLUSTER"
ENV_KUBECONFIG = "HARNESS_KUBECONFIG"
ENV_CONTEXT = "HARNESS_CONTEXT"
ENV_KIND_PATH = "HARNESS_KIND_PATH"
ENV_KIND_CLUSTER = "HARNESS_KIND_CLUSTER"


class SettingsError(ValueError):
    """A setting has a value the harness cannot use; ``str()`` is one line naming where it came from."""


@dataclasses.dataclass(frozen=True, slots=True)
class Resolved:
    """A raw value (None: no layer gave one) and the layer it came from."""

    value: str | None
    source: Source


def resolve(
    layers: Mapping[Source, str | None],
    default: str | None = None,
) -> Resolved:
    """The first non-empty value in precedence order; ``default`` when no layer has one."""
    for layer in LAYERS:
        if layer == "default":
            break
        raw = layers.get(layer)
        if raw is not None and str(raw).strip() != "":
            return Resolved(str(raw).strip(), layer)
    return Resolved(default, "default")


def describe_source(name: str, resolved: Resolved, spelling: Mapping[Source, str]) -> str:
    """``--cluster`` / ``HARNESS_CLUSTER`` / ``ini harness_cluster``: where to fix a bad value."""
    return spelling.get(resolved.source, name)


@dataclasses.dataclass(frozen=True, slots=True)
class ClusterSettings:
    """Which cluster a scenario session runs against."""

    kind: ClusterChoice = DEFAULT_CLUSTER
    #: existing only: None means kubectl's default ($KUBECONFIG, else ~/.kube/config)
    kubeconfig: Path | None = None
    #: existing only: None means the kubeconfig's current context
    context: str | None = None
    #: kind only: the kind binary (None: ``kind`` on PATH; never downloaded)
    kind_path: Path | None = None
    #: kind only: the cluster to create or reuse
    kind_name: str = DEFAULT_KIND_CLUSTER
    #: kind only: leave a cluster this session created in place at the end (pytest-kind's --keep-cluster)
    keep_cluster: bool = False
    sources: Mapping[str, Source] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind,
                                  "kubeconfig": None if self.kubeconfig is None else str(self.kubeconfig),
                                  "context": self.context, "sources": dict(self.sources)}
        if self.kind == "kind":
            out.update(kind_path=None if self.kind_path is None else str(self.kind_path), kind_name=self.kind_name,
                       keep_cluster=self.keep_cluster)
        return out


_SPELLING: Mapping[str, Mapping[Source, str]] = {
    "cluster": {"cli": "--cluster", "env": ENV_CLUSTER, "ini": "ini option harness_cluster"},
    "kubeconfig": {"cli": "--harness-kubeconfig", "env": ENV_KUBECONFIG, "ini": "ini option harness_kubeconfig"},
    "context": {"cli": "--harness-context", "env": ENV_CONTEXT, "ini": "ini option harness_context"},
    "kind_path": {"cli": "--kind-path", "env": ENV_KIND_PATH, "ini": "ini option harness_kind_path"},
    "kind_name": {"cli": "--cluster-name", "env": ENV_KIND_CLUSTER, "ini": "ini option harness_kind_cluster"},
}
_ENV_NAMES: Mapping[str, str] = {"cluster": ENV_CLUSTER, "kubeconfig": ENV_KUBECONFIG, "context": ENV_CONTEXT,
                                 "kind_path": ENV_KIND_PATH, "kind_name": ENV_KIND_CLUSTER}
#: which cluster kinds each option applies to (given on the command line for another kind: refused)
_APPLIES_TO: Mapping[str, tuple[ClusterChoice, ...]] = {
    "kubeconfig": ("existing",), "context": ("existing",), "kind_path": ("kind",), "kind_name": ("kind",),
}
_WHY_NOT: Mapping[ClusterChoice, str] = {
    "embedded": "the embedded cluster writes its own kubeconfig",
    "kind": "kind writes its own kubeconfig, context kind-<name>",
    "existing": "an existing cluster is named by its kubeconfig and context",
}


def cluster_settings(
    *,
    cli: Mapping[str, str | None],
    env: Mapping[str, str],
    ini: Mapping[str, str | None],
    keep_cluster: bool = False,
) -> ClusterSettings:
    """Resolve ``cluster``, ``kubeconfig``, ``context``, ``kind_path`` and ``kind_name`` (keys of
    ``cli``/``ini``) from their layers; ``keep_cluster`` is pytest-kind's flag (command line only)."""
    got = {
        name: resolve({"cli": cli.get(name), "env": env.get(_ENV_NAMES[name]), "ini": ini.get(name)},
                      DEFAULT_CLUSTER if name == "cluster" else None)
        for name in _ENV_NAMES
    }
    kind_raw = (got["cluster"].value or DEFAULT_CLUSTER).lower()
    where = describe_source("cluster", got["cluster"], _SPELLING["cluster"])
    if kind_raw not in CLUSTER_CHOICES:
        raise SettingsError(f"{where}={got['cluster'].value!r} is not one of {', '.join(CLUSTER_CHOICES)}")
    kind: ClusterChoice = next(choice for choice in CLUSTER_CHOICES if choice == kind_raw)
    for name, kinds in _APPLIES_TO.items():
        if got[name].source == "cli" and kind not in kinds:
            raise SettingsError(
                f"{_SPELLING[name]['cli']} only applies to --cluster {' or '.join(kinds)} ({_WHY_NOT[kind]}); "
                f"add --cluster {kinds[0]} or drop it"
            )
    kubeconfig = Path(got["kubeconfig"].value).expanduser() if got["kubeconfig"].value else None
    if kind == "existing" and kubeconfig is not None and not kubeconfig.is_file():
        spelled = describe_source("kubeconfig", got["kubeconfig"], _SPELLING["kubeconfig"])
        raise SettingsError(f"{spelled}={kubeconfig}: no such file; pass the path of a kubeconfig")
    kind_path = _kind_path(got["kind_path"]) if kind == "kind" else None
    kind_name = got["kind_name"].value or DEFAULT_KIND_CLUSTER
    if kind == "kind" and not _KIND_NAME.fullmatch(kind_name):
        spelled = describe_source("kind_name", got["kind_name"], _SPELLING["kind_name"])
        raise SettingsError(f"{spelled}={kind_name!r} is not a kind cluster name (lower-case letters, digits, '.' "
                            "and '-' only)")
    return ClusterSettings(
        kind=kind,
        kubeconfig=kubeconfig if kind == "existing" else None,
        context=got["context"].value if kind == "existing" else None,
        kind_path=kind_path,
        kind_name=kind_name if kind == "kind" else DEFAULT_KIND_CLUSTER,
        keep_cluster=keep_cluster and kind == "kind",
        sources={name: r.source for name, r in got.items() if kind == "kind" or not name.startswith("kind_")},
    )


def _kind_path(resolved: Resolved) -> Path | None:
    """The kind binary a setting names: an executable file (None: look for ``kind`` on PATH at start)."""
    if resolved.value is None:
        return None
    path = Path(resolved.value).expanduser()
    spelled = describe_source("kind_path", resolved, _SPELLING["kind_path"])
    if not path.is_file():
        raise SettingsError(f"{spelled}={path}: no such file; pass the path of the kind binary (never downloaded)")
    if not os.access(path, os.X_OK):
        raise SettingsError(f"{spelled}={path} is not executable; chmod +x it or pass another kind binary")
    return path
