"""What every Onboarding page shares: API errors shown as Horizon messages."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from horizon import views

from os_onboard_dashboard.api import ApiError


class ApiPage(views.HorizonTemplateView):
    """A page whose data comes from the API: :meth:`load` fills the context;
    an API error becomes an error message over an empty page, not a 500."""

    def load(self, **kwargs: Any) -> dict[str, Any]:
        return {}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        try:
            context.update(self.load(**kwargs))
        except ApiError as exc:
            messages.error(self.request, f"os-onboard API: {exc.message} ({exc.code})")
            context["api_error"] = exc
        return context


def act(request: HttpRequest, ok: str, action: Any, back: str,
        then: Any = None) -> HttpResponse:
    """Run one API write; a success message and a redirect to what it made
    (``then(result)`` names the URL) or back where the form was."""
    try:
        result = action()
    except ApiError as exc:
        messages.error(request, f"os-onboard API: {exc.message} ({exc.code})")
        return HttpResponseRedirect(back)
    messages.success(request, ok)
    return HttpResponseRedirect(then(result) if then else back)


def job_url(job: dict[str, Any]) -> str:
    return reverse("horizon:admin:onboard_apply:job", args=[job["id"]])
