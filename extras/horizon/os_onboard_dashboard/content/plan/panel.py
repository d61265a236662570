import horizon
from django.utils.translation import gettext_lazy as _


class Plan(horizon.Panel):
    name = _("Plan")
    slug = "onboard_plan"
    # The API decides what a user may read or write; the panel is for admins.
    permissions = ("openstack.roles.admin",)
