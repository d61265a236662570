"""An in-memory cloud keeping the :class:`~os_onboard.cloud.base.Cloud` contract.

Shipped with the package so the unit tests of plan, apply, release and
reconcile (and anyone building on them) run without OpenStack, against the
semantics those layers depend on:

* Nova: a server uuid is taken once (409 on a second); the Nova-side
  helpers' writes (adopt, update, release, network cache) on its records.
* Neutron: a MAC is taken by one port per network, an IP by one port per
  subnet (409); a bulk create is one transaction; a port bound on a host
  gets a vif type, or ``binding_failed``.
* Cinder: volume states through manage, attach, complete, reset, unmanage;
  a manage of an object the backend does not have goes to error.
* Placement: allocations per consumer, written only with the consumer
  generation last read (409 otherwise).
* Errors on demand: :meth:`~.core.State.fail` (a status: 409, 5xx...),
  ``down`` (every call a temporary error), ``lose_answers`` (a write that
  takes effect but whose answer times out).

Every record is a public attribute a test arranges or inspects; ``calls``
and ``log`` record the calls made. The openstacksdk-backed class keeps its
functional tests on the lab: nothing here proves the real services agree.
"""

from __future__ import annotations

from os_onboard.cloud.base import Cloud
from os_onboard.cloud.fake.core import Call, http_error
from os_onboard.cloud.fake.helpers import MARKER_KEY, Helpers
from os_onboard.cloud.fake.placement import Placement

__all__ = ["MARKER_KEY", "Call", "FakeCloud", "http_error"]


class FakeCloud(Helpers, Placement, Cloud):
    """One fake cloud, empty but for what the constructor is given."""

    def __init__(self, *, projects: dict[str, str] | None = None,
                 users: dict[str, str] | None = None,
                 credentials: tuple[str, str] = ("p-admin", "u-admin"),
                 hypervisors: list[dict] | None = None, networks: list[dict] | None = None,
                 subnets: list[dict] | None = None, rbd_pool: str = "volumes",
                 vif_type: str = "bridge") -> None:
        super().__init__()
        # Keystone, Nova, Glance
        self.projects, self.users = dict(projects or {}), dict(users or {})
        self.credentials = credentials
        self.hypervisors_ = [dict(h) for h in hypervisors or []]
        self.servers_, self.flavors_, self.flavor_access = {}, [], {}
        self.images, self.events = {}, []
        # Neutron
        self.networks_ = [dict(n) for n in networks or []]
        self.subnets_ = [dict(s) for s in subnets or []]
        self.ports_, self.bind_fail, self.vif_type = [], set(), vif_type
        # Cinder
        self.volumes_, self.attachments_, self.manageable = {}, {}, {}
        self.manage_fails, self.rbd_pool, self._pending = set(), rbd_pool, {}
        # Placement
        self.allocs, self.provider_generations = {}, {}
        # the service-side helpers
        self.helper_log, self.cinder_log, self.cache_fail = [], [], set()
