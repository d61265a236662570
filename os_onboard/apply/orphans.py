"""``cleanup``: os-onboard's records whose VM is no longer a Nova server.

They are left behind when an adopted server is deleted through Nova's API
(Nova unbinds or deletes the ports it did not create and detaches the
volumes, but the port keeps the guest's MAC and IPs and the volume stays
managed), when an apply is abandoned before its Nova records were written,
or when a lab or a test is torn down under os-onboard. Such a port blocks
every later plan of a VM with that MAC. What counts as an orphan, all
recognised by os-onboard's own markings:

* a **port** whose description is os-onboard's (``PORT_DESCRIPTION``) and
  whose ``device_id`` is empty or no Nova server;
* a **volume** with os-onboard's ``DISK_KEY`` metadata whose recorded server
  (the key's ``<uuid>/<target>``) is gone and which is attached to no
  server that exists;
* a **Placement allocation** on a compute node of a consumer that is no Nova
  server and not one of Nova's migrations (consumer type ``MIGRATION``).
  apply writes an allocation only after its server, so an apply in progress
  never has one without the other.

Removal is release, as :mod:`os_onboard.apply.release` does it: the port
deleted, the volume marked detached in Cinder's database and unmanaged
(never deleted: the backend object stays, under Cinder's name), the
allocation deleted. Nothing here touches a hypervisor.

An apply in progress (another operator's, with another state store) has
ports and volumes but no server yet: ``older_than`` leaves records younger
than that alone (``created_at``; a record without one counts as old).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from os_onboard.apply.steps import DISK_KEY
from os_onboard.cloud.base import Cloud
from os_onboard.exceptions import CloudError
from os_onboard.plan.model import PORT_DESCRIPTION_PREFIX

#: What ``cleanup`` waits before it calls a record of a running apply an orphan.
DEFAULT_OLDER_THAN = 600.0


@dataclass
class Orphan:
    """One record of os-onboard's whose server is gone."""

    kind: str          # "port", "volume", "allocation"
    id: str            # port id, volume id, consumer uuid
    server: str        # the server it was made for ("" when the port names none)
    detail: str        # what it holds: MAC and IPs, volume name and status, resources
    status: str = "orphan"  # orphan (found), removed, failed
    error: str = ""

    @property
    def line(self) -> str:
        """One line for a person."""
        of = f" of server {self.server} (gone)" if self.server else " of no server"
        return f"{self.kind} {self.id}{of}: {self.detail}"


def is_onboard_port(port: dict) -> bool:
    return (port.get("description") or "").startswith(PORT_DESCRIPTION_PREFIX)


def find_orphans(cloud: Cloud, *, older_than: float = DEFAULT_OLDER_THAN,
                 now: datetime | None = None,
                 kinds: Iterable[str] = ("port", "volume", "allocation"),
                 servers: dict[str, dict] | None = None) -> list[Orphan]:
    """Every orphan of os-onboard's in the cloud; reads only.

    The listings (servers, ports, volumes, compute nodes, then each node's
    allocations) are read in parallel: a few seconds in all on the lab.

    :param older_than: seconds; ports and volumes created more recently are
        left alone (an apply may be writing them now); 0 takes them all.
    :param servers: :meth:`Cloud.servers` when the caller has just read it.
    """
    now = now or datetime.now(UTC)
    wanted = set(kinds)
    with ThreadPoolExecutor(max_workers=4) as pool:
        reads = {"servers": pool.submit(cloud.servers) if servers is None else None,
                 "ports": pool.submit(cloud.ports) if "port" in wanted else None,
                 "volumes": pool.submit(cloud.volumes) if "volume" in wanted else None,
                 "hypervisors": pool.submit(cloud.hypervisors)
                 if "allocation" in wanted else None}
        got = {k: f.result() if f is not None else [] for k, f in reads.items()}
        servers = servers if servers is not None else got["servers"]
        providers = [h for h in got["hypervisors"] if h.get("uuid")]
        on_provider = list(pool.map(lambda h: cloud.provider_allocations(h["uuid"]),
                                    providers))
    found: list[Orphan] = []

    def old(record: dict) -> bool:
        created = _parse_time(record.get("created_at"))
        return created is None or (now - created).total_seconds() >= older_than

    if "port" in wanted:
        for port in got["ports"]:
            if is_onboard_port(port) and port["device_id"] not in servers and old(port):
                ips = ", ".join(ip["ip_address"] for ip in port.get("fixed_ips") or [])
                found.append(Orphan("port", port["id"], port["device_id"],
                                    f"MAC {port['mac']}" + (f", {ips}" if ips else "")
                                    + f" ({port['description']})"))
    if "volume" in wanted:
        for volume in got["volumes"]:
            disk = (volume.get("metadata") or {}).get(DISK_KEY)
            if not disk:
                continue
            server = disk.split("/", 1)[0]
            attached = {a.get("server_id") for a in volume.get("attachments") or []}
            if server in servers or attached & set(servers) or not old(volume):
                continue
            found.append(Orphan("volume", volume["id"], server,
                                f"{volume.get('name')!r} {volume['status']}, disk {disk}"))
    if "allocation" in wanted:
        for hypervisor, allocations in zip(providers, on_provider, strict=True):
            for consumer, allocation in allocations.items():
                if consumer in servers:
                    continue
                if cloud.allocations(consumer).get("consumer_type") == "MIGRATION":
                    continue  # Nova's own: a migration or resize in progress
                resources = ", ".join(f"{k}={v}" for k, v in
                                      sorted((allocation.get("resources") or {}).items()))
                found.append(Orphan("allocation", consumer, consumer,
                                    f"{resources} on {hypervisor['node']}"))
    return found


def remove_orphans(cloud: Cloud, orphans: list[Orphan]) -> list[Orphan]:
    """Release each orphan (see the module); per-record errors are kept, not raised."""
    for orphan in orphans:
        try:
            if orphan.kind == "port":
                cloud.delete_port(orphan.id)
            elif orphan.kind == "volume":
                volume = cloud.volume(orphan.id)
                if volume is not None:
                    if volume["status"] not in ("available", "error"):
                        # Cinder's database only: never an attachment delete, whose
                        # terminate_connection would tear down an export still in use
                        cloud.reset_volume_detached(orphan.id)
                    cloud.unmanage_volume(orphan.id)
            elif orphan.kind == "allocation":
                cloud.delete_allocations(orphan.id)
            else:
                raise CloudError(f"unknown kind of orphan {orphan.kind!r}")
            orphan.status = "removed"
        except CloudError as exc:
            orphan.status, orphan.error = "failed", str(exc)
    return orphans


def _parse_time(value: object) -> datetime | None:
    """Neutron's ``2026-12-07T14:55:00Z``, Cinder's ``2026-12-07T14:55:00.000000`` (UTC)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
