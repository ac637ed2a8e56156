"""Run checkers by name and combine their verdicts, Jepsen's ``compose``.

Names are resolved before anything runs, so a typo fails fast instead of after a long
check. A checker that raises yields ``"unknown"`` carrying the error — a crashed checker
is never a pass, and never hides the other checkers' answers.

One checker follows the run rather than the caller's choice: ``faults`` joins every check of
a run that declares faults, whichever checkers were chosen (scenarios and ``harness check``
name theirs explicitly, and neither must be able to forget it: a chaos run whose chaos never
happened would otherwise pass), and stays out of the default set for a run that declares none
(a plain load run has nothing for it to judge, so its verdicts are not touched). Likewise
``resume`` is in the default set only for a history that holds resume ops (scenarios record
them after every heal; a plain load run has none, and "unknown" there would say nothing), and
``shutdown`` only for a history with a graceful stop (a SIGTERMed writer) to hold to its drain.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable, Mapping, Sequence

from harness import facts, history, ops
from harness.checkers import availability, durability, expect, faults, identity, perf, resume, shutdown, verdict

Checker = Callable[[Sequence[history.Op], facts.RunFacts, expect.Expectations], verdict.Verdict]

CHECKERS: Mapping[str, Checker] = {
    "durability": durability.check,
    "identity": identity.check,
    "availability": availability.check,
    "perf": perf.check,
    "faults": faults.check,
    "resume": resume.check,
    "shutdown": shutdown.check,
}
#: the checker :func:`compose` adds or leaves out by what the run declared
FAULTS = "faults"
#: in the default set only when the history has something for it
RESUME = "resume"
SHUTDOWN = "shutdown"
#: checkers that judge what was read back from the volumes: without facts they cannot decide
NEED_FACTS = frozenset({"durability", "identity"})


class UnknownCheckerError(ValueError):
    """A checker name that is not registered."""


@dataclasses.dataclass(frozen=True, slots=True)
class Composed:
    valid: verdict.Validity
    verdicts: Mapping[str, verdict.Verdict]

    @property
    def summary(self) -> str:
        words = [f"{name}: {verdict.describe(v.valid)}" for name, v in self.verdicts.items()]
        return f"{verdict.describe(self.valid)} ({', '.join(words)})"

    def to_dict(self) -> dict[str, object]:
        return {"valid": self.valid, "summary": self.summary,
                "checkers": {name: v.to_dict() for name, v in self.verdicts.items()}}


def resolve(names: Sequence[str] | None, registry: Mapping[str, Checker] = CHECKERS) -> list[str]:
    """The checker names to run (all when None), in order, without repeats; raises on unknown."""
    chosen = list(registry) if names is None else list(dict.fromkeys(names))
    if not chosen:
        raise UnknownCheckerError("no checker chosen")
    unknown = [n for n in chosen if n not in registry]
    if unknown:
        raise UnknownCheckerError(f"unknown checker {', '.join(map(repr, unknown))}; known: {', '.join(registry)}")
    return chosen


def compose(
    names: Sequence[str] | None,
    ops_: Sequence[history.Op],
    run: facts.RunFacts,
    exp: expect.Expectations | None = None,
    *,
    registry: Mapping[str, Checker] = CHECKERS,
    facts_read: bool = True,
) -> Composed:
    """``facts_read`` False: the run ended before its read-back (interrupted, failed); it is
    judged as far as its history goes, and the checkers that need the volumes say unknown."""
    chosen = resolve(names, registry)
    if FAULTS in registry:
        if run.declared_faults and FAULTS not in chosen:
            chosen.append(FAULTS)
        elif not run.declared_faults and names is None:
            chosen.remove(FAULTS)
    if names is None and RESUME in chosen and not any(op.f == ops.RESUME for op in ops_):
        chosen.remove(RESUME)
    if names is None and SHUTDOWN in chosen and not shutdown.graceful_faults(ops_):
        chosen.remove(SHUTDOWN)
    e = exp if exp is not None else expect.Expectations()
    results: dict[str, verdict.Verdict] = {}
    for name in chosen:
        if not facts_read and name in NEED_FACTS:
            results[name] = verdict.Verdict(
                verdict.UNKNOWN, "not judged: the run ended before its volumes were read back (no facts.json)")
            continue
        try:
            results[name] = registry[name](ops_, run, e)
        except Exception as exc:  # a crashed checker is "unknown", with its error, never a pass
            results[name] = verdict.Verdict(
                verdict.UNKNOWN,
                f"checker crashed: {type(exc).__name__}: {exc}",
                {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()},
            )
    return Composed(verdict.combine(v.valid for v in results.values()), results)
