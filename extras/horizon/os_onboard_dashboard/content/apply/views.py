"""Apply & jobs: every job (discovery, plan, apply, unmanage, drift) with its
live per-VM progress; cancel, resume an apply, release (unmanage) VMs."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from os_onboard_dashboard import api
from os_onboard_dashboard.views import ApiPage, act, job_url

STATES = ("queued", "running", "succeeded", "failed", "cancelled")


class IndexView(ApiPage):
    template_name = "os_onboard_dashboard/jobs.html"
    page_title = "Onboarding: Apply & jobs"

    def load(self, **kwargs: Any) -> dict[str, Any]:
        q = self.request.GET
        state = q.get("state", "") if q.get("state", "") in STATES else ""
        page = api.jobs(self.request, limit=25, marker=q.get("marker", ""), state=state)
        marker = (parse_qs(urlsplit(page["next"]).query).get("marker", [""])[0]
                  if page.get("next") else "")
        return {"jobs": page["jobs"], "state": state, "states": STATES,
                "next_query": urlencode({"state": state, "marker": marker}) if marker else "",
                "vms": "\n".join(q.getlist("vm"))}


def _progress_rows(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Per VM (or, for a discovery, per host) progress: "3/7 steps" or a status,
    with a percentage."""
    progress = job.get("progress") or {}
    items = progress.get("vms") or progress.get("hosts") or {}
    rows = []
    for name, value in sorted(items.items() if isinstance(items, dict) else []):
        pct = None
        if isinstance(value, str) and "/" in value:
            done, _, rest = value.partition("/")
            total = rest.split()[0]
            if done.isdigit() and total.isdigit() and int(total):
                pct = int(100 * int(done) / int(total))
        rows.append({"name": name, "value": value, "pct": pct})
    return rows


class JobView(ApiPage):
    template_name = "os_onboard_dashboard/job.html"
    page_title = "Onboarding: job"

    def load(self, **kwargs: Any) -> dict[str, Any]:
        job = api.job(self.request, kwargs["job_id"])
        progress = job.get("progress") or {}
        done, total = progress.get("done"), progress.get("total")
        pct = int(100 * done / total) if isinstance(done, int) and total else None
        result = job.get("result") or {}
        return {"job": job, "live": job["state"] in ("queued", "running"),
                "per_vm": _progress_rows(job), "pct": pct,
                "other_progress": {k: v for k, v in progress.items()
                                   if k not in ("vms", "hosts") or not isinstance(v, dict)},
                "result_vms": [{**v, "note": v.get("detail") or v.get("error") or ""}
                               for v in result.get("vms") or [] if isinstance(v, dict)]
                if isinstance(result.get("vms"), list) else [],
                "result_other": {k: v for k, v in result.items() if k != "vms"},
                "adopted": [v["uuid"] for v in result.get("vms", [])
                            if isinstance(v, dict) and v.get("status") == "adopted"]
                if isinstance(result.get("vms"), list) else []}


@require_POST
def cancel(request: HttpRequest, job_id: str) -> HttpResponse:
    return act(request, "Cancel requested.", lambda: api.cancel(request, job_id),
               reverse("horizon:admin:onboard_apply:job", args=[job_id]))


@require_POST
def resume(request: HttpRequest, job_id: str) -> HttpResponse:
    """Apply the failed job's plan again: the journal makes it a resume."""
    def start() -> dict[str, Any]:
        old = api.job(request, job_id)
        return api.start(request, "applies", dict(old["params"]))

    return act(request, "Apply resumed.", start,
                reverse("horizon:admin:onboard_apply:job", args=[job_id]), job_url)


@require_POST
def unmanage(request: HttpRequest) -> HttpResponse:
    vms = [v.strip() for v in request.POST.get("vms", "").replace(",", "\n").splitlines()
           if v.strip()]
    return act(request, "Release (unmanage) started: the VMs themselves are not touched.",
               lambda: api.start(request, "unmanages", {"vms": vms}),
               reverse("horizon:admin:onboard_apply:index"), job_url)
