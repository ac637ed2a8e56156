"""Reports a person would rather look at than read: ``report.html`` per run, ``index.html`` across runs.

Both are built from stored run folders alone (``harness report RUN``, ``harness report --index``)
and are self-contained HTML: opened offline, no script, no CDN. The functions here are the
entry points a runner calls; the heavy imports (matplotlib) happen only when one is called.
"""

from __future__ import annotations

from pathlib import Path


def build(run_dir: Path) -> Path:
    """Write ``run_dir/report.html`` from the stored run and return its path (see :mod:`harness.report.page`)."""
    from harness.report import page

    return page.build(run_dir)


def index(reports_dir: Path) -> Path:
    """Write ``reports_dir/index.html`` listing every stored run and return its path (see
    :mod:`harness.report.runs`)."""
    from harness.report import runs as runs_

    return runs_.build_index(reports_dir)
