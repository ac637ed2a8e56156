"""One ApiClient per cluster, built from a kubeconfig file and context.

Every harness module that talks to a cluster gets its client here, so a wrong kubeconfig or
context is reported once, as one line that says how to fix it, instead of as a stack trace
from deep inside the kubernetes package. ``new_client_from_config`` is used (not
``load_kube_config``) so that two clusters in one process never share global state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeAlias

import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client import exceptions as k8s_exceptions
from urllib3 import exceptions as urllib3_exceptions

#: Re-exported so code outside harness.kube can type a client without importing kubernetes.
ApiClient: TypeAlias = k8s_client.ApiClient


class KubeconfigError(Exception):
    """The kubeconfig or context cannot give us a client; the message is one actionable line."""


def default_kubeconfig_path() -> Path:
    """What kubectl would read: the first file in $KUBECONFIG, else ~/.kube/config."""
    env = os.environ.get("KUBECONFIG", "")
    for part in env.split(os.pathsep):
        if part:
            return Path(part).expanduser()
    return Path("~/.kube/config").expanduser()


def context_names(kubeconfig: Path) -> list[str]:
    """The context names in a kubeconfig, checked for the shape kubectl expects."""
    try:
        text = kubeconfig.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise KubeconfigError(f"kubeconfig {kubeconfig} is not a text file; pass the path of a kubeconfig") from None
    except IsADirectoryError:
        raise KubeconfigError(f"kubeconfig {kubeconfig} is a directory; pass the path of a kubeconfig file") from None
    except FileNotFoundError:
        raise KubeconfigError(
            f"kubeconfig {kubeconfig} does not exist; pass --kubeconfig PATH or set KUBECONFIG"
        ) from None
    except OSError as exc:
        raise KubeconfigError(
            f"kubeconfig {kubeconfig} cannot be read ({exc.strerror}); pass --kubeconfig PATH"
        ) from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"kubeconfig {kubeconfig} is not valid YAML ({_first_line(exc)})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("contexts"), list):
        raise KubeconfigError(f"kubeconfig {kubeconfig} has no 'contexts' list; is it really a kubeconfig?")
    names: list[str] = []
    for entry in doc["contexts"]:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            names.append(entry["name"])
    return names


def new_api_client(kubeconfig: Path | None = None, context: str | None = None) -> k8s_client.ApiClient:
    """A client for one cluster; ``None`` means kubectl's defaults (file and current-context)."""
    path = kubeconfig if kubeconfig is not None else default_kubeconfig_path()
    names = context_names(path)
    if context is not None and context not in names:
        known = ", ".join(names) if names else "none"
        raise KubeconfigError(f"context {context!r} is not in {path} (contexts: {known}); pass --context NAME")
    try:
        api: k8s_client.ApiClient = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(path), context=context, persist_config=False
        )
    except k8s_config.ConfigException as exc:
        raise KubeconfigError(f"kubeconfig {path}: {_first_line(exc)}") from exc
    except (TypeError, KeyError, ValueError) as exc:
        # The loader indexes into the document without checking its shape first.
        raise KubeconfigError(f"kubeconfig {path} is malformed ({type(exc).__name__}: {exc})") from exc
    return api


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ClusterUnreachable(Exception):
    """The API server did not answer; the message names its address and the likely cause."""


def server_version(api_client: k8s_client.ApiClient, *, timeout: float = 10.0) -> str:
    """``v1.34.0``-style version of the API server: the cheapest proof that it answers and trusts us."""
    host = api_client.configuration.host
    try:
        info = k8s_client.VersionApi(api_client).get_code(_request_timeout=timeout)
    except k8s_exceptions.ApiException as exc:
        if exc.status in (401, 403):
            raise ClusterUnreachable(
                f"the API server at {host} refused our credentials ({exc.status} {exc.reason}); "
                "check the kubeconfig's user"
            ) from None
        raise ClusterUnreachable(f"the API server at {host} answered {exc.status} {exc.reason} to /version") from None
    except urllib3_exceptions.HTTPError as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ClusterUnreachable(
            f"cannot reach the API server at {host} ({_first_line(reason)}); is the cluster up?"
        ) from None
    return str(info.git_version)


def close(api_client: ApiClient) -> None:
    """Release the client's connection pool (and thread pool, if one was started)."""
    api_client.close()  # type: ignore[no-untyped-call]
