"""Before any load starts: is every endpoint there, ready, and the ordinal we think it is?

A typo'd URL or a stopped writer would otherwise show up only as a run full of ``info``
ops. Each endpoint gets ``GET /readyz`` until all answer 200 or the (short) deadline
passes; then one line lists what is wrong with which ordinal.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import tenacity

from harness.load import endpoints


def readyz(url: str, timeout: float = 1.0) -> tuple[int, dict[str, object]]:
    """``GET url/readyz``: (status, decoded body or {}). Raises OSError when nothing answers."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=timeout) as response:
            status, raw = int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = {}
    return status, body if isinstance(body, dict) else {}


def _problem(ordinal: int, url: str, timeout: float) -> str | None:
    try:
        status, body = readyz(url, timeout)
    except urllib.error.URLError as exc:
        return f"ordinal {ordinal} at {url} is unreachable ({exc.reason})"
    except OSError as exc:
        return f"ordinal {ordinal} at {url} is unreachable ({exc.strerror or exc})"
    if status != 200:
        reason = body.get("reason") or body.get("error") or body.get("state") or ""
        return f"ordinal {ordinal} at {url} is not ready (HTTP {status} {reason})".rstrip()
    served = body.get("ordinal")
    if isinstance(served, int) and served != ordinal:
        return f"{url} serves ordinal {served}, not {ordinal}: fix the ordinal=URL mapping"
    return None


def check_ready(eps: endpoints.Endpoints, deadline_s: float = 5.0, probe_timeout_s: float = 1.0) -> None:
    """Raise :class:`endpoints.EndpointsError` naming every endpoint still not ready at the deadline."""
    if not eps.urls:
        raise endpoints.EndpointsError("no endpoints to load: the StatefulSet has no running pods, or --urls is empty")
    pending = dict(eps.urls)
    problems: dict[int, str] = {}

    def probe_round() -> bool:
        for ordinal, url in list(pending.items()):
            problem = _problem(ordinal, url, probe_timeout_s)
            if problem is None:
                del pending[ordinal]
                problems.pop(ordinal, None)
            else:
                problems[ordinal] = problem
        return not pending

    def give_up(state: tenacity.RetryCallState) -> None:
        raise endpoints.EndpointsError("; ".join(problems[o] for o in sorted(problems)))

    tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda all_ready: not all_ready),
        wait=tenacity.wait_fixed(0.2),
        stop=tenacity.stop_before_delay(deadline_s),
        retry_error_callback=give_up,
    )(probe_round)
