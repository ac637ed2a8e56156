"""Which ordinals each locust user writes to, and how fast.

Every locust process spreads *its own* users over *all* ordinals, so every ordinal gets load
from every process whatever the user count and however locust's master dispatches users to
workers (its dispatch order does not follow worker indexes, so a global user numbering
would leave gaps). With ``n`` users in a process and ``O`` ordinals:

* ``n >= O``: user ``k`` writes to ordinal ``ordinals[k % O]`` (each ordinal gets
  ``n // O`` or ``n // O + 1`` users);
* ``n < O``: user ``k`` takes turns over ``ordinals[k], ordinals[k + n], ...``.

Pacing: ``rate_per_ordinal`` checkpoints per second per ordinal across all ``workers``
processes; 0 means as fast as possible. Pure functions, unit-tested.
"""

from __future__ import annotations

from collections.abc import Sequence


def ordinals_for_user(k: int, users: int, ordinals: Sequence[int]) -> tuple[int, ...]:
    """The ordinals user ``k`` (0-based, in its process) writes to, in turn."""
    if not ordinals:
        raise ValueError("no ordinals to write to")
    if users < 1:
        raise ValueError(f"a process needs at least one user, got {users}")
    n = len(ordinals)
    if users >= n:
        return (ordinals[k % n],)
    # A user spawned beyond the planned count (a shape grew the load) folds back in.
    slot = k % users
    return tuple(ordinals[i] for i in range(slot, n, users))


def users_on(ordinal: int, users: int, ordinals: Sequence[int]) -> int:
    """How many of a process's users write to ``ordinal``."""
    return sum(1 for k in range(users) if ordinal in ordinals_for_user(k, users, ordinals))


def user_rate(k: int, users: int, ordinals: Sequence[int], rate_per_ordinal: float, workers: int = 1) -> float:
    """Requests per second user ``k`` must make so each ordinal gets ``rate_per_ordinal``
    in total over ``workers`` processes; 0 means unpaced."""
    if rate_per_ordinal < 0:
        raise ValueError(f"rate per ordinal must be >= 0, got {rate_per_ordinal}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if rate_per_ordinal == 0:
        return 0.0
    mine = ordinals_for_user(k, users, ordinals)
    per_process = rate_per_ordinal / workers
    return sum(per_process / users_on(o, users, ordinals) for o in mine)
