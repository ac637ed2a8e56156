"""A real lazyfs mount per test (``lazy``; see ``lazyfs_support.lazy_at``).

Where a mount cannot work here (no /dev/fuse, not root, libfuse missing) every test that needs
one is skipped with one line naming what is missing. Whatever a test does, nothing stays
mounted: the fixture unmounts (or finds the mount already ended by a power loss) and then
checks the kernel's mount table.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lazyfs_support import Lazy, lazy_at


@pytest.fixture
def lazy(tmp_path: Path) -> Iterator[Lazy]:
    with lazy_at(tmp_path) as fs:
        yield fs
