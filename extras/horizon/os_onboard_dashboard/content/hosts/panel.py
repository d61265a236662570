import horizon
from django.utils.translation import gettext_lazy as _


class Hosts(horizon.Panel):
    name = _("Hosts")
    slug = "onboard_hosts"
    # The API decides what a user may read or write; the panel is for admins.
    permissions = ("openstack.roles.admin",)
