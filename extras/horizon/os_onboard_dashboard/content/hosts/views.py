"""Hosts: the registered hosts, their last discovery and reachability; register,
remove, discover."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from os_onboard_dashboard import api
from os_onboard_dashboard.views import ApiPage, act, job_url


class IndexView(ApiPage):
    template_name = "os_onboard_dashboard/hosts.html"
    page_title = "Onboarding: Hosts"

    def load(self, **kwargs: Any) -> dict[str, Any]:
        hosts = api.hosts(self.request)  # each with its own last discovery
        held: dict[str, str] = {}
        try:  # /v1/workers: {"members": [{"member": ..., "held": [uri, ...]}, ...]}
            for member in api.workers(self.request).get("members", []):
                held.update({uri: member.get("member", "") for uri in member.get("held", [])})
        except api.ApiError:  # who holds a host is extra: the list stands without it
            pass
        checks = self.request.session.get(CHECKS, {})
        rows = [{**h, "discovered": h.get("last_discovery"), "held_by": held.get(h["uri"], ""),
                 "check": checks.get(h["uri"])} for h in hosts]
        return {"hosts": rows}


#: the session key of the last check of each host (URI -> the API's check):
#: a check is saved nowhere by the API, so the table shows this user's last one
CHECKS = "os_onboard_host_checks"
CHECKS_KEPT = 20


def _back() -> str:
    return reverse("horizon:admin:onboard_hosts:index")


@require_POST
def register(request: HttpRequest) -> HttpResponse:
    uri = request.POST.get("uri", "").strip()
    name = request.POST.get("name", "").strip()
    groups = [g.strip() for g in request.POST.get("groups", "").split(",") if g.strip()]
    creds = request.POST.get("credentials_ref", "").strip()
    return act(request, f"Registered {name or uri}.",
               lambda: api.add_host(request, uri, name, groups, creds), _back())


@require_POST
def table_action(request: HttpRequest) -> HttpResponse:
    """The hosts table's form: a row's Remove (Horizon's confirmation posts the
    form with the button's name and value, as for its own tables), else a
    discovery job of the hosts ticked (all registered hosts when none is)."""
    if host_id := request.POST.get("check"):
        return _check(request, host_id)
    if host_id := request.POST.get("remove"):
        return act(request, "Host removed from the registry (its VMs are untouched).",
                   lambda: api.remove_host(request, host_id), _back())
    hosts = request.POST.getlist("host")
    return act(request, "Discovery started.",
               lambda: api.start(request, "discoveries", {"hosts": hosts} if hosts else {}),
               _back(), job_url)


def _check(request: HttpRequest, host_id: str) -> HttpResponse:
    """One host's reachability now (POST /v1/hosts/{id}/check: a read-only read
    within a timeout): a message, and the result kept for the table."""
    try:
        check = api.check_host(request, host_id)
    except api.ApiError as exc:
        messages.error(request, f"os-onboard API: {exc.message} ({exc.code})")
        return HttpResponseRedirect(_back())
    checks = dict(request.session.get(CHECKS, {}))
    checks.pop(check["uri"], None)
    # small and few: a Horizon may keep its session in a cookie (4 KB with the token)
    checks[check["uri"]] = {"ok": check["ok"], "latency_ms": check["latency_ms"],
                            "checked_at": check["checked_at"],
                            "error": (check["error"] or "")[:160]}
    request.session[CHECKS] = dict(list(checks.items())[-CHECKS_KEPT:])
    if check["ok"]:
        messages.success(request, f"{check['host']} is reachable: read in "
                                  f"{check['latency_ms']} ms, {check['vms']} VM(s).")
    else:
        messages.error(request, f"{check['host']} is not reachable "
                                f"({check['latency_ms']} ms): {check['error']}")
    return HttpResponseRedirect(_back())
