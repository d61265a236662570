"""The non-VM objects of one vCenter endpoint, indexed for joins (pure: no pyVmomi, no I/O).

:class:`Catalog` holds every object read but the VMs, by moid, and answers a
VM's names and location paths (host, cluster, resource pool, folder,
datacenter). :func:`build_catalog` also indexes each ESXi host's SCSI LUNs
(for RDM disks) and the VLANs of standard and distributed port groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from os_onboard.drivers.vsphere.properties import wsdl
from os_onboard.drivers.vsphere.raw import RawObject


@dataclass
class Catalog:
    """Every non-VM object read, by moid, for joins and location paths."""

    objects: dict[str, RawObject]
    luns: dict[str, dict[str, Any]]  # host moid -> LUN uuid -> ScsiLun
    portgroup_vlans: dict[str, dict[str, list[int]]]  # host moid -> pg name -> VLANs
    dvportgroups: dict[str, tuple[str, list[int]]]  # dvpg key -> (name, VLANs)

    def name(self, moid: str | None) -> str | None:
        obj = self.objects.get(moid or "")
        return obj.props.get("name") if obj else None

    def ancestor(self, moid: str | None, types: tuple[str, ...]) -> RawObject | None:
        seen = set()
        while moid and moid not in seen:
            seen.add(moid)
            obj = self.objects.get(moid)
            if obj is None:
                return None
            if obj.type in types:
                return obj
            moid = obj.props.get("parent")
        return None

    def path(self, moid: str | None, stop_types: tuple[str, ...]) -> str | None:
        """Names from below the first ``stop_types`` ancestor down to ``moid``."""
        names: list[str] = []
        seen = set()
        while moid and moid not in seen:
            seen.add(moid)
            obj = self.objects.get(moid)
            if obj is None or obj.type in stop_types:
                break
            names.append(obj.props.get("name") or obj.moid)
            moid = obj.props.get("parent")
        return "/".join(reversed(names)) or None


def build_catalog(objects: dict[str, RawObject]) -> Catalog:
    """Index the non-VM ``objects`` (by moid) with their LUNs and port-group VLANs."""
    luns: dict[str, dict[str, Any]] = {}
    vlans: dict[str, dict[str, list[int]]] = {}
    dvpgs: dict[str, tuple[str, list[int]]] = {}
    for obj in objects.values():
        if obj.type == "HostSystem":
            luns[obj.moid] = {lun.uuid: lun for lun in
                              obj.props.get("config.storageDevice.scsiLun") or ()
                              if getattr(lun, "uuid", None)}
            vlans[obj.moid] = {pg.spec.name: _standard_vlan(pg.spec.vlanId) for pg in
                               obj.props.get("config.network.portgroup") or ()}
        elif obj.type == "DistributedVirtualPortgroup" and obj.props.get("key"):
            dvpgs[obj.props["key"]] = (obj.props.get("name") or obj.props["key"],
                                       _dvs_vlan(obj.props.get("config.defaultPortConfig")))
    return Catalog(objects, luns, vlans, dvpgs)


def _standard_vlan(vlan_id: int | None) -> list[int]:
    # 0: untagged; 4095: virtual guest tagging (the guest sees the trunk).
    if not vlan_id:
        return []
    return list(range(1, 4095)) if vlan_id == 4095 else [vlan_id]


def _dvs_vlan(port_config: Any) -> list[int]:
    vlan = getattr(port_config, "vlan", None)
    if vlan is None:
        return []
    kind = wsdl(vlan)
    if kind.endswith("TrunkVlanSpec"):
        return [v for r in vlan.vlanId or () for v in range(r.start, r.end + 1) if v]
    if kind.endswith("PvlanSpec"):
        return [vlan.pvlanId] if vlan.pvlanId else []
    value = getattr(vlan, "vlanId", 0)
    return [value] if isinstance(value, int) and value else []
