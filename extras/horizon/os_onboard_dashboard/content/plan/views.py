"""Plan: pick VMs (ticked in Inventory, typed, or a whole host) and a mapping
-> a plan job; a saved plan's per-VM diff (the steps that would be written)
and blocked reasons; apply it."""

from __future__ import annotations

import json
from typing import Any

import yaml
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from os_onboard_dashboard import api
from os_onboard_dashboard.views import ApiPage, act, job_url

OPS = {"+": "create", "~": "update", "=": "exists", "!": "blocked"}
PLANS_SHOWN = 15


class IndexView(ApiPage):
    template_name = "os_onboard_dashboard/plan.html"
    page_title = "Onboarding: Plan"

    def load(self, **kwargs: Any) -> dict[str, Any]:
        summary = api.snapshot(self.request, self.request.GET.get("snapshot") or "latest")
        listing = api.plans(self.request, limit=PLANS_SHOWN,
                            marker=self.request.GET.get("plans_from", ""))
        more = ""
        if listing.get("next") and listing["plans"]:
            more = str(listing["plans"][-1]["id"])
        return {"summary": summary, "vms": "\n".join(self.request.GET.getlist("vm")),
                "mapping": getattr(settings, "ONBOARD_DEFAULT_MAPPING", "").strip(),
                "plans": listing["plans"], "plans_more": more,
                "plans_paged": bool(self.request.GET.get("plans_from"))}


def _host_vms(request: HttpRequest, snapshot: str, host: str) -> list[str]:
    """Every VM of one host in the snapshot (all pages)."""
    found: list[str] = []
    marker = ""
    while True:
        page = api.vms(request, snapshot, host=host, limit=1000, marker=marker)
        found += [vm["uuid"] for vm in page["vms"]]
        if not page.get("next") or not page["vms"]:
            return found
        marker = page["vms"][-1]["uuid"]


@require_POST
def create(request: HttpRequest) -> HttpResponse:
    back = reverse("horizon:admin:onboard_plan:index")
    try:
        mapping = yaml.safe_load(request.POST.get("mapping", ""))
    except yaml.YAMLError as exc:
        messages.error(request, f"The mapping is not YAML or JSON: {exc}")
        return HttpResponseRedirect(back)
    if not isinstance(mapping, dict):
        messages.error(request, "The mapping must be a YAML or JSON mapping (an object).")
        return HttpResponseRedirect(back)
    snapshot = request.POST.get("snapshot", "")
    vms = [v.strip() for v in request.POST.get("vms", "").replace(",", "\n").splitlines()
           if v.strip()]
    body: dict[str, Any] = {"mapping": mapping}
    if snapshot.isdigit():
        body["snapshot"] = int(snapshot)

    def start() -> dict[str, Any]:
        if host := request.POST.get("host", ""):
            vms.extend(_host_vms(request, snapshot or "latest", host))
            if not vms:
                raise api.ApiError(404, f"host {host} has no VM in the snapshot")
        if vms:
            body["vms"] = vms
        return api.start(request, "plans", body)

    return act(request, "Plan job started.", start, back, job_url)


class DetailView(ApiPage):
    template_name = "os_onboard_dashboard/plan_detail.html"
    page_title = "Onboarding: Plan {{ plan_id }}"

    def load(self, **kwargs: Any) -> dict[str, Any]:
        saved = api.plan(self.request, kwargs["plan_id"])
        doc = saved["plan"]
        rows = [{**vm, "op_name": OPS.get(vm["op"], vm["op"]),
                 "steps": [{**s, "op_name": OPS.get(s["op"], s["op"]),
                            "params_json": json.dumps(s.get("params") or {}, sort_keys=True)}
                           for s in vm.get("steps", [])]}
                for vm in doc.get("vms", [])]
        shared = [{**s, "op_name": OPS.get(s["op"], s["op"])} for s in doc.get("shared", [])]
        return {"plan_id": saved["id"], "counts": saved.get("counts", {}), "vms": rows,
                "shared": shared, "doc": doc,
                "can_apply": any(vm["op"] in ("+", "~") for vm in doc.get("vms", []))}


@require_POST
def apply(request: HttpRequest, plan_id: str) -> HttpResponse:
    """An apply job of this plan; rerun after a failure it resumes (the apply is
    journaled step by step and skips what is done)."""
    parallel = request.POST.get("parallel", "4")
    return act(request, f"Apply of plan {plan_id} started.",
               lambda: api.start(request, "applies",
                                 {"plan": int(plan_id),
                                  "parallel": int(parallel) if parallel.isdigit() else 4}),
               reverse("horizon:admin:onboard_plan:detail", args=[plan_id]), job_url)
