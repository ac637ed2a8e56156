"""Cluster settings: precedence (cli > env > ini > default) and one-line refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness import settings


def resolve(cli: dict[str, str | None] | None = None, env: dict[str, str] | None = None,
            ini: dict[str, str | None] | None = None) -> settings.ClusterSettings:
    return settings.cluster_settings(cli=cli or {}, env=env or {}, ini=ini or {})


def test_default_cluster_is_embedded_from_the_default_layer() -> None:
    chosen = resolve()
    assert chosen.kind == "embedded"
    assert chosen.sources["cluster"] == "default"


def test_cli_beats_env_beats_ini(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("contexts: []\n")
    assert resolve(cli={"cluster": "existing"}, env={settings.ENV_CLUSTER: "embedded"},
                   ini={"cluster": "embedded"}).sources["cluster"] == "cli"
    from_env = resolve(env={settings.ENV_CLUSTER: "existing", settings.ENV_KUBECONFIG: str(kubeconfig)},
                       ini={"cluster": "embedded"})
    assert (from_env.kind, from_env.sources["cluster"], from_env.kubeconfig) == ("existing", "env", kubeconfig)
    assert resolve(ini={"cluster": "existing"}).sources["cluster"] == "ini"


def test_empty_layers_fall_through_to_the_next() -> None:
    chosen = resolve(cli={"cluster": None}, env={settings.ENV_CLUSTER: "  "}, ini={"cluster": "existing"})
    assert chosen.kind == "existing"


def test_marker_layer_wins_over_every_other() -> None:
    got = settings.resolve({"marker": "m", "cli": "c", "env": "e", "ini": "i"}, "d")
    assert got == settings.Resolved("m", "marker")
    assert settings.resolve({}, "d") == settings.Resolved("d", "default")


def test_unknown_cluster_names_the_option_it_came_from() -> None:
    with pytest.raises(settings.SettingsError,
                       match=r"^HARNESS_CLUSTER='kubeadm' is not one of embedded, kind, existing$"):
        resolve(env={settings.ENV_CLUSTER: "kubeadm"})
    with pytest.raises(settings.SettingsError, match=r"^--cluster='x' is not one of"):
        resolve(cli={"cluster": "x"})


def test_kind_cluster_defaults_to_the_config_files_cluster_and_kind_on_path() -> None:
    chosen = resolve(cli={"cluster": "kind"})
    assert (chosen.kind, chosen.kind_name, chosen.kind_path, chosen.keep_cluster) == ("kind", "ckpt-chaos", None, False)
    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "infra" / "kind" / "cluster.yaml").read_text())
    assert config["name"] == settings.DEFAULT_KIND_CLUSTER, "make cluster-up and --cluster kind must mean one cluster"


def test_kind_path_and_cluster_name_follow_the_precedence(tmp_path: Path) -> None:
    kind = tmp_path / "kind"
    kind.write_text("#!/bin/sh\n")
    kind.chmod(0o755)
    chosen = resolve(env={settings.ENV_CLUSTER: "kind", settings.ENV_KIND_PATH: str(kind),
                          settings.ENV_KIND_CLUSTER: "from-env"}, ini={"kind_name": "from-ini"})
    assert (chosen.kind_path, chosen.kind_name) == (kind, "from-env")
    assert (chosen.sources["kind_path"], chosen.sources["kind_name"]) == ("env", "env")
    assert resolve(cli={"cluster": "kind", "kind_name": "cli"}, ini={"kind_name": "ini"}).kind_name == "cli"
    assert settings.cluster_settings(cli={"cluster": "kind"}, env={}, ini={}, keep_cluster=True).keep_cluster


def test_a_kind_binary_that_cannot_run_is_one_line_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(settings.SettingsError, match=r"^--kind-path=.*nope: no such file; pass the path of the kind"):
        resolve(cli={"cluster": "kind", "kind_path": str(tmp_path / "nope")})
    plain = tmp_path / "kind"
    plain.write_text("")
    with pytest.raises(settings.SettingsError, match=r"^HARNESS_KIND_PATH=.*kind is not executable"):
        resolve(env={settings.ENV_CLUSTER: "kind", settings.ENV_KIND_PATH: str(plain)})


def test_a_cluster_name_kind_would_refuse_is_refused_first() -> None:
    with pytest.raises(settings.SettingsError, match=r"^--cluster-name='Ckpt_Chaos' is not a kind cluster name"):
        resolve(cli={"cluster": "kind", "kind_name": "Ckpt_Chaos"})


def test_options_of_one_cluster_kind_are_refused_with_another() -> None:
    with pytest.raises(settings.SettingsError, match=r"^--kind-path only applies to --cluster kind"):
        resolve(cli={"kind_path": "/usr/bin/kind"})
    with pytest.raises(settings.SettingsError,
                       match=r"^--harness-kubeconfig only applies to --cluster existing \(kind"):
        resolve(cli={"cluster": "kind", "kubeconfig": "/tmp/x"})
    assert resolve(cli={"cluster": "existing"}, env={settings.ENV_KIND_PATH: "/nope"}).kind_path is None


def test_kubeconfig_on_the_command_line_with_the_embedded_cluster_is_refused() -> None:
    with pytest.raises(settings.SettingsError, match="--harness-kubeconfig only applies to --cluster existing"):
        resolve(cli={"kubeconfig": "/tmp/x"})
    with pytest.raises(settings.SettingsError, match="--harness-context only applies"):
        resolve(cli={"context": "kind-ckpt"})


def test_environment_kubeconfig_is_ignored_by_the_embedded_cluster() -> None:
    chosen = resolve(env={settings.ENV_KUBECONFIG: "/nonexistent", settings.ENV_CONTEXT: "x"})
    assert (chosen.kind, chosen.kubeconfig, chosen.context) == ("embedded", None, None)


def test_missing_kubeconfig_file_is_one_line_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(settings.SettingsError, match=r"^--harness-kubeconfig=.*nope: no such file"):
        resolve(cli={"cluster": "existing", "kubeconfig": str(tmp_path / "nope")})


def test_settings_serialise_for_run_json(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("contexts: []\n")
    chosen = resolve(cli={"cluster": "existing", "kubeconfig": str(kubeconfig), "context": "kind-ckpt"})
    assert chosen.to_dict() == {"kind": "existing", "kubeconfig": str(kubeconfig), "context": "kind-ckpt",
                                "sources": {"cluster": "cli", "kubeconfig": "cli", "context": "cli"}}
