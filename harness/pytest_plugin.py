"""The harness's pytest plugin: run-wide options, the seed, markers.

Every option has an ini twin so a project can pin it in ``pyproject.toml``; the seed is
printed in the header and kept in ``reports/.last-seed`` so ``--seed=last`` replays a run.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

LAST_SEED_FILE = Path("reports") / ".last-seed"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "checkpoint durability harness")
    group.addoption(
        "--seed",
        dest="harness_seed",
        default=None,
        help="seed for every random choice (fault schedules, sizes); 'last' replays the previous run",
    )
    parser.addini("harness_seed", "default seed (see --seed)", default="")


def _resolve_seed(config: pytest.Config) -> int:
    raw = config.getoption("harness_seed") or str(config.getini("harness_seed") or "")
    if raw == "last":
        try:
            return int(LAST_SEED_FILE.read_text().strip())
        except (OSError, ValueError) as exc:
            raise pytest.UsageError(f"--seed=last: no previous seed in {LAST_SEED_FILE} ({exc})") from exc
    if raw:
        try:
            return int(raw)
        except ValueError as exc:
            raise pytest.UsageError(f"--seed must be an integer or 'last', got {raw!r}") from exc
    return random.SystemRandom().randrange(2**32)


def pytest_configure(config: pytest.Config) -> None:
    seed = _resolve_seed(config)
    config.stash[SEED_KEY] = seed
    try:
        LAST_SEED_FILE.parent.mkdir(parents=True, exist_ok=True)
        LAST_SEED_FILE.write_text(f"{seed}\n")
    except OSError:
        pass  # a read-only checkout can still run; only --seed=last needs the file


def pytest_report_header(config: pytest.Config) -> str:
    return f"harness seed: {config.stash[SEED_KEY]} (replay with --seed={config.stash[SEED_KEY]})"


@pytest.fixture(scope="session")
def harness_seed(pytestconfig: pytest.Config) -> int:
    """The run's seed; derive every random generator from it."""
    return pytestconfig.stash[SEED_KEY]


SEED_KEY = pytest.StashKey[int]()
