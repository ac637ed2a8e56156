"""The harness's pytest plugin: run-wide options, the seed, the session's cluster.

Every option has an ini twin so a project can pin it in ``pyproject.toml`` (and an environment
twin: ``HARNESS_CLUSTER``, ``HARNESS_KUBECONFIG``, ``HARNESS_CONTEXT``, ``HARNESS_KIND_PATH``,
``HARNESS_KIND_CLUSTER``); precedence is marker >
command line > environment > ini > default (harness.settings). The seed is printed in the header
and kept in ``reports/.last-seed`` so ``--seed=last`` replays a run.

The kubeconfig option is ``--harness-kubeconfig``, not ``--kubeconfig``: pytest-kind (installed:
``--cluster kind`` runs through it) registers ``--kubeconfig``. Its other options are reused for
``--cluster kind``: ``--cluster-name`` (the kind cluster; ini twin ``harness_kind_cluster``),
``--keep-cluster`` (leave a cluster this session created) and ``--kind-bin`` (an alias of our
``--kind-path``; kind is never downloaded).

Heavy imports (the kubernetes client, the clusters) happen inside the ``cluster`` fixture, so
loading this plugin costs the unit tests nothing.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness import settings

if TYPE_CHECKING:
    from harness.clusters import base as cluster_base
    from harness.scenario import model as scenario_model
    from harness.scenario import runner as scenario_runner
    from harness.scenario import schedule as scenario_schedule
    from harness.scenario import system as system_mod

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
    group.addoption(
        "--cluster",
        dest="harness_cluster",
        default=None,
        metavar="KIND",
        help=f"where scenarios run: {' or '.join(settings.CLUSTER_CHOICES)} (default {settings.DEFAULT_CLUSTER}; "
        f"env {settings.ENV_CLUSTER})",
    )
    parser.addini("harness_cluster", "default for --cluster", default="")
    group.addoption(
        "--harness-kubeconfig",
        dest="harness_kubeconfig",
        default=None,
        metavar="PATH",
        help="kubeconfig of the existing cluster (default $KUBECONFIG, else ~/.kube/config; "
        f"env {settings.ENV_KUBECONFIG})",
    )
    parser.addini("harness_kubeconfig", "default for --harness-kubeconfig", default="")
    group.addoption(
        "--harness-context",
        dest="harness_context",
        default=None,
        metavar="NAME",
        help=f"context of the existing cluster (default: the kubeconfig's current context; env {settings.ENV_CONTEXT})",
    )
    parser.addini("harness_context", "default for --harness-context", default="")
    group.addoption(
        "--kind-path",
        dest="harness_kind_path",
        default=None,
        metavar="PATH",
        help=f"the kind binary for --cluster kind (default: kind on PATH, never downloaded; "
        f"env {settings.ENV_KIND_PATH})",
    )
    parser.addini("harness_kind_path", "default for --kind-path", default="")
    parser.addini("harness_kind_cluster", f"default for pytest-kind's --cluster-name with --cluster kind "
                  f"(default {settings.DEFAULT_KIND_CLUSTER}; env {settings.ENV_KIND_CLUSTER})", default="")
    group.addoption(
        "--soak-duration",
        dest="harness_soak_duration",
        default=None,
        metavar="SECONDS",
        help="how long soak scenarios (-m soak) inject faults (default 600)",
    )
    parser.addini("harness_soak_duration", "default for --soak-duration", default="600")
    group.addoption(
        "--replay",
        dest="harness_replay",
        default=None,
        metavar="RUN",
        help="re-run a stored run's scenario with its seed and its stored schedule (e.g. reports/latest)",
    )


def _raw_seed(config: pytest.Config) -> str:
    return str(config.getoption("harness_seed") or config.getini("harness_seed") or "")


def _last_seed_of(scenario: str) -> int:
    """``--seed=last`` in a scenario: the seed of that scenario's last stored run (a ``make test``
    in between must not change what "last" means)."""
    from harness import store

    run = store.latest_run(scenario)
    if run is None:
        pytest.fail(f"--seed=last: no stored run of scenario {scenario} under {store.REPORTS_DIR}", pytrace=False)
    return run.info.seed


def _resolve_seed(config: pytest.Config) -> int:
    raw = _raw_seed(config)
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


#: pytest-kind's default for --cluster-name: not a choice the user made, so our default applies
PYTEST_KIND_DEFAULT_NAME = "pytest-kind"


def _resolve_cluster(config: pytest.Config) -> settings.ClusterSettings:
    names = ("cluster", "kubeconfig", "context", "kind_path")
    cli: dict[str, str | None] = {n: config.getoption(f"harness_{n}") for n in names}
    cli["kind_path"] = cli["kind_path"] or config.getoption("kind_bin", default=None)
    kind_name = config.getoption("cluster_name", default=None)
    cli["kind_name"] = kind_name if kind_name != PYTEST_KIND_DEFAULT_NAME else None
    ini = {n: str(config.getini(f"harness_{n}") or "") or None for n in names}
    ini["kind_name"] = str(config.getini("harness_kind_cluster") or "") or None
    try:
        return settings.cluster_settings(cli=cli, env=os.environ, ini=ini,
                                         keep_cluster=bool(config.getoption("keep_cluster", default=False)))
    except settings.SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None


def _check_existing_cluster(chosen: settings.ClusterSettings) -> None:
    """A kubeconfig that cannot work fails the session before anything runs, in one line."""
    from harness.kube import client as kube_client

    path = Path(chosen.kubeconfig).expanduser() if chosen.kubeconfig else kube_client.default_kubeconfig_path()
    try:
        names = kube_client.context_names(path)
    except kube_client.KubeconfigError as exc:
        raise pytest.UsageError(_with_our_option_names(str(exc))) from None
    if chosen.context is not None and chosen.context not in names:
        known = ", ".join(names) or "none"
        raise pytest.UsageError(f"--harness-context {chosen.context!r} is not in {path} (contexts: {known})")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _write_html_aside(config)
    replay = config.getoption("harness_replay")
    if replay:
        config.stash[REPLAY_KEY] = _load_replay(Path(replay))
    config.stash[SESSION_RUNS_KEY] = []
    seed = _resolve_seed(config)
    config.stash[SEED_KEY] = seed
    config.stash[CLUSTER_KEY] = _resolve_cluster(config)
    if config.stash[CLUSTER_KEY].kind == "existing" and not config.option.collectonly:
        _check_existing_cluster(config.stash[CLUSTER_KEY])
    try:
        LAST_SEED_FILE.parent.mkdir(parents=True, exist_ok=True)
        LAST_SEED_FILE.write_text(f"{seed}\n")
    except OSError:
        pass  # a read-only checkout can still run; only --seed=last needs the file


def _write_html_aside(config: pytest.Config) -> None:
    """pytest-html rewrites its report at the end of every session, also an interrupted one (an
    empty "No results found" page over the last good report): write it beside the real path and
    move it into place only when the session was not interrupted (see pytest_unconfigure)."""
    target = getattr(config.option, "htmlpath", None)
    if target:
        config.stash[HTML_KEY] = Path(target)
        config.option.htmlpath = str(Path(target).with_suffix(".partial.html"))


def _load_replay(path: Path) -> Replay:
    from harness import store
    from harness.scenario import schedule

    try:
        run = store.open_run(path)
        steps = schedule.from_json((run.path / schedule.SCHEDULE_FILE).read_text())
    except (store.StoreError, OSError, schedule.ScheduleError) as exc:
        raise pytest.UsageError(f"--replay {path}: {exc}") from None
    nodeid = run.info.settings.get("pytest_nodeid")
    if not isinstance(nodeid, str):
        raise pytest.UsageError(f"--replay {path}: the run does not record which test ran it; run its scenario "
                                f"with --seed={run.info.seed} instead")
    return Replay(run.path, run.info.scenario, run.info.seed, nodeid, steps)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    replay = config.stash.get(REPLAY_KEY, None)
    if replay is None:
        return
    keep = [item for item in items if item.nodeid == replay.nodeid]
    if not keep:
        raise pytest.UsageError(f"--replay {replay.path}: test {replay.nodeid} was not collected; "
                                "pass its scenario file (e.g. pytest scenarios --replay RUN)")
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    config.stash[EXIT_KEY] = int(exitstatus)
    runs = config.stash.get(SESSION_RUNS_KEY, [])
    if not runs:
        return
    from harness import report, store

    base = runs[0].parent
    store.write_last_session(runs, base)
    try:
        print(f"\nindex of every run: {report.index(base)}")
    except Exception as exc:  # the runs and their reports are stored; the index is a convenience
        print(f"\nWARNING: {base}/index.html not built: {type(exc).__name__}: {exc}")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    target = config.stash.get(HTML_KEY, None)
    if target is None:
        return
    partial = target.with_suffix(".partial.html")
    if not partial.exists():
        return
    if config.stash.get(EXIT_KEY, int(pytest.ExitCode.INTERRUPTED)) == pytest.ExitCode.INTERRUPTED:
        print(f"\nsession interrupted: {target} keeps the last complete report; this one is {partial}")
        return
    os.replace(partial, target)


def pytest_report_header(config: pytest.Config) -> list[str]:
    chosen = config.stash[CLUSTER_KEY]
    where: str = chosen.kind
    if chosen.kind == "existing":
        where += f" (kubeconfig {chosen.kubeconfig or 'default'}, context {chosen.context or 'current'})"
    elif chosen.kind == "kind":
        where += (f" (cluster {chosen.kind_name}, kind {chosen.kind_path or 'from PATH'}"
                  f"{', kept at the end' if chosen.keep_cluster else ''})")
    return [
        f"harness seed: {config.stash[SEED_KEY]} (replay with --seed={config.stash[SEED_KEY]})",
        f"harness cluster: {where} (from {chosen.sources.get('cluster', 'default')})",
    ]


@pytest.fixture(scope="session")
def harness_seed(pytestconfig: pytest.Config) -> int:
    """The run's seed; derive every random generator from it."""
    return pytestconfig.stash[SEED_KEY]


@pytest.fixture(scope="session")
def cluster_settings(pytestconfig: pytest.Config) -> settings.ClusterSettings:
    """Which cluster the session runs against, and where each choice came from."""
    return pytestconfig.stash[CLUSTER_KEY]


@pytest.fixture(scope="session")
def cluster(
    cluster_settings: settings.ClusterSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[cluster_base.Cluster]:
    """The session's cluster, started once (the embedded one with shortened periods) and stopped
    at the end of the session — also after a failure or Ctrl-C.

    A cluster that cannot run on this machine at all (:class:`ClusterUnavailable`) skips with its
    reason printed; any other start failure is an error with the cluster's log tails printed.
    """
    from harness.clusters import base, factory

    refused: str | None = None
    try:
        made = factory.make(cluster_settings, state_dir=tmp_path_factory.mktemp("embedded-cluster"))
    except base.ClusterError as exc:  # a setting from the environment it cannot use: one line, nothing started
        refused = str(exc)
    if refused is not None:  # outside the except: pytest would print the chained traceback
        pytest.fail(f"cluster not made: {refused}", pytrace=False)
    print(f"\nstarting the {made.kind} cluster for this session")
    try:
        problem: base.ClusterError | None = None
        try:
            made.start()
        except base.ClusterError as exc:
            problem = exc
        if problem is not None:  # outside the except: pytest would print the chained traceback
            if problem.details:
                print(problem.details)
            if isinstance(problem, base.ClusterUnavailable):
                print(f"SKIP (cluster unavailable): {problem}")
                pytest.skip(f"cluster unavailable: {problem}")
            pytest.fail(f"cluster did not start: {_with_our_option_names(str(problem))}", pytrace=False)
        print(f"cluster ready: {made.describe()}")
        yield made
    finally:
        try:
            made.stop()
        except base.ClusterError as exc:
            print(f"WARNING: {exc}")


def _with_our_option_names(message: str) -> str:
    """harness.kube's hints name kubectl's flags; under pytest the options are ours."""
    return message.replace("--kubeconfig PATH", "--harness-kubeconfig PATH").replace(
        "--context NAME", "--harness-context NAME"
    )


@pytest.fixture
def report_attach(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``attach(name, text)``: put text into the HTML report — shown inline, or as a link when
    ``name`` ends in ``.json`` (results.json is too long to read inline), or, when ``name`` ends in
    ``.html``, a link to the file at path ``text`` (a run's report.html), relative to the report.

    A no-op without pytest-html (or with ``-p no:html``), so scenarios never depend on it.
    """
    if not request.config.pluginmanager.hasplugin("html"):
        return lambda _name, _text: None
    import html

    import pytest_html

    extras = request.getfixturevalue("extras")

    html_path = request.config.stash.get(HTML_KEY, None)

    def attach(name: str, text: str) -> None:
        if name.endswith(".html"):
            target = Path(text).resolve()
            base = (html_path or Path.cwd()).resolve().parent
            extras.append(pytest_html.extras.url(os.path.relpath(target, base), name=name))
        elif name.endswith(".json"):
            extras.append(pytest_html.extras.text(text, name=name))
        else:
            extras.append(pytest_html.extras.html(f"<h4>{html.escape(name)}</h4><pre>{html.escape(text)}</pre>"))

    return attach


@pytest.fixture(scope="session")
def soak_duration(pytestconfig: pytest.Config) -> float:
    """Seconds a soak scenario keeps injecting faults (``--soak-duration``, ini ``harness_soak_duration``)."""
    raw = pytestconfig.getoption("harness_soak_duration") or str(pytestconfig.getini("harness_soak_duration"))
    try:
        value = float(raw)
    except ValueError:
        raise pytest.UsageError(f"--soak-duration must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise pytest.UsageError(f"--soak-duration must be > 0 seconds, got {raw!r}")
    return value


@pytest.fixture
def run_scenario(
    request: pytest.FixtureRequest, harness_seed: int, tmp_path: Path, report_attach: Callable[[str, str], None]
) -> Callable[[scenario_model.Scenario], scenario_runner.Outcome]:
    """``run_scenario(SCENARIO)``: run a scenario on the session's cluster (or as local processes)
    and fail the test unless every checker but ``perf`` says valid.

    A scenario needing a capability the cluster lacks, or an API verb the cluster's authorization
    denies (harness.clusters.access), is skipped naming it, never passed; a scenario that cannot
    run as written fails with one line.
    """
    from harness.scenario import model, on_cluster, on_processes, runner

    def say(line: str) -> None:
        print(line, flush=True)

    def run(scn: model.Scenario) -> runner.Outcome:
        print(f"\nscenario {scn.name}: {scn.claim.strip().splitlines()[0]}", flush=True)
        make: Callable[[Path], system_mod.System]
        if scn.system == "statefulset":
            cluster: cluster_base.Cluster = request.getfixturevalue("cluster")
            missing = sorted(on_cluster.capabilities_needed(scn) - cluster.capabilities)
            if missing:
                # e.g. the embedded cluster offers power-loss only where FUSE can mount: say what is lacking
                from harness.clusters import base as clusters_base

                whys = [f"{c}: {why}" for c in missing if (why := clusters_base.missing_reason(cluster, c))]
                pytest.skip(f"the {cluster.kind} cluster cannot do {', '.join(missing)} "
                            f"(it offers: {', '.join(sorted(cluster.capabilities)) or 'none'})"
                            + (f"; {'; '.join(whys)}" if whys else ""))
            from harness.clusters import access as cluster_access

            denied = cluster_access.refused(cluster, [fault.nemesis for fault in scn.faults.values()])
            if denied is not None:
                pytest.skip(denied)
            kind: str = cluster.kind

            def make(run_dir: Path) -> system_mod.System:
                return on_cluster.StatefulSetOnCluster(scn, cluster, run_dir, say)
        else:
            kind = on_processes.LocalProcesses.kind

            def make(run_dir: Path) -> system_mod.System:
                return on_processes.LocalProcesses(scn, tmp_path, run_dir)
        seed, replay = harness_seed, None
        wanted = request.config.stash.get(REPLAY_KEY, None)
        if wanted is not None and wanted.scenario == scn.name:
            seed, replay = wanted.seed, wanted.schedule
            say(f"replaying {wanted.path}: seed {seed}, its stored schedule of {len(replay)} faults")
        elif _raw_seed(request.config) == "last":
            seed = _last_seed_of(scn.name)
            say(f"--seed=last: seed {seed} of the last stored run of {scn.name}")
        try:
            outcome = runner.execute(scn, make, seed=seed, cluster_kind=kind, progress=say, attach=report_attach,
                                     settings={"pytest_nodeid": request.node.nodeid}, replay=replay,
                                     on_run=request.config.stash[SESSION_RUNS_KEY].append)
        except model.ScenarioError as exc:
            pytest.fail(f"scenario {scn.name}: {exc}", pytrace=False)
        report_attach("report.html", str(outcome.run_dir / "report.html"))
        failures = outcome.failures([name for name in outcome.composed.verdicts if name != "perf"])
        assert not failures, "; ".join(failures)
        return outcome

    return run


@dataclasses.dataclass(frozen=True)
class Replay:
    """What ``--replay RUN`` re-runs: that run's test, seed and stored schedule."""

    path: Path
    scenario: str
    seed: int
    nodeid: str
    schedule: scenario_schedule.Schedule


REPLAY_KEY = pytest.StashKey[Replay]()
SESSION_RUNS_KEY = pytest.StashKey[list[Path]]()
HTML_KEY = pytest.StashKey[Path]()
EXIT_KEY = pytest.StashKey[int]()
SEED_KEY = pytest.StashKey[int]()
CLUSTER_KEY = pytest.StashKey[settings.ClusterSettings]()
