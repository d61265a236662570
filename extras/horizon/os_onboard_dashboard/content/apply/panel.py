import horizon
from django.utils.translation import gettext_lazy as _


class Apply(horizon.Panel):
    name = _("Apply & jobs")
    slug = "onboard_apply"
    # The API decides what a user may read or write; the panel is for admins.
    permissions = ("openstack.roles.admin",)
