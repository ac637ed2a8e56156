"""The pure bookkeeping (kubesim/lazyfs/state.py), without a mount: runs everywhere."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from kubesim.lazyfs import state


@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 60)), max_size=20), st.integers(0, 200),
       st.integers(0, 80))
def test_interval_set_gaps_are_exactly_the_uncovered_bytes(adds: list[tuple[int, int]], start: int,
                                                           length: int) -> None:
    """What a change must still save is exactly what no earlier save covered (R1's undo)."""
    s = state.IntervalSet()
    covered: set[int] = set()
    for a, n in adds:
        s.add(a, a + n)
        covered |= set(range(a, a + n))
    ranges = list(s)
    assert ranges == sorted(ranges)
    assert all(e1 < s2 for (_, e1), (s2, _) in itertools.pairwise(ranges))  # disjoint, merged
    assert s.covered() == len(covered)
    gaps = s.gaps(start, start + length)
    assert {b for a, e in gaps for b in range(a, e)} == set(range(start, start + length)) - covered


def test_file_dirt_saves_only_durable_bytes() -> None:
    dirt = state.FileDirt(durable_size=10)
    assert dirt.to_save(8, 20) == [(8, 10)]
    assert dirt.to_save(10, 20) == []
    dirt.saved.add(0, 4)
    assert dirt.to_save(0, 6) == [(4, 6)]


def test_a_cross_directory_rename_commits_both_halves_and_releases_nothing_live() -> None:
    """R6 in the model: one fsync (of the destination) commits the source's removal too."""
    m = state.Model()
    x, y = m.new_node("dir", 0o755), m.new_node("dir", 0o755)
    m.adopt(m.root, "x", x)
    m.adopt(m.root, "y", y)
    f = m.new_node("file", 0o644, durable_content=True)
    m.adopt(x, "f", f)
    assert m.rename(x, "f", y, "g") == []
    assert m.sync_dir(y) == []
    assert x.durable == {}
    assert y.durable == {"g": f}
    assert sorted(p for p, _ in m.durable_image()) == [("x",), ("y",), ("y", "g")]


def test_a_removed_directory_releases_its_durable_children_once_its_removal_is_durable() -> None:
    """The graveyard does not leak: files kept for a removed directory's durable entries are
    released when that directory's own removal becomes durable."""
    m = state.Model()
    d = m.new_node("dir", 0o755)
    m.adopt(m.root, "d", d)
    f = m.new_node("file", 0o644, durable_content=True)
    m.adopt(d, "f", f)
    assert m.needs_burial(f)
    f.buried = True
    m.remove_entry(d, "f")
    m.remove_entry(m.root, "d")
    assert m.undurable().buried_files == 1
    released = m.sync_dir(m.root)
    assert f in released
    assert d in released
