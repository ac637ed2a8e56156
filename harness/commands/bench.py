"""``harness bench``: the speed figures of the harness's own parts.

Each suite measures its subject and a baseline in the same run and prints the ratio, so a
figure means the same on a fast laptop and a busy CI machine.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console

#: suite name → "module:function"; the function takes a rich Console and prints its figures.
SUITES: dict[str, str] = {
    "checkers": "harness.checkers.bench:run",
    "writer": "harness.workload.bench:run",
    "formats": "harness.workload.bench:run_formats",
    "load": "harness.load.bench:run",
    "reach": "harness.load.bench_reach:run",
    "report": "harness.report.bench:run",
}


def _load(spec: str) -> Callable[[Console], None]:
    module, _, func = spec.partition(":")
    fn: Callable[[Console], None] = getattr(importlib.import_module(module), func)
    return fn


def bench(
    suites: Annotated[
        list[str] | None, typer.Argument(help=f"suites to run (default all): {', '.join(SUITES)}")
    ] = None,
) -> None:
    """Run the benchmarks and print figures with their baselines."""
    chosen = suites or list(SUITES)
    unknown = [s for s in chosen if s not in SUITES]
    if unknown:
        typer.echo(f"error: unknown bench suite {', '.join(unknown)}; known: {', '.join(SUITES)}", err=True)
        raise typer.Exit(2)
    console = Console()
    for name in chosen:
        console.rule(f"bench: {name}")
        _load(SUITES[name])(console)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
