"""Rebuild adopted instances' network info cache from Neutron (Nova's own code).

A ``network-changed`` event does not help an empty cache (Nova rebuilds from
the cache, not from Neutron, when a port id is given), and the periodic heal
is off by default; so this runs Nova's ``get_instance_nw_info`` with
``force_refresh=True``, which lists the ports whose device_id is the
instance, in virtual-interface order.

Nova's refresh asks Neutron about eight questions per instance (its ports,
their networks, subnets, floating IPs, the networks' DHCP ports and physical
network). For a batch, :func:`prefetch` asks each of those once for all the
batch's instances (about five requests), and Nova's code then reads the
answers from that :class:`NeutronSnapshot` instead of Neutron: the cache is
still built by Nova (``_build_network_info_model``) from Neutron's data,
seconds old at most; only where the data comes from changes. A question the
snapshot does not cover goes to Neutron as before.

The ``adopt`` helper runs the same refresh right after it writes an
instance's records (one helper run for both); this command remains for
apply's resumes and for ``reconcile``.

    echo '[{"uuid": "...", "host": "..."}]' | python -m os_onboard_nova.network_cache ...
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from typing import Any

from os_onboard_nova import _common

#: Neutron filters per request (device_id=…&device_id=…): keeps URLs short.
CHUNK = 100
#: Instances handled at once: each one mostly waits on Nova's databases.
WORKERS = 4


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(values), CHUNK):
        yield values[i:i + CHUNK]


def _matches(item: dict, filters: dict) -> bool:
    for key, wanted in filters.items():
        values = wanted if isinstance(wanted, list | tuple | set) else [wanted]
        if item.get(key) not in values:
            return False
    return True


def _fields(item: dict, fields: Any) -> dict:
    if not fields:
        return dict(item)
    wanted = [fields] if isinstance(fields, str) else list(fields)
    return {k: v for k, v in item.items() if k in wanted}


class NeutronSnapshot:
    """Answers Nova's refresh questions about a batch's instances from one bulk read.

    Exactly the reads ``_build_network_info_model`` makes, each answered only
    when the snapshot holds everything the question could match (the ports of
    the batch's instances, their networks and subnets, the networks' DHCP
    ports, the ports' floating IPs); anything else goes to ``client`` (Nova's
    own Neutron client), as does every write.
    """

    def __init__(self, client: Any, device_ids: list[str]) -> None:
        self.client = client
        self.device_ids = set(device_ids)
        self.ports: list[dict] = []
        for chunk in _chunks(sorted(self.device_ids)):
            self.ports += client.list_ports(device_id=chunk)["ports"]
        port_ids = sorted(p["id"] for p in self.ports)
        net_ids = sorted({p["network_id"] for p in self.ports})
        subnet_ids = sorted({ip["subnet_id"] for p in self.ports for ip in p["fixed_ips"]})
        self.networks = {n["id"]: n for n in (
            client.list_networks(id=net_ids)["networks"] if net_ids else [])}
        self.subnets = {s["id"]: s for s in (
            client.list_subnets(id=subnet_ids)["subnets"] if subnet_ids else [])}
        self.dhcp_ports = (client.list_ports(network_id=net_ids,
                                             device_owner="network:dhcp")["ports"]
                           if net_ids else [])
        self.port_ids = set(port_ids)
        self.floatingips: list[dict] = []
        for chunk in _chunks(port_ids):
            self.floatingips += self._floatingips(port_id=chunk)
        self.forwarded = 0  # questions the snapshot could not answer

    def _floatingips(self, **filters: Any) -> list[dict]:
        try:
            return self.client.list_floatingips(**filters)["floatingips"]
        except Exception as exc:  # neutronclient's NeutronClientException
            if getattr(exc, "status_code", None) == 404:  # no L3 API: none (as Nova reads it)
                return []
            raise

    # -- the reads of Nova's refresh -------------------------------------------
    def list_ports(self, **filters: Any) -> dict:
        owner = filters.get("device_owner")
        if set(filters) <= {"device_id", "tenant_id", "project_id"} and \
                filters.get("device_id") in self.device_ids:
            return {"ports": [dict(p) for p in self.ports if _matches(p, filters)]}
        if owner == "network:dhcp" and set(filters) == {"network_id", "device_owner"} and \
                filters["network_id"] in self.networks:
            return {"ports": [dict(p) for p in self.dhcp_ports if _matches(p, filters)]}
        return self._forward("list_ports", **filters)

    def list_networks(self, **filters: Any) -> dict:
        ids = filters.get("id")
        if set(filters) == {"id"} and ids and set(_as_list(ids)) <= set(self.networks):
            return {"networks": [dict(self.networks[i]) for i in _as_list(ids)]}
        return self._forward("list_networks", **filters)

    def list_subnets(self, **filters: Any) -> dict:
        ids = filters.get("id")
        if set(filters) == {"id"} and ids and set(_as_list(ids)) <= set(self.subnets):
            return {"subnets": [dict(self.subnets[i]) for i in _as_list(ids)]}
        return self._forward("list_subnets", **filters)

    def list_floatingips(self, **filters: Any) -> dict:
        if filters.get("port_id") in self.port_ids and \
                set(filters) <= {"port_id", "fixed_ip_address"}:
            return {"floatingips": [dict(f) for f in self.floatingips
                                    if _matches(f, filters)]}
        return self._forward("list_floatingips", **filters)

    def show_network(self, network: str, **params: Any) -> dict:
        if network in self.networks and set(params) <= {"fields"}:
            return {"network": _fields(self.networks[network], params.get("fields"))}
        return self._forward("show_network", network, **params)

    def _forward(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.forwarded += 1
        return getattr(self.client, name)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # writes, extensions, anything else
        return getattr(self.client, name)


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, list | tuple | set) else [value]


def prefetch(items: list[dict], context: Any) -> NeutronSnapshot:
    """One bulk read of Neutron for every instance of the batch."""
    from nova.network import neutron

    ctxt = context.get_admin_context()
    client = neutron.get_client(ctxt, admin=True)
    # Neutron's extensions, read now (Nova keeps them for extension_sync_interval),
    # so the batch's threads do not refresh Nova's shared copy of them.
    _api()._refresh_neutron_extensions_cache(client)
    return NeutronSnapshot(client, [item["uuid"] for item in items])


_state: dict[str, Any] = {}  # the process's Nova API object and client factory
_state_lock = threading.Lock()


def _api() -> Any:
    """One nova.network.neutron.API per process (it caches Neutron's extensions),
    whose module-level admin client factory answers from a snapshot when one is
    given: Nova's refresh also makes its own client (``_nw_info_build_network``
    reads the physical network with it), so a client argument is not enough."""
    from nova.network import neutron

    with _state_lock:
        if "api" not in _state:
            original = neutron.get_client

            def get_client(context: Any, admin: bool = False) -> Any:
                snapshot = _snapshots.get(threading.get_ident())
                return snapshot if admin and snapshot is not None else original(context, admin)

            neutron.get_client = get_client
            _state["api"] = neutron.API()
        return _state["api"]


#: The snapshot each thread's refresh reads from (threads of one batch share one).
_snapshots: dict[int, NeutronSnapshot] = {}


def refresh_instance(cctxt: Any, instance: Any,
                     snapshot: NeutronSnapshot | None = None) -> list[dict]:
    """Nova's forced refresh of one instance's cache; the VIFs it wrote."""
    api = _api()
    me = threading.get_ident()
    if snapshot is not None:
        _snapshots[me] = snapshot
    try:
        info = api.get_instance_nw_info(cctxt, instance, force_refresh=True,
                                        admin_client=snapshot)
    finally:
        _snapshots.pop(me, None)
    return [{"id": v["id"], "mac": v["address"], "type": v["type"], "active": v["active"],
             "ips": [ip["address"] for ip in v.fixed_ips()]} for v in info]


def refresh(item: dict, context: Any, objects: Any,
            snapshot: NeutronSnapshot | None = None) -> dict:
    ctxt = context.get_admin_context()
    cell = _common.cell_for_host(ctxt, objects, item["host"])
    with context.target_cell(ctxt, cell) as cctxt:
        instance = objects.Instance.get_by_uuid(cctxt, item["uuid"],
                                                expected_attrs=["info_cache"])
        vifs = refresh_instance(cctxt, instance, snapshot)
    return {"uuid": item["uuid"], "vifs": vifs}


def main(argv: list[str] | None = None) -> int:
    return _common.serve(
        "os_onboard_nova.network_cache", __doc__,
        lambda item, _conf, context, objects, snapshot: refresh(item, context, objects,
                                                                snapshot),
        argv, workers=WORKERS,
        prepare=lambda items, _conf, context, _objects: prefetch(items, context))


if __name__ == "__main__":
    sys.exit(main())
