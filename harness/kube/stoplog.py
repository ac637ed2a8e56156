"""What a writer stopped by a signal said it owed: the ``stopping`` event in its container's log.

On SIGTERM the writer logs, before it drains, the request ids of the requests it had received
and not yet answered (``in_flight``) and how many more had arrived without an id yet. That is
the only exact account of which writes were in flight *at the writer*: the client knows when it
sent a request, not when (or whether) the writer read it. The kubelet keeps the log of the
container that ran before the restart (``kubectl logs --previous``), so once the writer is back
the stopped one's account can be read.
"""

from __future__ import annotations

import json
from typing import TypedDict

from kubernetes import client as k8s_client
from kubernetes.client import exceptions as k8s_exceptions
from urllib3 import exceptions as urllib3_exceptions

from harness.kube import apply as kube_apply


class StopAccount(TypedDict):
    #: the writer's own wall clock when it began to stop
    ts: float
    in_flight: list[str]
    in_flight_without_id: int


def parse(log: str) -> StopAccount | None:
    """The last ``stopping`` event of a writer's log (None when it never began to stop)."""
    found: StopAccount | None = None
    for line in log.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if not isinstance(doc, dict) or doc.get("event") != "stopping":
            continue
        ids, without, ts = doc.get("in_flight"), doc.get("in_flight_without_id"), doc.get("ts")
        if not (isinstance(ids, list) and all(isinstance(i, str) for i in ids) and isinstance(without, int)
                and isinstance(ts, int | float)):
            continue  # a writer from before the account existed: no account, not a guess
        found = {"ts": float(ts), "in_flight": list(ids), "in_flight_without_id": without}
    return found


def previous_account(api: k8s_client.ApiClient, namespace: str, pod: str, container: str) -> StopAccount | str:
    """The account of ``pod``'s previous ``container`` (the one the runtime stopped), or why there is none."""
    try:
        log = k8s_client.CoreV1Api(api).read_namespaced_pod_log(pod, namespace, container=container,
                                                                 previous=True)
    except k8s_exceptions.ApiException as exc:
        return f"cannot read the previous log of {namespace}/{pod}/{container} ({kube_apply.describe_api_error(exc)})"
    except (urllib3_exceptions.HTTPError, OSError) as exc:
        return f"cannot read the previous log of {namespace}/{pod}/{container}: the API server did not answer ({exc})"
    account = parse(str(log))
    if account is None:
        return f"the previous {container} of {namespace}/{pod} logged no stopping account (killed before it drained?)"
    return account
