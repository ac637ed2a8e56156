"""Users are spread over ordinals so that every ordinal gets load and rates add up."""

from __future__ import annotations

import collections

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.load import plan


@given(users=st.integers(1, 40), n_ordinals=st.integers(1, 12))
def test_every_ordinal_gets_a_user_and_users_are_spread_evenly(users: int, n_ordinals: int) -> None:
    ordinals = list(range(10, 10 + n_ordinals))
    per_ordinal: collections.Counter[int] = collections.Counter()
    for k in range(users):
        mine = plan.ordinals_for_user(k, users, ordinals)
        assert mine, f"user {k} got no ordinal"
        per_ordinal.update(mine)
    assert set(per_ordinal) == set(ordinals)
    assert max(per_ordinal.values()) - min(per_ordinal.values()) <= 1


def test_fewer_users_than_ordinals_take_turns_over_several() -> None:
    assert plan.ordinals_for_user(0, 2, [0, 1, 2, 3, 4]) == (0, 2, 4)
    assert plan.ordinals_for_user(1, 2, [0, 1, 2, 3, 4]) == (1, 3)


def test_user_beyond_the_planned_count_still_gets_an_ordinal() -> None:
    assert plan.ordinals_for_user(7, 3, [0, 1, 2]) == (1,)


@given(users=st.integers(1, 30), n_ordinals=st.integers(1, 10), workers=st.integers(1, 4))
def test_user_rates_add_up_to_the_rate_per_ordinal(users: int, n_ordinals: int, workers: int) -> None:
    ordinals = list(range(n_ordinals))
    rate = 2.0
    delivered: collections.Counter[int] = collections.Counter()
    for k in range(users):
        mine = plan.ordinals_for_user(k, users, ordinals)
        per_user = plan.user_rate(k, users, ordinals, rate, workers)
        for o in mine:
            delivered[o] += per_user / len(mine) * workers  # turns are equal; every worker does the same
    for o in ordinals:
        assert delivered[o] == pytest.approx(rate)


def test_zero_rate_means_unpaced() -> None:
    assert plan.user_rate(0, 3, [0, 1], 0.0) == 0.0


def test_no_ordinals_is_refused() -> None:
    with pytest.raises(ValueError, match="no ordinals"):
        plan.ordinals_for_user(0, 1, [])
