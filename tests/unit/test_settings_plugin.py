"""The pytest plugin: option errors are usage errors, the header names the cluster, report attachments."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_plugin_turns_a_bad_cluster_option_into_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]')
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("--cluster", "bogus", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --cluster='bogus' is not one of embedded, kind, existing"])


def test_plugin_header_names_the_cluster_and_its_source(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]')
    pytester.makeini("[pytest]\nharness_cluster = embedded\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["harness cluster: embedded (from ini)"])
    assert result.ret == 0


def test_report_attach_puts_verdicts_inline_in_the_html_report(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]')
    pytester.makepyfile("def test_attach(report_attach):\n"
                        "    report_attach('verdicts', 'durability: valid <ok>')\n"
                        "    report_attach('results.json', '{}')\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--html=report.html", "--self-contained-html")
    assert result.ret == 0
    page = (pytester.path / "report.html").read_text()
    assert "durability: valid &amp;lt;ok&amp;gt;" in page or "durability: valid &lt;ok&gt;" in page
    assert "results.json" in page


def test_report_attach_is_a_no_op_without_pytest_html(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]')
    pytester.makepyfile("def test_attach(report_attach):\n    report_attach('verdicts', 'x')\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:html")
    assert result.ret == 0


KUBECONFIG = ("contexts: [{name: a, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "
              "'https://127.0.0.1:9'}}]\nusers: [{name: u, user: {token: t}}]\ncurrent-context: a\n")


@pytest.mark.parametrize(("content", "args", "line"), [
    (KUBECONFIG, ("--harness-context", "b"), "ERROR: --harness-context 'b' is not in kubeconfig (contexts: a)"),
    ("garbage: [", (), "ERROR: kubeconfig kubeconfig is not valid YAML (while parsing a flow node)"),
    (b"\xf6k\x00\x91\xda", (), "ERROR: kubeconfig kubeconfig is not a text file; pass the path of a kubeconfig"),
])
def test_a_kubeconfig_that_cannot_work_stops_the_session_in_one_line_before_anything_runs(
        pytester: pytest.Pytester, content: str | bytes, args: tuple[str, ...], line: str) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]')
    target = pytester.path / "kubeconfig"
    target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)
    pytester.makepyfile("def test_runs_without_a_cluster():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--cluster", "existing",
                                           "--harness-kubeconfig", "kubeconfig", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == line
    assert "Traceback" not in result.stderr.str()
    assert "passed" not in result.stdout.str(), "nothing may run with a kubeconfig that cannot work"


def test_an_unreachable_cluster_fails_the_scenario_in_one_line_without_a_chained_traceback(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]')
    (pytester.path / "kubeconfig").write_text(KUBECONFIG)
    pytester.makepyfile("def test_needs_cluster(cluster):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--cluster", "existing",
                                           "--harness-kubeconfig", "kubeconfig")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*cluster did not start: *127.0.0.1:9*"])
    assert "During handling of the above exception" not in result.stdout.str()


def test_an_unusable_cluster_setting_from_the_environment_fails_in_one_line(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]')
    pytester.makepyfile("def test_needs_cluster(cluster):\n    pass\n")
    monkeypatch.setenv("HARNESS_KUBESIM_TIMING", "quick")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["cluster not made: HARNESS_KUBESIM_TIMING='quick' is not one of upstream, fast"])
    assert "Traceback" not in result.stdout.str()
    assert "raise base.ClusterError" not in result.stdout.str()


def test_an_interrupted_session_never_overwrites_the_last_html_report(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]')
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    done = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--html=out/scenarios.html",
                                         "--self-contained-html", "test_ok.py")
    assert done.ret == 0
    good = (pytester.path / "out" / "scenarios.html").read_text()
    assert "test_ok" in good
    pytester.makepyfile(test_stop="def test_stop():\n    raise KeyboardInterrupt\n")
    stopped = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--html=out/scenarios.html",
                                            "--self-contained-html", "test_stop.py")
    assert stopped.ret == pytest.ExitCode.INTERRUPTED
    assert (pytester.path / "out" / "scenarios.html").read_text() == good
    stopped.stdout.fnmatch_lines(["*session interrupted: out/scenarios.html keeps the last complete report*"])


def test_kind_takes_pytest_kinds_own_options(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]')
    kind = pytester.path / "kind"
    kind.write_text("#!/bin/sh\n")
    kind.chmod(0o755)
    pytester.makepyfile("def test_nothing(cluster_settings):\n    assert cluster_settings.kind == 'kind'\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--cluster", "kind", "--cluster-name", "mine",
                                           "--kind-bin", str(kind), "--keep-cluster")
    result.stdout.fnmatch_lines([f"harness cluster: kind (cluster mine, kind {kind}, kept at the end) (from cli)"])
    assert result.ret == 0


def test_pytest_kinds_default_cluster_name_is_not_a_choice(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]')
    pytester.makeini("[pytest]\nharness_kind_cluster = from-ini\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--cluster", "kind")
    result.stdout.fnmatch_lines(["harness cluster: kind (cluster from-ini, kind from PATH) (from cli)"])
