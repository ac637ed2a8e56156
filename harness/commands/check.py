"""``harness check [RUN_DIR]``: judge a stored run again (or every run of the last session), without a cluster.

Reads the run's history, facts.json, schedule.json (the faults it declared) and run.json (its
declared expectations), re-runs the checkers and prints their verdicts. It never rewrites the
evidence or the live run's results.json; ``--write`` stores this check's verdicts as
results.check.json beside them.

Exit codes: 0 every verdict valid, 1 any invalid (the system deviated), 2 unknown or the
input could not be read (the run or the harness is at fault, not the system).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from harness import store

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNKNOWN = 2


def check(
    run_dir: Annotated[
        Path | None,
        typer.Argument(help="a run folder, e.g. reports/latest or reports/<utc>-<scenario>; "
                            "default: every run of the last scenario session (make run)"),
    ] = None,
    checker: Annotated[
        list[str] | None,
        typer.Option("--checker", "-c",
                     help="checker to run (repeatable; default: those the run itself used, else all); "
                          "a run whose schedule declares faults is always judged by 'faults' too"),
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="also store the verdicts as RUN_DIR/results.check.json")
    ] = False,
) -> None:
    """Re-run the checkers on a stored run (or every run of the last session) and print their verdicts."""
    from harness import checkers, store

    try:
        checkers.resolve(checker)  # a typo fails before anything is read
    except checkers.UnknownCheckerError as exc:
        raise _fail(str(exc)) from None
    if run_dir is not None:
        raise typer.Exit(_exit_code(_check_one(run_dir, checker, write)))
    try:
        runs = store.last_session()
    except store.StoreError as exc:
        raise _fail(str(exc)) from None
    valids = [_check_one(path, checker, write, tolerate=True) for path in runs]
    worst = EXIT_INVALID if False in valids else EXIT_UNKNOWN if any(v is not True for v in valids) else EXIT_VALID
    typer.echo(f"{len(runs)} runs of the last session: {sum(v is True for v in valids)} valid, "
               f"{sum(v is False for v in valids)} INVALID, {sum(v not in (True, False) for v in valids)} unknown")
    raise typer.Exit(worst)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_UNKNOWN)


def _exit_code(valid: object) -> int:
    if valid is True:
        return EXIT_VALID
    return EXIT_INVALID if valid is False else EXIT_UNKNOWN


def _check_one(run_dir: Path, checker: list[str] | None, write: bool, *, tolerate: bool = False) -> object:
    """Judge one stored run and print its table; returns its overall validity. Bad input is one
    ``error:`` line and exit 2 — or, with ``tolerate`` (a whole session), "unknown" and go on."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from harness import checkers, facts, store
    from harness.checkers import verdict

    warnings = _EchoWarnings()
    logging.getLogger("harness").addHandler(warnings)
    try:
        run = store.open_run(run_dir)
        expectations = checkers.Expectations.from_dict(run.info.expectations)
        # a run that finished read its volumes back: missing facts then is broken evidence; one that
        # was interrupted, failed or never ended is judged as far as its history goes
        unfinished = run.info.ended is None or run.info.outcome in ("interrupted", "failed")
        facts_read = run.has_facts() or not unfinished
        if run.info.ended is None:
            typer.echo(f"warning: {run_dir} never ended (still running, or its harness was killed): "
                       "judged as far as its evidence goes", err=True)
        run_facts = run.facts() if facts_read else facts.RunFacts()
        ops_ = run.history()
    except (store.StoreError, ValueError) as exc:
        message = str(exc) if isinstance(exc, store.StoreError) else f"{run_dir / store.RUN_FILE}: {exc}"
        if tolerate:
            typer.echo(f"error: {message}", err=True)
            return verdict.UNKNOWN
        raise _fail(message) from None
    finally:
        logging.getLogger("harness").removeHandler(warnings)

    # None (nothing chosen, nothing recorded) lets compose pick the default set for this run
    names = checker if checker is not None else _checkers_the_run_used(run) or None
    composed = checkers.compose(names, ops_, run_facts, expectations, facts_read=facts_read)
    console = Console()
    info = run.info
    ended = "" if info.outcome == "finished" or facts_read else \
        f" ({info.outcome or 'unfinished'}: judged as far as its evidence goes)"
    table = Table(title=Text(f"{info.name}: {len(ops_):,} ops, seed {info.seed}, {info.cluster_kind} cluster{ended}"))
    table.add_column("checker")
    table.add_column("verdict")
    table.add_column("summary", overflow="fold")
    styles = {"valid": "green", "INVALID": "bold red", "unknown": "yellow"}
    for name, v in composed.verdicts.items():
        word = verdict.describe(v.valid)
        table.add_row(name, Text(word, style=styles[word]), Text(v.summary))  # summaries are text, not markup
    console.print(table)
    console.print(f"overall: {verdict.describe(composed.valid)}")
    if write:
        try:
            path = run.write_check_results(composed.to_dict())
        except OSError as exc:
            message = f"cannot write {run_dir / store.CHECK_RESULTS_FILE}: {exc.strerror or exc}"
            if tolerate:
                typer.echo(f"error: {message}", err=True)
                return verdict.UNKNOWN
            raise _fail(message) from None
        console.print(f"wrote {path}")
    return composed.valid


class _EchoWarnings(logging.Handler):
    """Shows what the readers tolerated (a torn last history line, a completion without an
    invoke) as ``warning:`` lines on stderr, whether or not logging is configured."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(f"warning: {record.getMessage()}", err=True)


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def _checkers_the_run_used(run: store.StoredRun) -> list[str]:
    """The checkers named in the run's own results.json, so a stored run is judged again as it
    was judged live (a run without a cluster never ran the identity checker, for instance)."""
    from harness import store

    try:
        results = run.results()
    except store.StoreError:
        return []
    used = results.get("checkers") if results is not None else None
    return [str(name) for name in used] if isinstance(used, dict) else []
