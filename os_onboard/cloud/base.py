"""The contract of the OpenStack side: what plan, apply, release and reconcile ask of a cloud.

:class:`Cloud` is what those layers are typed against. Two classes implement
it: :class:`~os_onboard.cloud.openstack.OpenStackCloud` (openstacksdk, the
real services) and :class:`~os_onboard.cloud.fake.FakeCloud` (in memory,
for unit tests). An abstract base class, not a ``typing.Protocol``: both
implementations name the contract they keep, and a method missing from
either fails at construction rather than at the first call in some test.

Every method returns plain dicts (never SDK objects) and raises
:class:`~os_onboard.exceptions.CloudError`: :class:`TemporaryCloudError` when
retrying later may work (the service down or answering 5xx); a refusal by the
service carries its HTTP ``status_code`` (e.g. 409 on a conflict). The error
classes live in :mod:`os_onboard.exceptions` (re-exported here), not in the
adapter, so that code raising or catching them (and the fake) needs no
openstacksdk.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any

from os_onboard.exceptions import TemporaryCloudError as TemporaryCloudError
from os_onboard.exceptions import VolumeWentToError as VolumeWentToError


class Cloud(abc.ABC):
    """One cloud, seen with admin credentials."""

    # -- Keystone ------------------------------------------------------------
    @abc.abstractmethod
    def project_id(self, name_or_id: str) -> str | None:
        """The id of a project given by name or id; None if there is none."""

    @abc.abstractmethod
    def user_id(self, name_or_id: str) -> str | None:
        """The id of a user given by name or id; None if there is none."""

    @abc.abstractmethod
    def current_ids(self) -> tuple[str, str]:
        """(project id, user id) of the credentials in use."""

    # -- Nova ------------------------------------------------------------------
    @abc.abstractmethod
    def hypervisors(self) -> list[dict]:
        """Compute nodes: ``{"node", "uuid", "state", "status", "host_ip", "service_host"}``.

        ``node`` is the hypervisor hostname, ``uuid`` the compute node's (its
        Placement resource provider), ``service_host`` the nova-compute host.
        """

    @abc.abstractmethod
    def compute_services(self) -> list[dict]:
        """nova-compute services: ``{"host", "state", "status"}``."""

    @abc.abstractmethod
    def servers(self) -> dict[str, dict]:
        """Every server of every project, by uuid.

        Each: ``{"name", "status", "host", "node", "metadata", "project_id",
        "flavor" (name), "vcpus", "ram", "vm_state", "power_state",
        "task_state"}``.
        """

    @abc.abstractmethod
    def server(self, uuid: str) -> dict | None:
        """One server: ``{"id", "name", "status", "host", "metadata"}``; None if none."""

    @abc.abstractmethod
    def rename_server(self, uuid: str, name: str, metadata: dict[str, str]) -> None:
        """Set a server's display name, then merge ``metadata`` into its metadata.

        Nova has no one call for both (``PUT /servers/{id}``, then ``POST
        /servers/{id}/metadata``); the name goes first, so a stop between the
        two leaves the metadata behind, where the next comparison sees it.
        Nova refuses the metadata with a 409 while a task is in flight.
        """

    @abc.abstractmethod
    def flavors(self) -> list[dict]:
        """Every flavor, public or not: ``{"id", "name", "vcpus", "ram", "disk",
        "ephemeral", "swap", "is_public", "extra_specs"}``."""

    @abc.abstractmethod
    def create_flavor(self, name: str, vcpus: int, ram: int, disk: int,
                      project_id: str | None, description: str) -> dict:
        """A flavor for one VM shape, ``{"id", "name"}``; private to ``project_id`` when given.

        Idempotent by name: an existing flavor of that name is returned (and
        ``project_id`` given access to it).
        """

    @abc.abstractmethod
    def server_event(self, uuid: str, name: str, tag: str | None = None) -> None:
        """Send Nova an external event (e.g. ``network-changed``) for a server."""

    # -- Glance --------------------------------------------------------------
    @abc.abstractmethod
    def image_by_name(self, name: str) -> dict | None:
        """``{"id", "name", "status"}`` of the image of that name; None if none."""

    @abc.abstractmethod
    def upload_image(self, name: str, filename: str, disk_format: str,
                     properties: dict[str, str]) -> dict:
        """Upload a file as a public image, ``{"id", "name"}``."""

    @abc.abstractmethod
    def create_image_record(self, name: str, properties: dict[str, str]) -> dict:
        """A tiny placeholder image, ``{"id", "name"}``: the root-disk image of
        adopted servers, never booted from."""

    @abc.abstractmethod
    def delete_image(self, image_id: str) -> None:
        """Delete an image; one already gone is not an error."""

    # -- Neutron -------------------------------------------------------------
    @abc.abstractmethod
    def networks(self) -> list[dict]:
        """``{"id", "name", "physical_network", "network_type", "segment", "subnet_ids"}``."""

    @abc.abstractmethod
    def subnets(self) -> list[dict]:
        """``{"id", "name", "network_id", "cidr", "enable_dhcp", "ip_version"}``."""

    @abc.abstractmethod
    def ports(self, **filters: Any) -> list[dict]:
        """Ports matching Neutron list filters (every port without any).

        Each: ``{"id", "name", "network_id", "mac" (lower case), "fixed_ips"
        ([{"subnet_id", "ip_address"}]), "device_id", "device_owner", "host",
        "vif_type", "status", "description", "created_at" (ISO 8601, None if not known)}``.
        """

    @abc.abstractmethod
    def create_network(self, name: str, physical_network: str, network_type: str,
                       segment: int | None, project_id: str | None) -> dict:
        """A provider network, ``{"id", "name"}``."""

    @abc.abstractmethod
    def create_subnet(self, name: str, network_id: str, cidr: str,
                      gateway: str | None) -> dict:
        """A subnet with DHCP off (the legacy segment has its own), ``{"id", "name"}``."""

    @abc.abstractmethod
    def create_port(self, **attrs: Any) -> dict:
        """One port (Neutron attributes, SDK names), as :meth:`ports` shows it.

        A MAC already used on the network is refused with a 409.
        """

    @abc.abstractmethod
    def create_ports(self, ports: list[dict[str, Any]]) -> list[dict]:
        """Neutron's bulk create: one transaction (all or none), in the order given."""

    @abc.abstractmethod
    def update_port(self, port_id: str, **attrs: Any) -> dict:
        """Update a port's attributes; the port as :meth:`ports` shows it."""

    @abc.abstractmethod
    def delete_port(self, port_id: str) -> None:
        """Delete a port; one already gone is not an error."""

    # -- Cinder ----------------------------------------------------------------
    @abc.abstractmethod
    def volume(self, volume_id: str) -> dict | None:
        """Cinder's volume JSON (``id``, ``status``, ``attach_status``,
        ``attachments``, ``metadata``, ...); None if there is none."""

    @abc.abstractmethod
    def volumes(self, **filters: Any) -> list[dict]:
        """Every volume of every project matching the filters, Cinder's JSON, all pages."""

    @abc.abstractmethod
    def manageable_volumes(self, host: str) -> list[dict]:
        """What backend pool ``host`` could manage (and what it already does).

        Cinder's JSON: ``{"reference", "size", "safe_to_manage",
        "reason_not_safe", "cinder_id", ...}``.
        """

    @abc.abstractmethod
    def manage_volume(self, host: str, ref: dict, name: str, metadata: dict[str, str],
                      bootable: bool = False) -> dict:
        """Start managing an existing backend volume; Cinder's volume JSON
        (status ``creating`` until the manager is done: see :meth:`wait_volume`)."""

    @abc.abstractmethod
    def wait_volume(self, volume_id: str, statuses: Iterable[str], timeout: float = 120,
                    ) -> dict:
        """The volume once its status is one of ``statuses``.

        Raises :class:`VolumeWentToError` on an ``error*`` status, a
        :class:`TemporaryCloudError` after ``timeout`` seconds, a CloudError
        if it disappears.
        """

    @abc.abstractmethod
    def create_attachment(self, volume_id: str, instance_uuid: str, connector: dict) -> dict:
        """A v3 attachment of a volume to a server, Cinder's JSON (``id``, ``connection_info``)."""

    @abc.abstractmethod
    def complete_attachment(self, attachment_id: str) -> None:
        """Mark an attachment complete (the volume becomes ``in-use``)."""

    @abc.abstractmethod
    def update_attachment(self, attachment_id: str, connector: dict) -> dict:
        """Give an attachment a new connector (e.g. a new host); Cinder's attachment JSON."""

    @abc.abstractmethod
    def attachments(self, volume_id: str) -> list[dict]:
        """The v3 attachments of a volume, Cinder's JSON (``id``, ``instance``, ``status``...)."""

    @abc.abstractmethod
    def reset_volume_detached(self, volume_id: str) -> None:
        """Mark a volume available and detached in Cinder's database only.

        No driver call: the export a running guest still uses stays.
        """

    @abc.abstractmethod
    def unmanage_volume(self, volume_id: str) -> None:
        """Stop managing a volume (the backend volume stays); one already gone is fine."""

    # -- Placement -------------------------------------------------------------
    @abc.abstractmethod
    def allocations(self, consumer: str) -> dict:
        """Placement's allocations of a consumer: ``{"allocations": {provider:
        {"resources": {class: amount}, "generation"}}, "consumer_generation",
        "project_id", "user_id", "consumer_type"}`` (``{"allocations": {}}`` for an
        unknown one; ``consumer_type`` is ``INSTANCE`` or Nova's ``MIGRATION``)."""

    @abc.abstractmethod
    def provider_allocations(self, provider: str) -> dict[str, dict]:
        """Every consumer's allocation on one resource provider: consumer uuid ->
        ``{"resources": {class: amount}}`` (``{}`` for a provider with none)."""

    @abc.abstractmethod
    def put_allocations(self, consumer: str, provider: str, resources: dict[str, int],
                        project_id: str, user_id: str, generation: int | None) -> None:
        """Set a consumer's allocations on one provider.

        ``generation`` is the consumer generation read last (None: a new
        consumer); a stale one is refused with a 409.
        """

    @abc.abstractmethod
    def post_allocations(self, consumers: dict[str, dict]) -> None:
        """Placement's bulk write: every consumer or none.

        ``consumers``: consumer uuid -> {"provider", "resources", "project_id",
        "user_id", "generation"} (generation None: a new consumer).
        """

    @abc.abstractmethod
    def delete_allocations(self, consumer: str) -> None:
        """Delete a consumer's allocations; a consumer with none is not an error."""
