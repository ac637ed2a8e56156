"""Sizes and durations from the command line."""

from __future__ import annotations

import pytest

from harness.load import units


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4096", 4096), ("64KiB", 65536), ("1MiB", 1 << 20), ("1MB", 1_000_000), ("1.5k", 1500), (" 2 gib ", 2 << 30)],
)
def test_sizes_parse_with_binary_and_decimal_units(text: str, expected: int) -> None:
    assert units.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-1", "0", "1XB", "1 MiBs", "0.1"])
def test_bad_sizes_are_refused_with_examples(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        units.parse_size(text)


@pytest.mark.parametrize(("text", "expected"), [("90", 90.0), ("90s", 90.0), ("2m", 120.0), ("1h", 3600.0),
                                                ("500ms", 0.5)])
def test_durations_parse(text: str, expected: float) -> None:
    assert units.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "-5s", "0", "0s", "5d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        units.parse_duration(text)
