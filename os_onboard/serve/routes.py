"""The route table: routing, each route's policy rule, and the OpenAPI document.

A route is (method, path template, handler, rule, summary, request and
response schemas). :class:`Router` matches a request to one (404 for an
unknown path, 405 with ``Allow`` for a known path and another method), and
:func:`openapi` writes the OpenAPI 3.1 document from the same table, so the
document cannot drift from what is served.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import webob.exc

ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "title", "message"],
                             "properties": {"code": {"type": "integer"},
                                            "title": {"type": "string"},
                                            "message": {"type": "string"},
                                            "request_id": {"type": "string"}}}},
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[..., Any]
    rule: str | None  # None: public (no token needed)
    summary: str
    request: dict[str, Any] | None = None
    response: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    status: int = 200
    query: tuple[str, ...] = ()
    #: a POST that changes nothing (a host check): its rule defaults to reader
    reads: bool = False

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path) + "$")


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._compiled = [(r, r.pattern) for r in routes]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """:raises webob.exc.HTTPNotFound, webob.exc.HTTPMethodNotAllowed:"""
        allowed = []
        for route, pattern in self._compiled:
            found = pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict()
            allowed.append(route.method)
        if allowed:
            raise webob.exc.HTTPMethodNotAllowed(
                f"{method} is not allowed on {path}", headers={"Allow": ", ".join(allowed)})
        raise webob.exc.HTTPNotFound(f"no such resource: {path}")


def openapi(routes: list[Route], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {
            "summary": r.summary,
            "operationId": f"{r.method.lower()}_{r.handler.__name__}",
            "responses": {
                str(r.status): {"description": "OK" if r.status < 300 else "Accepted",
                                "content": {"application/json": {"schema": r.response}}},
                "default": {"description": "the one error shape",
                            "content": {"application/json": {"schema": ERROR_SCHEMA}}},
            },
            "parameters": [
                *({"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in re.findall(r"\{(\w+)\}", r.path)),
                *({"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                  for n in r.query),
            ],
        }
        if r.rule is not None:
            op["security"] = [{"keystone": []}]
            op["x-policy-rule"] = r.rule
        else:
            op["security"] = []
        if r.request is not None:
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": r.request}}}
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "os-onboard", "version": version,
                 "description": "Bring running VMs under OpenStack management."},
        "paths": paths,
        "components": {
            "securitySchemes": {"keystone": {"type": "apiKey", "in": "header",
                                             "name": "X-Auth-Token"}},
            "schemas": {"Error": ERROR_SCHEMA},
        },
    }
