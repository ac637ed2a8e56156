"""Ask the API server what our credentials may do: one SelfSubjectAccessReview per question.

An answer is ``True`` (allowed), ``False`` (denied, with the authorizer's reason) or ``None``:
the server cannot say — it does not serve ``authorization.k8s.io/v1`` (kubesim before its RBAC), or
it refused the review itself. ``None`` is never read as a
denial: a scenario is only skipped for a verb the cluster really denies.
"""

from __future__ import annotations

import dataclasses

from kubernetes import client as k8s_client
from kubernetes.client import exceptions as k8s_exceptions
from urllib3 import exceptions as urllib3_exceptions

from harness.kube import apply as kube_apply


class AccessError(Exception):
    """The API server could not be asked at all; one line naming it."""


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    allowed: bool | None
    reason: str


def self_access(
    api: k8s_client.ApiClient,
    *,
    verb: str,
    resource: str,
    group: str = "",
    subresource: str = "",
    namespace: str | None = None,
) -> Answer:
    """May we ``verb`` ``resource`` (in ``namespace``; None = cluster-scoped or every namespace)?"""
    attributes = k8s_client.V1ResourceAttributes(verb=verb, resource=resource, group=group,
                                                 subresource=subresource or None, namespace=namespace)
    review = k8s_client.V1SelfSubjectAccessReview(
        spec=k8s_client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes))
    try:
        done = k8s_client.AuthorizationV1Api(api).create_self_subject_access_review(review)
    except k8s_exceptions.ApiException as exc:
        if exc.status == 404:
            return Answer(None, "the API server does not serve authorization.k8s.io/v1 (no RBAC to ask)")
        if exc.status == 403:
            why = kube_apply.describe_api_error(exc)
            return Answer(None, f"the API server refused the access review itself ({why})")
        raise AccessError(f"access review of {verb} {resource} failed ({kube_apply.describe_api_error(exc)})") from None
    except urllib3_exceptions.HTTPError as exc:
        raise AccessError(f"cannot reach the API server to review access ({exc})") from None
    status = done.status
    if status is None:
        return Answer(None, "the access review came back without a status")
    reason = status.reason or status.evaluation_error or ""
    return Answer(bool(status.allowed) and not bool(status.denied), reason)
