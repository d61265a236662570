import horizon
from django.utils.translation import gettext_lazy as _


class Inventory(horizon.Panel):
    name = _("Inventory")
    slug = "onboard_inventory"
    # The API decides what a user may read or write; the panel is for admins.
    permissions = ("openstack.roles.admin",)
