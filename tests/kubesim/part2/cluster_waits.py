"""The one polling wait of the part-2 tests: until a probe returns something truthy.

A timeout is an AssertionError naming what was awaited and the last value the probe returned,
so a failing cluster test says what it saw, not just that it gave up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tenacity


def until_truthy(what: str, probe: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    last: list[Any] = [None]

    def attempt() -> Any:
        last[0] = probe()
        if not last[0]:
            raise AssertionError(what)
        return last[0]

    try:
        return tenacity.Retrying(stop=tenacity.stop_before_delay(timeout), wait=tenacity.wait_fixed(interval),
                                 reraise=True)(attempt)
    except AssertionError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last[0]!r}") from None
