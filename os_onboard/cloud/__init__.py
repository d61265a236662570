"""The OpenStack side: the Cloud contract (base), its openstacksdk adapter (openstack/),
an in-memory fake (fake/), and the Nova-/Cinder-side helpers where no API exists."""
