"""Hosts: the registered hosts, their last discovery and reachability; register,
remove, discover."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from os_onboard_dashboard import api
from os_onboard_dashboard.views import ApiPage, act, job_url


class IndexView(ApiPage):
    template_name = "os_onboard_dashboard/hosts.html"
    page_title = "Onboarding: Hosts"

    def load(self, **kwargs: Any) -> dict[str, Any]:
        hosts = api.hosts(self.request)
        latest = api.snapshot(self.request) or {}
        seen = {h["uri"]: h for h in latest.get("hosts", [])}
        held: dict[str, str] = {}
        try:  # /v1/workers: {"members": [{"member": ..., "held": [uri, ...]}, ...]}
            for member in api.workers(self.request).get("members", []):
                held.update({uri: member.get("member", "") for uri in member.get("held", [])})
        except api.ApiError:  # who holds a host is extra: the list stands without it
            pass
        rows = [{**h, "discovered": seen.get(h["uri"]), "held_by": held.get(h["uri"], "")}
                for h in hosts]
        return {"hosts": rows, "snapshot": latest}


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
    if host_id := request.POST.get("remove"):
        return act(request, "Host removed from the registry (its VMs are untouched).",
                   lambda: api.remove_host(request, host_id), _back())
    hosts = request.POST.getlist("host")
    return act(request, "Discovery started.",
               lambda: api.start(request, "discoveries", {"hosts": hosts} if hosts else {}),
               _back(), job_url)
