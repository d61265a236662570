"""Drift & audit: the reconciler's audit history, its queue, the replicas and
the hosts each watches, the drift policies in force (and a mapping's policy
groups), the API's access rules; start a (report-only) drift check."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from os_onboard_dashboard import api
from os_onboard_dashboard.views import ApiPage, act, job_url


class IndexView(ApiPage):
    template_name = "os_onboard_dashboard/drift.html"
    page_title = "Onboarding: Drift & audit"

    def load(self, **kwargs: Any) -> dict[str, Any]:
        vm = self.request.GET.get("vm", "")
        drift_jobs = [j for j in api.jobs(self.request, limit=50)["jobs"]
                      if j["kind"] == "drift"][:5]
        return {"vm": vm, "audit": api.audit(self.request, vm=vm),
                "queue": api.drift_queue(self.request), "workers": api.workers(self.request),
                "policies": api.policies(self.request), "drift_jobs": drift_jobs,
                "drift_policies": api.drift_policies(self.request)}


@require_POST
def check(request: HttpRequest) -> HttpResponse:
    return act(request, "Drift check started (report only: nothing is written to OpenStack).",
               lambda: api.start(request, "drift-checks", {}),
               reverse("horizon:admin:onboard_drift:index"), job_url)
