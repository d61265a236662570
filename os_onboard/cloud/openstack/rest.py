"""The raw side of the OpenStack adapter: SDK errors translated, raw REST calls, JSON pages.

Every call into openstacksdk or keystoneauth goes through :func:`call` (SDK
calls) or :class:`Rest` and :func:`json_of` (raw REST calls through a
service's authenticated session adapter, where the SDK has no proxy call or
builds objects too slowly); both turn the SDK's errors into
:class:`~os_onboard.exceptions.CloudError` with the HTTP ``status_code``, or a
:class:`TemporaryCloudError` when the service is down or answers 5xx.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc

from os_onboard.cloud.base import TemporaryCloudError
from os_onboard.exceptions import CloudError

T = TypeVar("T")

#: Microversions of the raw calls (the oldest that has every field used).
CINDER_ATTACHMENTS = "3.44"   # attachment create + os-complete
CINDER_MANAGE = "3.16"        # manage by host (cluster optional)
PLACEMENT_ALLOCATIONS = "1.38"  # consumer_generation + consumer_type
COMPUTE_HYPERVISORS = "2.88"  # uuid ids, no uptime (no RPC per compute)
COMPUTE_SERVERS = "2.47"      # the flavor embedded (vcpus, ram) in each server


def _translate(what: str, exc: Exception) -> CloudError:
    status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    detail = getattr(exc, "details", None) or str(exc)
    message = f"{what}: {detail}".strip()
    if isinstance(exc, ksa_exc.ConnectFailure | ksa_exc.ConnectTimeout
                  | ksa_exc.ServiceUnavailable) or (status and int(status) >= 500):
        return TemporaryCloudError(message, status_code=int(status) if status else None)
    return CloudError(message, status_code=int(status) if status else None)


def call(what: str, fn: Callable[[], T]) -> T:
    """``fn()`` (an SDK call), its SDK or keystoneauth error translated."""
    try:
        return fn()
    except (sdk_exc.SDKException, ksa_exc.ClientException) as exc:
        raise _translate(what, exc) from exc


def json_of(what: str, response: Any) -> dict:
    """A raw response's JSON body; an HTTP error status raised as a CloudError."""
    if response.status_code >= 400:
        error = sdk_exc.HttpException(response=response, details=_message(response))
        raise _translate(what, error)
    return response.json() if response.content else {}


def _message(response: Any) -> str:
    """The service's own words: {"badRequest": {"message": …}} and friends."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return f"HTTP {response.status_code}: {value['message']}"
        if body.get("errors"):
            return f"HTTP {response.status_code}: {body['errors'][0].get('detail')}"
    return f"HTTP {response.status_code}: {str(body)[:200]}"


class Rest:
    """A service proxy's raw REST calls, with connection errors translated.

    Status codes are left to the caller (:func:`json_of`); a refused or timed
    out connection becomes a :class:`TemporaryCloudError` here.
    """

    def __init__(self, connection: Any, service: str) -> None:
        self._connection, self._service = connection, service

    def __getattr__(self, method: str) -> Callable[..., Any]:
        def request(url: str, *args: Any, **kwargs: Any) -> Any:
            # The proxy itself is made on first use (version discovery), so
            # "service down" may surface there too.
            return call(f"{self._service} {method.upper()} {url}", lambda: getattr(
                getattr(self._connection, self._service), method)(url, *args, **kwargs))
        return request


class Service:
    """What each service's part of :class:`OpenStackCloud` shares: the connection."""

    _conn: Any

    def _rest(self, service: str) -> Rest:
        return Rest(self._conn, service)


def pages(rest: Rest, key: str, path: str, params: dict, microversion: str | None,
          ) -> list[dict]:
    """Every item of a paged list: follow ``<key>_links`` (Nova, Cinder, Neutron).

    The next page is asked of the same endpoint with the query of the link
    (marker, limit): the link's host may be one only the service sees.
    """
    items: list[dict] = []
    query = dict(params)
    while True:
        kwargs = {"microversion": microversion} if microversion else {}
        page = json_of(f"list {key}", rest.get(path, params=query, **kwargs))
        found = page.get(key) or []
        items.extend(found)
        nxt = next((link["href"] for link in page.get(f"{key}_links") or []
                    if link.get("rel") == "next"), None)
        if not nxt or not found:
            return items
        query = {**params, **dict(parse_qsl(urlsplit(nxt).query))}


def port_json(port: dict) -> dict:
    """:func:`port_of` from Neutron's JSON."""
    return {"id": port["id"], "name": port.get("name"), "network_id": port.get("network_id"),
            "mac": (port.get("mac_address") or "").lower(),
            "fixed_ips": [dict(ip) for ip in port.get("fixed_ips") or []],
            "device_id": port.get("device_id") or "",
            "device_owner": port.get("device_owner") or "",
            "host": port.get("binding:host_id") or "", "vif_type": port.get("binding:vif_type"),
            "status": port.get("status"), "description": port.get("description") or "",
            "created_at": port.get("created_at")}


def port_of(port: Any) -> dict:
    """An SDK Port as :meth:`~os_onboard.cloud.base.Cloud.ports` shows it."""
    return {"id": port.id, "name": port.name, "network_id": port.network_id,
            "mac": (port.mac_address or "").lower(),
            "fixed_ips": [dict(ip) for ip in port.fixed_ips or []],
            "device_id": port.device_id or "", "device_owner": port.device_owner or "",
            "host": port.binding_host_id or "", "vif_type": port.binding_vif_type,
            "status": port.status, "description": port.description or "",
            "created_at": port.created_at}

