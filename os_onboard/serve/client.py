"""A small client of the API, for the command line's ``--url`` mode.

The token is a Keystone token: ``$OS_TOKEN`` when set, else one issued for the
user's own credentials - the clouds.yaml cloud of ``--os-cloud``/``$OS_CLOUD``,
or the ``OS_*`` variables (``OS_AUTH_URL``, ``OS_USERNAME``...), as the
``openstack`` command reads them. It is sent as ``X-Auth-Token`` and never
printed. An error answer of the API (its one JSON shape) becomes a
:class:`ConfigError` (4xx: the request was refused) or a
:class:`StateStoreError` (5xx, or the server unreachable), with the API's
message and request id.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from os_onboard.exceptions import CloudError, ConfigError, StateStoreError

FINAL = ("succeeded", "failed", "cancelled")


def keystone_token(cloud: str | None = None) -> str:
    """``$OS_TOKEN``, else a token for the credentials of ``cloud`` (clouds.yaml;
    None: ``$OS_CLOUD`` or the ``OS_*`` variables).

    :raises ConfigError: no credentials, or Keystone refused them or cannot be
        reached (the message names the cloud, never a password or token).
    """
    if os.environ.get("OS_TOKEN"):
        return os.environ["OS_TOKEN"]
    # Through the OpenStack adapter, the one place that reads clouds.yaml and
    # talks to keystoneauth (tests/unit/test_layers.py): its connection's session.
    # A public token call of the adapter would be the cleaner seam (cloud/ has none).
    from os_onboard.cloud.openstack import OpenStackCloud
    from os_onboard.cloud.openstack.rest import call

    name = cloud or os.environ.get("OS_CLOUD") or None
    try:
        connection = OpenStackCloud(name)._conn
        return str(call("get a Keystone token", lambda: connection.session.get_token()))
    except CloudError as exc:
        raise ConfigError(f"cannot get a Keystone token for cloud {name or '(OS_* env)'} "
                          f"(set OS_TOKEN, --os-cloud or OS_CLOUD): {exc}") from None


class Client:
    def __init__(self, url: str, token: str | Callable[[], str] | None,
                 timeout: float = 60.0) -> None:
        """``token``: a token, or a function returning one (called on first use)."""
        self.url, self.timeout = url.rstrip("/"), timeout
        self._token = token

    @property
    def token(self) -> str | None:
        if callable(self._token):
            self._token = self._token()
        return self._token

    def call(self, method: str, path: str, body: Any = None,
             query: dict[str, str] | None = None) -> Any:
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["X-Auth-Token"] = self.token
        req = urllib.request.Request(url, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None
                                     else None)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())["error"]
                message = f"{error['message']} ({error['code']} {error['title']}, " \
                          f"{error.get('request_id', '')})"
            except (ValueError, KeyError, TypeError):
                message = f"{exc.code} {exc.reason}"
            raise (ConfigError if exc.code < 500 else StateStoreError)(
                f"{self.url}: {message}") from None
        except OSError as exc:
            raise StateStoreError(f"{self.url}: {exc}") from None
        return json.loads(raw) if raw else None

    def pages(self, path: str, key: str, query: dict[str, str] | None = None,
              marker: Callable[[dict[str, Any]], str] = lambda item: str(item["id"]),
              ) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list (``limit``/``marker``, ``next`` while full)."""
        query = {"limit": "1000", **(query or {})}
        while True:
            page = self.call("GET", path, query=query)
            yield from page[key]
            if "next" not in page or not page[key]:
                return
            query["marker"] = marker(page[key][-1])

    def start(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a job (202); the job as queued."""
        return self.call("POST", path, body)["job"]

    def wait(self, job_id: str, on_progress: Callable[[dict[str, Any]], None] | None = None,
             poll: float = 0.5, timeout: float | None = None) -> dict[str, Any]:
        """Poll the job until it ends; ``on_progress`` sees each new state of it.

        :raises StateStoreError: still running after ``timeout`` seconds.
        """
        started, seen = time.monotonic(), None
        while True:
            job = self.call("GET", f"/v1/jobs/{urllib.parse.quote(job_id)}")["job"]
            shown = (job["state"], json.dumps(job["progress"], sort_keys=True))
            if on_progress is not None and shown != seen:
                on_progress(job)
            seen = shown
            if job["state"] in FINAL:
                return job
            if timeout is not None and time.monotonic() - started > timeout:
                raise StateStoreError(f"job {job_id} still {job['state']} after "
                                      f"{timeout:.0f} s")
            time.sleep(poll)

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.call("POST", f"/v1/jobs/{urllib.parse.quote(job_id)}/cancel")["job"]
