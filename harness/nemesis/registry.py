"""Nemeses by name, for scenarios aimed at a StatefulSet: the fault catalogue in one table.

A scenario names a nemesis and its options as data. :func:`check` refuses an unknown name or
option with one line before anything is deployed; :func:`build` makes the nemesis against a
live :class:`~harness.nemesis.context.SetContext`. Each nemesis module owns its entry: the
options it takes (name → type) and its factory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from harness.nemesis import base, context, pod_kill

Factory = Callable[[context.SetContext, Mapping[str, object]], base.Nemesis]


@dataclasses.dataclass(frozen=True)
class Entry:
    options: Mapping[str, type | tuple[type, ...]]
    factory: Factory


NEMESES: Mapping[str, Entry] = {
    pod_kill.FORCE: Entry({}, pod_kill.build_force),
    pod_kill.GRACEFUL: Entry({"grace_seconds": int}, pod_kill.build_graceful),
}


def check(name: str, options: Mapping[str, object]) -> Entry:
    entry = NEMESES.get(name)
    if entry is None:
        raise base.NemesisError(f"unknown nemesis {name!r}; known: {', '.join(sorted(NEMESES))}")
    base.check_options(name, options, entry.options)
    return entry


def build(name: str, ctx: context.SetContext, options: Mapping[str, object]) -> base.Nemesis:
    return check(name, options).factory(ctx, options)
