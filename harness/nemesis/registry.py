"""Nemeses by name, for scenarios aimed at a StatefulSet: the fault catalogue in one table.

A scenario names a nemesis and its options as data. :func:`check` refuses an unknown name, an
unknown or mistyped option, or a missing required one with one line before anything is
deployed; :func:`build` makes the nemesis against a live
:class:`~harness.nemesis.context.SetContext`. An entry also says which cluster capability the
nemesis needs, so a scenario using it is skipped (naming it) on a cluster without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from harness.clusters import base as cluster_base
from harness.nemesis import base, claims, container_kill, context, nodes, pod_kill, setops

Factory = Callable[[context.SetContext, Mapping[str, object]], base.Nemesis]


@dataclasses.dataclass(frozen=True)
class Entry:
    options: Mapping[str, type | tuple[type, ...]]
    factory: Factory
    required: frozenset[str] = frozenset()
    needs: cluster_base.Capability | None = None
    #: a value check beyond the types (an opt-in that must be ``true``), run by :func:`check`
    validate: Callable[[Mapping[str, object]], None] | None = None


NEMESES: Mapping[str, Entry] = {
    pod_kill.FORCE: Entry({}, pod_kill.build_force),
    pod_kill.GRACEFUL: Entry({"grace_seconds": int}, pod_kill.build_graceful),
    container_kill.CONTAINER_KILL: Entry({"signal": str}, container_kill.build, needs="kill-container"),
    nodes.DRAIN: Entry({}, nodes.build_drain),
    nodes.CORDON: Entry({}, nodes.build_cordon),
    nodes.NODE_CRASH: Entry({"force_delete": bool}, nodes.build_node_crash, needs="node-crash"),
    nodes.POWER_LOSS: Entry({}, nodes.build_power_loss, needs="power-loss"),
    setops.SCALE: Entry({"to": int}, setops.build_scale, required=frozenset({"to"})),
    setops.ROLLOUT_RESTART: Entry({}, setops.build_restart),
    setops.PARTITIONED_UPDATE: Entry({"partition": int}, setops.build_partitioned,
                                     required=frozenset({"partition"})),
    # destroys the ordinal's volume: only where a scenario opts in (and declares it expected new)
    claims.DELETE_CLAIM: Entry({claims.ACCEPT: bool}, claims.build, required=frozenset({claims.ACCEPT}),
                               validate=claims.check_options),
}


def check(name: str, options: Mapping[str, object]) -> Entry:
    entry = NEMESES.get(name)
    if entry is None:
        raise base.NemesisError(f"unknown nemesis {name!r}; known: {', '.join(sorted(NEMESES))}")
    base.check_options(name, options, entry.options)
    missing = sorted(entry.required - set(options))
    if missing:
        raise base.NemesisError(f"{name}: option(s) {', '.join(missing)} required")
    if entry.validate is not None:
        entry.validate(options)
    return entry


def needs(name: str) -> cluster_base.Capability | None:
    """The capability a nemesis needs of the cluster (None: the Kubernetes API is enough)."""
    entry = NEMESES.get(name)
    return entry.needs if entry is not None else None


def build(name: str, ctx: context.SetContext, options: Mapping[str, object]) -> base.Nemesis:
    return check(name, options).factory(ctx, options)
