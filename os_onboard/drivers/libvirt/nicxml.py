"""Parse a libvirt domain's ``<interface>`` elements into :class:`Nic` (pure, no libvirt import).

What is here: the NIC itself (MAC, model, network / bridge / direct source,
port group, VLAN tags, link state) and the statically configured guest
addresses the operator recorded under :data:`ONBOARD_METADATA_NS` in the
domain's ``<metadata>``, joined to the NICs by MAC.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET

from os_onboard.drivers.libvirt.xmlutil import describe, to_int
from os_onboard.inventory.models import AddressSource, IpAddress, Nic

#: Namespace of os-onboard's own domain metadata: statically configured guest
#: addresses that no DHCP server knows, written by the operator (or a CMDB sync).
ONBOARD_METADATA_NS = "http://openstack.org/xmlns/os-onboard/1.0"
_ADDRESSES = f"{{{ONBOARD_METADATA_NS}}}addresses"
_ADDRESS = f"{{{ONBOARD_METADATA_NS}}}address"


def parse_interface(el: ET.Element, warnings: list[str]) -> Nic | None:
    """One ``<interface>``; ``None`` (and a warning) if it has no MAC address."""
    mac_el = el.find("mac")
    mac = mac_el.get("address") if mac_el is not None else None
    if not mac:
        warnings.append(f"interface without a MAC address skipped: {describe(el)}")
        return None
    src = el.find("source")
    source_kind = el.get("type", "unknown")
    network = bridge = portgroup = None
    if src is not None:
        network = src.get("network") if source_kind == "network" else None
        bridge = src.get("bridge") if source_kind == "bridge" else None
        if source_kind == "direct":
            bridge = src.get("dev")
        portgroup = src.get("portgroup")
    if source_kind == "network" and src is not None and src.get("bridge"):
        bridge = src.get("bridge")  # live XML names the bridge of the network
    vlan = el.find("vlan")
    tags = []
    for tag in vlan.findall("tag") if vlan is not None else ():
        value = to_int(tag.get("id"), "vlan tag", warnings)
        if value is not None:
            tags.append(value)
    link = el.find("link")
    model = el.find("model")
    target = el.find("target")
    driver = el.find("driver")
    return Nic(
        mac=mac.lower(),
        model=model.get("type") if model is not None else None,
        source_kind=source_kind,
        network=network,
        bridge=bridge,
        portgroup=portgroup,
        vlan=tags,
        target=target.get("dev") if target is not None else None,
        driver=dict(driver.attrib) if driver is not None else None,
        link_up=link is None or link.get("state") != "down",
    )


def apply_metadata_addresses(root: ET.Element, nics: list[Nic], warnings: list[str]) -> None:
    """Add statically configured addresses recorded under our metadata namespace."""
    meta = root.find("metadata")
    if meta is None:
        return
    by_mac = {nic.mac: nic for nic in nics}
    # "metadata/o:addresses/o:address" in document order, without ElementPath's
    # Python-level path walk (a plain "{ns}tag" is found in C)
    found = [addr for group in meta.findall(_ADDRESSES) for addr in group.findall(_ADDRESS)]
    for addr in found:
        mac = (addr.get("mac") or "").lower()
        ip = addr.get("ip") or ""
        nic = by_mac.get(mac)
        if nic is None:
            warnings.append(f"metadata address {ip} names unknown MAC {mac!r}")
            continue
        try:
            parsed = ipaddress.ip_address(ip)
        except ValueError:
            warnings.append(f"metadata address {ip!r} for {mac} is not an IP address")
            continue
        nic.addresses.append(IpAddress(
            family=f"ipv{parsed.version}", address=str(parsed),
            prefix=to_int(addr.get("prefix"), "metadata prefix", warnings),
            source=AddressSource.METADATA,
        ))
