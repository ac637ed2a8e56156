"""Faults with heals, recorded in the history.

A nemesis injects one kind of fault into explicit targets and knows how to heal it. The
:func:`fault` context manager is the only way scenarios use one: it records the ``start``
op, runs the body, and heals in ``finally`` — so a failing assertion, a timeout or Ctrl-C
still heals the fault before anything else happens, and the history always shows the
period the fault covered (Jepsen's ``:start`` / ``:stop``).

A fault with no target is refused: a chaos tool that defaults to "everything" is a
destructive default (Chaos Toolkit's lesson).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol, cast

from harness import history, ops


class NemesisError(Exception):
    """A fault could not be injected or healed."""


class Nemesis(Protocol):
    """One kind of fault. ``inject`` and ``heal`` must be safe to call once each, in order;
    ``heal`` must also be safe after a partly failed ``inject``.

    ``affected`` says, before ``inject``, which ordinals the fault will take away (the pods on
    a drained node, the ordinals a scale-down removes); it reads the live cluster, and it
    refuses a target the nemesis cannot hit — so bad input fails before anything is changed.
    A nemesis may also keep ``notes`` (a JSON mapping: evictions a budget refused, the nodes
    pods moved to); :func:`fault` records them with the heal, as proof of what happened.
    A nemesis that stops writers gracefully (SIGTERM) says so with ``graceful = True``; the fault
    op then carries ``graceful_stop``, so the ``shutdown`` checker knows what to hold it to.
    """

    name: str

    def affected(self, targets: Sequence[str]) -> Sequence[int]: ...

    def inject(self, targets: Sequence[str]) -> None: ...

    def heal(self, targets: Sequence[str]) -> None: ...


def check_options(nemesis: str, options: Mapping[str, object], known: Mapping[str, type | tuple[type, ...]]) -> None:
    """Refuse an unknown or mistyped nemesis option with one line (before anything runs)."""
    unknown = sorted(set(options) - set(known))
    if unknown:
        offered = ", ".join(sorted(known)) or "none"
        raise NemesisError(f"{nemesis}: unknown option(s) {', '.join(unknown)}; known: {offered}")
    for key, value in options.items():
        kinds = known[key]
        if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
            raise NemesisError(f"{nemesis}: option {key} must be {_names(kinds)}, got {value!r}")
        if not isinstance(value, kinds):
            raise NemesisError(f"{nemesis}: option {key} must be {_names(kinds)}, got {value!r}")


def _names(kinds: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))


@contextlib.contextmanager
def fault(
    recorder: history.HistoryWriter,
    nemesis: Nemesis,
    targets: Sequence[str],
    *,
    expected_unavailable: Mapping[str, str] | None = None,
) -> Iterator[None]:
    """Inject ``nemesis`` into ``targets`` for the duration of the ``with`` body.

    ``expected_unavailable`` declares which ordinals the scenario expects to be unavailable
    and why (``{"2": "local volume pinned to the drained node"}``); the availability checker
    labels windows with it.
    """
    if not targets:
        raise NemesisError(f"{nemesis.name}: refusing a fault with no target")
    value: ops.FaultValue = {"fault": nemesis.name, "targets": list(targets)}
    if expected_unavailable:
        value["expected_unavailable"] = dict(expected_unavailable)
    if getattr(nemesis, "graceful", False):
        value["graceful_stop"] = True
    process = ops.NEMESIS_PROCESS
    payload = cast(history.JsonValue, dict(value))
    recorder.record("invoke", ops.FAULT_START, payload, process=process)
    try:
        try:
            nemesis.inject(targets)
        except BaseException as exc:
            # We do not know how much of the fault took effect: indeterminate, then heal.
            recorder.record("info", ops.FAULT_START, payload, error=repr(exc), process=process)
            raise
        recorder.record("ok", ops.FAULT_START, payload, process=process)
        yield
    finally:
        recorder.record("invoke", ops.FAULT_STOP, payload, process=process)
        try:
            nemesis.heal(targets)
        except BaseException as exc:
            recorder.record("info", ops.FAULT_STOP, payload, error=repr(exc), process=process)
            raise
        notes = getattr(nemesis, "notes", None)
        done = cast(history.JsonValue, {**value, "notes": dict(notes)}) if notes else payload
        recorder.record("ok", ops.FAULT_STOP, done, process=process)
