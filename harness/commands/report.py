"""``harness report RUN...`` / ``harness report --index``: the HTML reports, rebuilt from stored runs.

``report.html`` in a run folder and ``index.html`` in the reports folder are pure functions of
the stored evidence, so they can be (re)built at any time — after a run that crashed before its
report, after a ``harness check --write``, or when the report itself improves.

Exit codes: 0 every page written, 2 a folder is not a run folder or a page could not be
written (the message names which; the other pages are still built).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def report(
    runs: Annotated[
        list[Path] | None,
        typer.Argument(help="run folders to (re)build report.html for, e.g. reports/latest"),
    ] = None,
    index: Annotated[
        bool, typer.Option("--index", help="(re)build REPORTS_DIR/index.html: every stored run and its trends")
    ] = False,
    all_runs: Annotated[
        bool, typer.Option("--all", help="rebuild report.html of every run under REPORTS_DIR, then the index")
    ] = False,
    reports_dir: Annotated[
        Path, typer.Option("--reports-dir", help="the folder holding the run folders")
    ] = Path("reports"),
) -> None:
    """Build the HTML report of stored runs (and the index across runs)."""
    from harness import report as report_mod
    from harness import store
    from harness.report import runs as runs_mod

    targets = list(runs or [])
    if all_runs:
        targets += [reports_dir / r.name for r in runs_mod.collect(reports_dir) if r.status is not None]
    if not targets and not (index or all_runs):
        typer.echo("error: name a run folder (e.g. reports/latest), or --index, or --all", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    failed = 0
    for run_dir in targets:
        started = time.perf_counter()
        try:
            path = report_mod.build(run_dir)
        except (store.StoreError, OSError) as exc:
            typer.echo(f"error: {run_dir}: {exc}", err=True)
            failed += 1
            continue
        typer.echo(f"wrote {path} ({time.perf_counter() - started:.2f}s)")
    if index or all_runs:
        started = time.perf_counter()
        try:
            path = report_mod.index(reports_dir)
        except OSError as exc:
            typer.echo(f"error: cannot write the index under {reports_dir}: {exc}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        typer.echo(f"wrote {path} ({time.perf_counter() - started:.2f}s)")
    raise typer.Exit(EXIT_BAD_INPUT if failed else EXIT_OK)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
