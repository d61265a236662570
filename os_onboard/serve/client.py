"""A small client of the API, for the command line's ``--url`` mode.

The token is a Keystone token (``openstack token issue -f value -c id``),
given as ``$OS_TOKEN``; it is sent as ``X-Auth-Token`` and never printed. An
error answer of the API (its one JSON shape) becomes a :class:`ConfigError`
(4xx: the request was refused) or :class:`TemporaryCloudError`-like
:class:`StateStoreError` (5xx), with the API's message and request id.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from os_onboard.exceptions import ConfigError, StateStoreError


class Client:
    def __init__(self, url: str, token: str | None, timeout: float = 60.0) -> None:
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

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
