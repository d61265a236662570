"""The WSGI pipeline: request ids -> routing -> (Keystone token, policy) -> handler.

Public routes (the version document, ``/v1/openapi.json``) need no token.
Every other request goes through ``keystonemiddleware.auth_token`` with
``delay_auth_decision`` on, so that this module answers 401 itself, in the
one error shape and with the request id; the policy (:mod:`.policy`) then
answers 403 when the token's roles do not allow the route's rule.

The middleware strips any identity headers a client sends (``X-Roles``...)
before it validates the token, so roles come from Keystone only. The
``noauth`` strategy trusts those headers instead: unit tests on loopback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import webob

from os_onboard.serve.api import ROUTES, Service
from os_onboard.serve.policy import Policy
from os_onboard.serve.routes import Route, Router
from os_onboard.serve.web import RequestIds, error_response, json_response

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def keystone_auth(conf: Any) -> Callable[[WsgiApp], WsgiApp]:
    """keystonemiddleware's auth_token, configured from ``conf`` ([keystone_authtoken])."""
    from keystonemiddleware import auth_token

    def wrap(app: WsgiApp) -> WsgiApp:
        return auth_token.AuthProtocol(app, {"oslo_config_config": conf,
                                             "delay_auth_decision": "true"})
    return wrap


def no_auth(app: WsgiApp) -> WsgiApp:
    """Trust the client's X-Roles (tests only): a request without it is anonymous."""

    def call(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ["HTTP_X_IDENTITY_STATUS"] = ("Confirmed" if environ.get("HTTP_X_ROLES")
                                             else "Invalid")
        return app(environ, start_response)
    return call


class Api:
    def __init__(self, svc: Service, policy: Policy, auth: Callable[[WsgiApp], WsgiApp],
                 www_authenticate: str = "Keystone") -> None:
        self.svc = svc
        self.policy = policy
        self.router = Router(ROUTES)
        self.www_authenticate = www_authenticate
        self.secured = auth(self._secured)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        req = webob.Request(environ)
        route, params = self.router.match(req.method, req.path_info.rstrip("/") or "/")
        if route.rule is None:
            return self._dispatch(route, params, req)(environ, start_response)
        environ["os_onboard.route"] = (route, params)
        return self.secured(environ, start_response)

    def _secured(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        route, params = environ["os_onboard.route"]
        if environ.get("HTTP_X_IDENTITY_STATUS") != "Confirmed":
            # keystonemiddleware adds its own WWW-Authenticate to a 401 passing it
            headers = {"WWW-Authenticate": self.www_authenticate} if self.www_authenticate else {}
            resp = error_response(401, "a valid Keystone token is required (X-Auth-Token)",
                                  headers)
            return resp(environ, start_response)
        creds = {
            "roles": [r.strip() for r in environ.get("HTTP_X_ROLES", "").split(",")
                      if r.strip()],
            "user_id": environ.get("HTTP_X_USER_ID"),
            "project_id": environ.get("HTTP_X_PROJECT_ID"),
        }
        if not self.policy.allowed(route.rule, creds):
            resp = error_response(403, f"policy does not allow {route.rule} "
                                       f"(roles: {', '.join(creds['roles']) or 'none'})")
            return resp(environ, start_response)
        return self._dispatch(route, params, webob.Request(environ))(environ, start_response)

    def _dispatch(self, route: Route, params: dict[str, str], req: webob.Request) -> Any:
        status, body = route.handler(self.svc, req, **params)
        if status == 204:
            return webob.Response(status=204)
        headers = {}
        if status in (201, 202):
            for link in (body or {}).get("links", []):
                headers["Location"] = link["href"]
            if status == 201 and "host" in body:
                headers["Location"] = f"{req.host_url}/v1/hosts/{body['host']['id']}"
        return json_response(status, body, headers)


def make_app(svc: Service, conf: Any) -> WsgiApp:
    """The whole WSGI app for ``conf`` (its [api] auth_strategy)."""
    policy = Policy(conf, ROUTES)
    if conf.api.auth_strategy == "keystone":
        return RequestIds(Api(svc, policy, keystone_auth(conf), www_authenticate=""))
    return RequestIds(Api(svc, policy, no_auth))

