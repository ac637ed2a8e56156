"""Load stages: parsing and which stage runs when."""

from __future__ import annotations

import pytest

from harness.load import stages


def test_stages_parse_with_optional_spawn_rate() -> None:
    assert stages.parse("30s:4, 2m:16@4 ,10s:0") == (
        stages.Stage(30.0, 4), stages.Stage(120.0, 16, 4.0), stages.Stage(10.0, 0),
    )


@pytest.mark.parametrize(
    ("text", "complaint"),
    [("", "no stages"), ("30s", "DURATION:USERS"), ("30s:x", "DURATION:USERS"), ("soon:3", "not a duration"),
     ("30s:3@fast", "not a number"), ("30s:3@0", "must be > 0"), ("5s:0,5s:0", "0 users")],
)
def test_bad_stages_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        stages.parse(text)


def test_stage_at_a_moment_and_the_end() -> None:
    plan = stages.parse("2s:1,3s:4")
    assert stages.at(plan, 0.0) == stages.Stage(2.0, 1)
    assert stages.at(plan, 2.0) == stages.Stage(3.0, 4)
    assert stages.at(plan, 5.0) is None
    assert stages.total_s(plan) == 5.0
