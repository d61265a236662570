import horizon
from django.utils.translation import gettext_lazy as _


class Drift(horizon.Panel):
    name = _("Drift & audit")
    slug = "onboard_drift"
    # The API decides what a user may read or write; the panel is for admins.
    permissions = ("openstack.roles.admin",)
