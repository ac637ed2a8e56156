"""Awaiting a condition with a deadline and a message that says what was awaited.

A bare ``tenacity.RetryError`` says nothing; a ``sleep`` guesses. Every wait in the harness
is a probe polled until it says done, never sleeping past the deadline, and a timeout names
what was awaited, for how long, and the last thing the probe saw.
"""

from __future__ import annotations

from collections.abc import Callable

import tenacity


class WaitTimeout(Exception):
    """The deadline passed; the message is one line: what, how long, last seen."""


def until(
    what: str,
    probe: Callable[[], tuple[bool, str]],
    *,
    timeout: float,
    interval: float = 0.1,
) -> str:
    """Poll ``probe`` (returning ``(done, what it saw)``) until done; return the last sighting.

    Raises :class:`WaitTimeout` at the deadline. Exceptions from the probe propagate: a
    probe that cannot look is a bug, not a condition to wait out.
    """
    last = ["nothing yet"]

    def attempt() -> bool:
        done, seen = probe()
        last[0] = seen
        return done

    def give_up(state: tenacity.RetryCallState) -> bool:
        raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}; last seen: {last[0]}")

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda done: not done),
        stop=tenacity.stop_before_delay(timeout),
        wait=tenacity.wait_fixed(interval),
        retry_error_callback=give_up,
        reraise=True,
    )
    retrying(attempt)
    return last[0]
