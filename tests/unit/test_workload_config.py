"""Who the pod is (downward API) and the writer's settings, flag > env > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.workload import config


def test_pod_index_label_wins_over_the_name_suffix() -> None:
    pod = config.pod_identity_from_env({"POD_NAME": "ckpt-2", "POD_INDEX": "2", "POD_NAMESPACE": "ns"})
    assert pod == config.PodIdentity("ckpt-2", "ns", "ckpt", 2, "data-ckpt-2")
    assert config.pod_identity_from_env({"POD_NAME": "my-set-11"}).ordinal == 11
    assert config.pod_identity_from_env({"POD_NAME": "my-set-11"}).statefulset == "my-set"


def test_claim_name_follows_the_claim_template() -> None:
    pod = config.pod_identity_from_env({"POD_NAME": "w-0", "CLAIM_TEMPLATE": "ckpt", "STATEFULSET_NAME": "w"})
    assert (pod.claim, pod.statefulset, pod.namespace) == ("ckpt-w-0", "w", "default")


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({}, "POD_NAME is not set"),
        ({"POD_NAME": "noordinal"}, "no -<ordinal> suffix"),
        ({"POD_NAME": "x-1", "POD_INDEX": "one"}, "not a non-negative integer"),
    ],
)
def test_missing_or_malformed_pod_identity_is_one_clear_error(env: dict[str, str], complaint: str) -> None:
    with pytest.raises(config.ConfigError, match=complaint):
        config.pod_identity_from_env(env)


def test_flags_override_env_which_overrides_defaults(tmp_path: Path) -> None:
    env = {"KEEP_LAST": "5", "LISTEN_PORT": "9000", "MAX_CHECKPOINT_BYTES": "1000", "LISTEN_HOST": "::"}
    cfg = config.writer_config(env, tmp_path)
    assert (cfg.keep_last, cfg.port, cfg.max_bytes, cfg.host) == (5, 9000, 1000, "::")
    cfg = config.writer_config(env, tmp_path, keep_last=0, port=0, max_bytes=7, host="127.0.0.1")
    assert (cfg.keep_last, cfg.port, cfg.max_bytes, cfg.host) == (0, 0, 7, "127.0.0.1")
    cfg = config.writer_config({}, tmp_path)
    assert (cfg.keep_last, cfg.port, cfg.max_bytes, cfg.host) == (3, 8080, 4 * 1024**3, "0.0.0.0")
    assert cfg.unsafe_skip == frozenset()


@pytest.mark.parametrize(
    ("kwargs", "env", "complaint"),
    [
        ({"keep_last": -1}, {}, "keep-last"),
        ({}, {"LISTEN_PORT": "http"}, "not an integer"),
        ({"port": 70000}, {}, "0..65535"),
        ({"unsafe_skip": "parent-fsync,teleport"}, {}, "unknown protocol step 'teleport'"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, kwargs: dict[str, object], env: dict[str, str],
                                  complaint: str) -> None:
    with pytest.raises(config.ConfigError, match=complaint):
        config.writer_config(env, tmp_path, **kwargs)  # type: ignore[arg-type]


def test_unsafe_skip_is_off_by_default_and_parsed_from_flag_or_env(tmp_path: Path) -> None:
    assert config.writer_config({}, tmp_path).unsafe_skip == frozenset()
    env = {config.UNSAFE_SKIP_ENV: "parent-fsync, file-fsync"}
    assert config.writer_config(env, tmp_path).unsafe_skip == {"parent-fsync", "file-fsync"}
    assert config.writer_config(env, tmp_path, unsafe_skip="").unsafe_skip == frozenset()


def test_writer_adds_loopback_only_for_a_specific_non_loopback_pod_ip() -> None:
    from harness.workload import serve

    assert serve._also_listen_on("10.244.1.7") == ["127.0.0.1"]  # real pod IP: port-forward needs loopback
    assert serve._also_listen_on("fd00::7") == ["::1"]
    assert serve._also_listen_on("127.10.0.3") == []  # embedded cluster: pod IPs are loopback already
    assert serve._also_listen_on("0.0.0.0") == []
    assert serve._also_listen_on("localhost") == []


@pytest.mark.parametrize(
    "env",
    [
        {"POD_NAME": "x-1", "POD_INDEX": "\u00b2"},  # isdigit() is true, int() raises ValueError
        {"POD_NAME": "x-1", "POD_INDEX": "1" * 4301},  # past the int-string conversion limit
        {"POD_NAME": "x-" + "1" * 4301},
    ],
    ids=["superscript-index", "huge-index", "huge-name-suffix"],
)
def test_non_ascii_or_huge_ordinals_are_a_config_error_not_a_traceback(env: dict[str, str]) -> None:
    with pytest.raises(config.ConfigError):
        config.pod_identity_from_env(env)


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"WRITER_CONNECTION_TIMEOUT": "0"}, "must be > 0"),
        ({"WRITER_CONNECTION_TIMEOUT": "soon"}, "not a number"),
        ({"WRITER_CONNECTION_TIMEOUT": "nan"}, "not a number"),
        ({"WRITER_MAX_CONNECTIONS": "0"}, ">= 1"),
    ],
)
def test_connection_limits_are_checked(tmp_path: Path, env: dict[str, str], complaint: str) -> None:
    with pytest.raises(config.ConfigError, match=complaint):
        config.writer_config(env, tmp_path)


def test_connection_limits_default_and_come_from_env_or_flags(tmp_path: Path) -> None:
    cfg = config.writer_config({}, tmp_path)
    assert (cfg.connection_timeout, cfg.max_connections) == (
        config.DEFAULT_CONNECTION_TIMEOUT, config.DEFAULT_MAX_CONNECTIONS)
    assert 30 <= config.DEFAULT_CONNECTION_TIMEOUT <= 60
    env = {"WRITER_CONNECTION_TIMEOUT": "2.5", "WRITER_MAX_CONNECTIONS": "7"}
    assert (config.writer_config(env, tmp_path).connection_timeout,
            config.writer_config(env, tmp_path).max_connections) == (2.5, 7)
    flagged = config.writer_config(env, tmp_path, connection_timeout=4.0, max_connections=9)
    assert (flagged.connection_timeout, flagged.max_connections) == (4.0, 9)
