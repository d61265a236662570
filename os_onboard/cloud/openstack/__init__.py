"""The OpenStack side, on public APIs only: the one package importing openstacksdk.

Everything os-onboard asks of Keystone, Nova, Neutron, Cinder, Glance and
Placement goes through :class:`OpenStackCloud`, which keeps the
:class:`~os_onboard.cloud.base.Cloud` contract; callers get plain dicts and
:class:`~os_onboard.exceptions.CloudError`, never SDK objects or SDK errors.
Where openstacksdk has no proxy call for an API (Cinder's manage and v3
attachments, Placement allocations) the raw REST call is made through the
service's authenticated session adapter, with the microversion it needs
(:mod:`.rest`). One module per service group keeps each under 400 lines.

Credentials come from clouds.yaml (``--os-cloud``/``OS_CLOUD``), as for the
``openstack`` CLI, and so does TLS: Keystone's and every endpoint's
certificate is verified (keystoneauth's default, ``cacert:`` for a private
CA) unless the cloud says ``verify: false`` or ``insecure: true`` - os-onboard
never turns verification off itself, and warns when a cloud does.
"""

from __future__ import annotations

import logging
from typing import Any

import openstack

from os_onboard.cloud.base import Cloud, TemporaryCloudError, VolumeWentToError
from os_onboard.cloud.openstack.compute import Compute
from os_onboard.cloud.openstack.network import Network
from os_onboard.cloud.openstack.placement import Placement
from os_onboard.cloud.openstack.rest import call
from os_onboard.cloud.openstack.storage import Storage

__all__ = ["OpenStackCloud", "TemporaryCloudError", "VolumeWentToError"]

LOG = logging.getLogger(__name__)


class OpenStackCloud(Compute, Network, Storage, Placement, Cloud):
    """One authenticated connection to a cloud (admin credentials expected)."""

    def __init__(self, cloud: str | None = None, connection: Any = None) -> None:
        self.cloud = cloud
        self._conn = connection or call(
            f"cannot connect to cloud {cloud or '(OS_CLOUD)'}",
            lambda: openstack.connect(cloud=cloud))
        if connection is None and getattr(self._conn.session, "verify", True) is False:
            LOG.warning("cloud %s: TLS certificate verification is off (verify: false or "
                        "insecure: true in clouds.yaml): anyone on the path can read the "
                        "tokens and passwords sent", cloud or "(OS_CLOUD)")
