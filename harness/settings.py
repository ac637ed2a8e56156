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
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

Source = Literal["marker", "cli", "env", "ini", "default"]
LAYERS: tuple[Source, ...] = get_args(Source)

#: Cluster kinds a session can run against now (kind needs pytest-kind, not installed yet).
ClusterChoice = Literal["embedded", "existing"]
CLUSTER_CHOICES: tuple[ClusterChoice, ...] = get_args(ClusterChoice)
DEFAULT_CLUSTER: ClusterChoice = "embedded"

#: environment twins of the options
ENV_CLUSTER = "HARNESS_CLUSTER"
ENV_KUBECONFIG = "HARNESS_KUBECONFIG"
ENV_CONTEXT = "HARNESS_CONTEXT"


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
    sources: Mapping[str, Source] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "kubeconfig": None if self.kubeconfig is None else str(self.kubeconfig),
                "context": self.context, "sources": dict(self.sources)}


_SPELLING: Mapping[str, Mapping[Source, str]] = {
    "cluster": {"cli": "--cluster", "env": ENV_CLUSTER, "ini": "ini option harness_cluster"},
    "kubeconfig": {"cli": "--harness-kubeconfig", "env": ENV_KUBECONFIG, "ini": "ini option harness_kubeconfig"},
    "context": {"cli": "--harness-context", "env": ENV_CONTEXT, "ini": "ini option harness_context"},
}


def cluster_settings(
    *,
    cli: Mapping[str, str | None],
    env: Mapping[str, str],
    ini: Mapping[str, str | None],
) -> ClusterSettings:
    """Resolve ``cluster``, ``kubeconfig`` and ``context`` (keys of ``cli``/``ini``) from their layers."""
    env_names = {"cluster": ENV_CLUSTER, "kubeconfig": ENV_KUBECONFIG, "context": ENV_CONTEXT}
    got = {
        name: resolve({"cli": cli.get(name), "env": env.get(env_names[name]), "ini": ini.get(name)},
                      DEFAULT_CLUSTER if name == "cluster" else None)
        for name in ("cluster", "kubeconfig", "context")
    }
    kind_raw = (got["cluster"].value or DEFAULT_CLUSTER).lower()
    where = describe_source("cluster", got["cluster"], _SPELLING["cluster"])
    if kind_raw == "kind":
        raise SettingsError(
            f"{where}=kind: the kind cluster needs pytest-kind, which is not installed; "
            "use embedded, or existing with a kind cluster's context (kind-<name>)"
        )
    if kind_raw not in CLUSTER_CHOICES:
        raise SettingsError(f"{where}={got['cluster'].value!r} is not one of {', '.join(CLUSTER_CHOICES)}")
    kind: ClusterChoice = "embedded" if kind_raw == "embedded" else "existing"
    if kind == "embedded":
        for name in ("kubeconfig", "context"):
            if got[name].source == "cli":
                raise SettingsError(
                    f"{_SPELLING[name]['cli']} only applies to --cluster existing (the embedded cluster writes "
                    "its own kubeconfig); add --cluster existing or drop it"
                )
    kubeconfig = Path(got["kubeconfig"].value).expanduser() if got["kubeconfig"].value else None
    if kind == "existing" and kubeconfig is not None and not kubeconfig.is_file():
        spelled = describe_source("kubeconfig", got["kubeconfig"], _SPELLING["kubeconfig"])
        raise SettingsError(f"{spelled}={kubeconfig}: no such file; pass the path of a kubeconfig")
    return ClusterSettings(
        kind=kind,
        kubeconfig=kubeconfig if kind == "existing" else None,
        context=got["context"].value if kind == "existing" else None,
        sources={name: r.source for name, r in got.items()},
    )
