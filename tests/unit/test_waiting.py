"""Waits end on the condition, or at the deadline with a message naming what and the last sighting."""

from __future__ import annotations

import itertools

import pytest

from harness import waiting


def test_until_returns_the_sighting_that_satisfied_it() -> None:
    counter = itertools.count()

    def probe() -> tuple[bool, str]:
        n = next(counter)
        return n >= 3, f"n={n}"

    assert waiting.until("n to reach 3", probe, timeout=5, interval=0.001) == "n=3"


def test_until_times_out_naming_what_it_awaited_and_what_it_last_saw() -> None:
    with pytest.raises(waiting.WaitTimeout, match=r"waiting for the door to open; last seen: still shut"):
        waiting.until("the door to open", lambda: (False, "still shut"), timeout=0.05, interval=0.01)


def test_probe_errors_are_not_waited_out() -> None:
    def probe() -> tuple[bool, str]:
        raise KeyError("broken probe")

    with pytest.raises(KeyError):
        waiting.until("anything", probe, timeout=5)
