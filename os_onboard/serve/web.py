"""The one JSON error shape, request ids, and the small helpers handlers use.

Every error the API returns, whatever raised it (a route not found, the
policy, bad input, the state store, a bug), is::

    {"error": {"code": 404, "title": "Not Found", "message": "...",
               "request_id": "req-..."}}

Every response carries ``X-OpenStack-Request-Id`` (a client's own
``X-OpenStack-Request-Id``/``X-Request-Id`` of the ``req-<uuid>`` form is
kept, else one is made), and every log line of the request names it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

import webob
import webob.exc

from os_onboard.exceptions import ConfigError, OnboardError

LOG = logging.getLogger(__name__)
HEADER = "X-OpenStack-Request-Id"
_ID = re.compile(r"^req-[0-9a-f-]{36}$")
_local = threading.local()


def current_request_id() -> str:
    return getattr(_local, "request_id", "-")


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


def json_response(status: int, body: Any, headers: dict[str, str] | None = None
                  ) -> webob.Response:
    resp = webob.Response(status=status, content_type="application/json", charset="utf-8")
    resp.body = json.dumps(body, default=str).encode()
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def error_response(code: int, message: str, headers: dict[str, str] | None = None
                   ) -> webob.Response:
    title = webob.exc.status_map[code].title if code in webob.exc.status_map else "Error"
    return json_response(code, {"error": {"code": code, "title": title, "message": message,
                                          "request_id": current_request_id()}}, headers)


def error_for(exc: BaseException) -> webob.Response:
    """The error response for an exception a handler raised."""
    if isinstance(exc, webob.exc.HTTPException):
        headers = {k: v for k, v in exc.headers.items()
                   if k.lower() in ("allow", "www-authenticate", "retry-after")}
        return error_response(exc.code, exc.detail or exc.title, headers)
    if isinstance(exc, ConfigError):
        return error_response(400, str(exc))
    if isinstance(exc, OnboardError):
        code = 503 if exc.temporary or type(exc).__name__ == "StateStoreError" else 500
        LOG.warning("%s: %s", type(exc).__name__, exc)
        return error_response(code, f"{type(exc).__name__}: the service could not do this "
                                    "now" if code == 503 else str(exc))
    LOG.exception("unexpected error")
    return error_response(500, "internal error (logged with this request id)")


class RequestIds:
    """WSGI middleware: a request id per request, in the response and the logs;
    any exception below becomes the JSON error shape."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        given = environ.get("HTTP_X_OPENSTACK_REQUEST_ID") or environ.get("HTTP_X_REQUEST_ID")
        request_id = given if given and _ID.match(given) else f"req-{uuid.uuid4()}"
        environ["openstack.request_id"] = request_id
        _local.request_id = request_id

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != HEADER.lower()]
            headers.append((HEADER, request_id))
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start)
        except Exception as exc:
            return error_for(exc)(environ, start)
        finally:
            LOG.info("%s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            _local.request_id = "-"


def body_json(request: webob.Request) -> dict[str, Any]:
    """The request's JSON object body ({} when empty).

    :raises webob.exc.HTTPBadRequest: not a JSON object.
    """
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except ValueError:
        raise webob.exc.HTTPBadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise webob.exc.HTTPBadRequest("the body must be a JSON object")
    return body


def page_args(request: webob.Request, max_limit: int) -> tuple[int, str | None]:
    """``limit`` (1..max_limit, default 50) and ``marker`` query parameters."""
    try:
        limit = int(request.GET.get("limit", 50))
    except ValueError:
        raise webob.exc.HTTPBadRequest("limit must be an integer") from None
    if not 1 <= limit <= max_limit:
        raise webob.exc.HTTPBadRequest(f"limit must be between 1 and {max_limit}")
    return limit, request.GET.get("marker") or None


def next_link(request: webob.Request, items: list[Any], limit: int, marker: str
              ) -> dict[str, str]:
    """``{"next": URL}`` when the page is full (the client asks again from its last item)."""
    if len(items) < limit:
        return {}
    params = {**request.GET, "limit": str(limit), "marker": marker}
    return {"next": f"{request.path_url}?{urlencode(params)}"}
