"""The os-onboard REST API, called with the logged-in user's token.

Only this module talks to the API; the views get plain dicts back or an
:class:`ApiError` carrying the API's one error shape (code and message), so a
403 naming the policy rule reaches the user as the API said it.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from django.conf import settings
from django.http import HttpRequest

LOG = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def base_url() -> str:
    return str(getattr(settings, "ONBOARD_API_URL", "http://127.0.0.1:8799")).rstrip("/")


def call(request: HttpRequest, method: str, path: str, params: dict[str, Any] | None = None,
         body: dict[str, Any] | None = None) -> Any:
    """One API request; the JSON body of the answer (None for 204).

    :raises ApiError: the API answered an error, or did not answer.
    """
    headers = {"Accept": "application/json", "X-Auth-Token": request.user.token.id}
    # Horizon's request id, when it has one, ties the API's log lines to this page.
    if rid := request.META.get("HTTP_X_OPENSTACK_REQUEST_ID"):
        headers["X-OpenStack-Request-Id"] = rid
    try:
        resp = requests.request(method, base_url() + path, params=params, json=body,
                                headers=headers,
                                timeout=getattr(settings, "ONBOARD_API_TIMEOUT", 30))
    except requests.RequestException as exc:
        LOG.warning("os-onboard API %s %s: %s", method, path, exc)
        raise ApiError(503, f"the os-onboard API at {base_url()} does not answer") from None
    if resp.status_code >= 400:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:300] or resp.reason
        raise ApiError(resp.status_code, message)
    return resp.json() if resp.content else None


# --- the calls the panels make ----------------------------------------------------------


def hosts(request: HttpRequest) -> list[dict[str, Any]]:
    return list(call(request, "GET", "/v1/hosts", {"limit": 1000})["hosts"])


def add_host(request: HttpRequest, uri: str, name: str, groups: list[str],
             credentials_ref: str) -> dict[str, Any]:
    body: dict[str, Any] = {"uri": uri, "groups": groups}
    if name:
        body["name"] = name
    if credentials_ref:
        body["credentials_ref"] = credentials_ref
    return dict(call(request, "POST", "/v1/hosts", body=body)["host"])


def remove_host(request: HttpRequest, host_id: str) -> None:
    call(request, "DELETE", f"/v1/hosts/{host_id}")


def check_host(request: HttpRequest, host_id: str) -> dict[str, Any]:
    """Is the host reachable now: one bounded read-only read (the API's timeout)."""
    return dict(call(request, "POST", f"/v1/hosts/{host_id}/check", body={})["check"])


def snapshots(request: HttpRequest, limit: int = 20) -> list[dict[str, Any]]:
    return list(call(request, "GET", "/v1/snapshots", {"limit": limit})["snapshots"])


def snapshot(request: HttpRequest, snapshot_id: str = "latest") -> dict[str, Any] | None:
    """A snapshot's summary; None when there is none yet."""
    try:
        return dict(call(request, "GET", f"/v1/snapshots/{snapshot_id}")["snapshot"])
    except ApiError as exc:
        if exc.code == 404:
            return None
        raise


def vms(request: HttpRequest, snapshot_id: str = "latest", **filters: Any) -> dict[str, Any]:
    params = {k: v for k, v in filters.items() if v}
    return dict(call(request, "GET", f"/v1/snapshots/{snapshot_id}/vms", params))


def conflicts(request: HttpRequest, snapshot_id: str, limit: int = 20
              ) -> list[dict[str, Any]]:
    return list(call(request, "GET", f"/v1/snapshots/{snapshot_id}/conflicts",
                     {"limit": limit})["conflicts"])


def problems(request: HttpRequest, snapshot_id: str, limit: int = 20) -> list[dict[str, Any]]:
    return list(call(request, "GET", f"/v1/snapshots/{snapshot_id}/problems",
                     {"limit": limit})["problems"])


def start(request: HttpRequest, what: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/<what> (discoveries, plans, applies, unmanages, drift-checks): the job."""
    return dict(call(request, "POST", f"/v1/{what}", body=body)["job"])


def jobs(request: HttpRequest, limit: int = 25, marker: str = "", state: str = ""
         ) -> dict[str, Any]:
    return dict(call(request, "GET", "/v1/jobs",
                     {"limit": limit, "marker": marker or None, "state": state or None}))


def job(request: HttpRequest, job_id: str) -> dict[str, Any]:
    return dict(call(request, "GET", f"/v1/jobs/{job_id}")["job"])


def cancel(request: HttpRequest, job_id: str) -> dict[str, Any]:
    return dict(call(request, "POST", f"/v1/jobs/{job_id}/cancel", body={})["job"])


def plans(request: HttpRequest, limit: int = 15, marker: str = "") -> dict[str, Any]:
    """Saved plans, newest first: {"plans": [...], "next": URL while there are more}."""
    return dict(call(request, "GET", "/v1/plans", {"limit": limit, "marker": marker or None}))


def plan(request: HttpRequest, plan_id: str) -> dict[str, Any]:
    return dict(call(request, "GET", f"/v1/plans/{plan_id}"))


def workers(request: HttpRequest) -> dict[str, Any]:
    return dict(call(request, "GET", "/v1/workers"))


def audit(request: HttpRequest, vm: str = "", limit: int = 50) -> list[dict[str, Any]]:
    return list(call(request, "GET", "/v1/audit", {"vm": vm or None, "limit": limit})["audit"])


def drift_queue(request: HttpRequest) -> list[dict[str, Any]]:
    return list(call(request, "GET", "/v1/drift-queue")["queue"])


def drift_policies(request: HttpRequest) -> dict[str, Any]:
    return dict(call(request, "GET", "/v1/drift-policies"))


def policies(request: HttpRequest) -> list[dict[str, Any]]:
    return list(call(request, "GET", "/v1/policies")["rules"])
