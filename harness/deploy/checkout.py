"""Where this harness's source checkout is, for the commands that need its files (Dockerfile, infra/)."""

from __future__ import annotations

from pathlib import Path

import harness

DOCKERFILE = Path("infra") / "Dockerfile"


def source_root() -> Path | None:
    """The repository root this harness runs from, if it is a checkout (infra/Dockerfile beside pyproject.toml).

    An installed wheel has neither, and then callers ask for an explicit path instead of guessing.
    """
    root = Path(harness.__file__).resolve().parent.parent
    return root if (root / DOCKERFILE).is_file() and (root / "pyproject.toml").is_file() else None
