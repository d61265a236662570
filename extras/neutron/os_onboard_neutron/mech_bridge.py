"""ML2 mechanism driver ``onboard_bridge``: bind ports onto an existing Linux bridge.

Legacy (libvirt/KVM) hosts often wire guests straight into a Linux bridge, and
no Neutron agent runs there. An adopted guest's Neutron port must describe that
real wiring: Nova re-plugs every VIF of its instances when nova-compute starts,
and a binding the host cannot plug (``ovs`` where there is no Open vSwitch)
makes nova-compute exit at start-up.

The driver binds a port of VNIC type ``normal`` with ``vif_type=bridge`` and
``bridge_name`` taken from its configuration, keyed by the segment's physical
network (flat) or physical network and VLAN id (vlan). There is no agent that
could report the port up, so the binding itself sets the port ACTIVE: Neutron
then sends Nova ``network-vif-plugged`` (and Nova, which builds the instance's
network info after the binding, finds the port already active and does not
wait for that event). Unbinding a port sets it DOWN again.

Configuration (``ml2_conf.ini``)::

    [ml2]
    mechanism_drivers = onboard_bridge

    [ml2_onboard_bridge]
    bridge_mappings = physnet1:virbr-onb        # flat segments
    vlan_bridge_mappings = physnet1:105:br105   # vlan segments (optional)
    hosts =                                     # bind on these hosts only (empty: any)

``port_filter`` is reported True, so os-vif installs no iptables rules of its
own on the bridge (the legacy host's filtering, if any, stays as it is).

VMware: Nova's VMware driver (one nova-compute per vCenter cluster) plugs a
NIC into a vSphere port group, not a bridge. On the hosts listed in
``vmware_hosts`` the driver binds ``vif_type=dvs`` with
``vif_details={'dvs_port_group_name': <port group>}``, the port group coming
from ``physnet_port_groups`` by the segment's physical network (flat only);
Nova's ``vif.get_network_ref`` looks that name up among the cluster's
networks (a distributed port group matches by substring, a standard network
exactly). The VMware driver waits for no ``network-vif-plugged`` event, and no
agent reports such a port up either: the binding sets it ACTIVE too. On the
VMware hosts no bridge is bound, and elsewhere no port group::

    vmware_hosts = vc-c0,vc-c1                  # the VMware nova-computes' [DEFAULT] host
    physnet_port_groups = physnet-vc:DC0_DVPG0  # physnet -> vSphere port group
"""

from __future__ import annotations

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins import directory
from neutron_lib.plugins.ml2 import api
from oslo_config import cfg
from oslo_log import log

LOG = log.getLogger(__name__)

GROUP = "ml2_onboard_bridge"

OPTS = [
    cfg.ListOpt(
        "bridge_mappings",
        default=[],
        help="<physical_network>:<bridge> pairs: ports on a flat segment of that "
        "physical network are bound to that existing Linux bridge.",
    ),
    cfg.ListOpt(
        "vlan_bridge_mappings",
        default=[],
        help="<physical_network>:<vlan_id>:<bridge> triples: ports on that vlan "
        "segment are bound to that existing Linux bridge.",
    ),
    cfg.ListOpt(
        "hosts",
        default=[],
        help="Bind only ports whose binding:host_id is one of these hosts (empty: any host).",
    ),
    cfg.ListOpt(
        "vmware_hosts",
        default=[],
        help="nova-compute hosts of Nova's VMware driver: ports bound there get "
        "vif_type=dvs with the port group of physnet_port_groups, never a bridge.",
    ),
    cfg.ListOpt(
        "physnet_port_groups",
        default=[],
        help="<physical_network>:<port group name> pairs: ports on a flat segment of "
        "that physical network, bound on a vmware_hosts host, join that vSphere port group.",
    ),
]

VIF_TYPE_DVS = "dvs"  # nova.network.model.VIF_TYPE_DVS; neutron-lib has no constant for it
VIF_DETAILS_DVS_PORT_GROUP_NAME = "dvs_port_group_name"

cfg.CONF.register_opts(OPTS, GROUP)


def list_opts():
    return [(GROUP, OPTS)]


def parse_mappings(flat: list[str], vlan: list[str]) -> dict[tuple[str, int | None], str]:
    """``{(physnet, None): bridge, (physnet, vlan_id): bridge}``; raises ValueError."""
    mappings: dict[tuple[str, int | None], str] = {}
    for entry in flat:
        physnet, sep, bridge = entry.strip().partition(":")
        if not sep or not physnet or not bridge:
            raise ValueError(f"invalid bridge_mappings entry {entry!r} (want physnet:bridge)")
        mappings[(physnet, None)] = bridge
    for entry in vlan:
        parts = entry.strip().split(":")
        if len(parts) != 3 or not parts[0] or not parts[2] or not parts[1].isdigit():
            raise ValueError(f"invalid vlan_bridge_mappings entry {entry!r} "
                             "(want physnet:vlan_id:bridge)")
        mappings[(parts[0], int(parts[1]))] = parts[2]
    return mappings


def parse_port_groups(entries: list[str]) -> dict[str, str]:
    """``{physnet: port group name}``; raises ValueError."""
    port_groups: dict[str, str] = {}
    for entry in entries:
        # A port group name may itself hold a colon: split at the first one.
        physnet, sep, port_group = entry.strip().partition(":")
        if not sep or not physnet or not port_group:
            raise ValueError(f"invalid physnet_port_groups entry {entry!r} "
                             "(want physnet:port_group)")
        port_groups[physnet] = port_group
    return port_groups


class OnboardBridgeMechanismDriver(api.MechanismDriver):
    """Binds ports as ``vif_type=bridge`` onto configured, existing Linux bridges,
    and as ``vif_type=dvs`` onto vSphere port groups on Nova's VMware computes."""

    def initialize(self) -> None:
        conf = cfg.CONF[GROUP]
        self.mappings = parse_mappings(conf.bridge_mappings, conf.vlan_bridge_mappings)
        self.hosts = set(conf.hosts)
        self.vmware_hosts = set(conf.vmware_hosts)
        self.port_groups = parse_port_groups(conf.physnet_port_groups)
        LOG.info("onboard_bridge: mappings %s, hosts %s; VMware hosts %s, port groups %s",
                 self.mappings, sorted(self.hosts) or "any", sorted(self.vmware_hosts),
                 self.port_groups)

    @property
    def connectivity(self) -> str:
        return portbindings.CONNECTIVITY_L2

    def bridge_for(self, segment: dict) -> str | None:
        network_type = segment.get(api.NETWORK_TYPE)
        physnet = segment.get(api.PHYSICAL_NETWORK)
        if network_type == constants.TYPE_FLAT:
            return self.mappings.get((physnet, None))
        if network_type == constants.TYPE_VLAN:
            return self.mappings.get((physnet, segment.get(api.SEGMENTATION_ID)))
        return None

    def port_group_for(self, segment: dict) -> str | None:
        if segment.get(api.NETWORK_TYPE) != constants.TYPE_FLAT:
            return None
        return self.port_groups.get(segment.get(api.PHYSICAL_NETWORK))

    def bind_port(self, context) -> None:
        port = context.current
        vnic_type = port.get(portbindings.VNIC_TYPE, portbindings.VNIC_NORMAL)
        if vnic_type != portbindings.VNIC_NORMAL:
            LOG.debug("onboard_bridge: port %s has vnic_type %s; not binding", port["id"],
                      vnic_type)
            return
        if context.host in self.vmware_hosts:
            self.bind_port_group(context)
            return
        if self.hosts and context.host not in self.hosts:
            LOG.debug("onboard_bridge: host %s is not one of %s; not binding port %s",
                      context.host, sorted(self.hosts), port["id"])
            return
        for segment in context.segments_to_bind:
            bridge = self.bridge_for(segment)
            if bridge is None:
                continue
            details = {
                portbindings.VIF_DETAILS_BRIDGE_NAME: bridge,
                portbindings.CAP_PORT_FILTER: True,
                portbindings.VIF_DETAILS_CONNECTIVITY: self.connectivity,
            }
            # No agent will report this port up: the binding marks it ACTIVE.
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_BRIDGE, details,
                                status=constants.PORT_STATUS_ACTIVE)
            LOG.info("onboard_bridge: bound port %s (MAC %s) on host %s to bridge %s "
                     "(segment %s %s/%s)", port["id"], port.get("mac_address"), context.host,
                     bridge, segment.get(api.NETWORK_TYPE), segment.get(api.PHYSICAL_NETWORK),
                     segment.get(api.SEGMENTATION_ID))
            return
        LOG.debug("onboard_bridge: no bridge mapped for the segments of port %s: %s",
                  port["id"], context.segments_to_bind)

    def bind_port_group(self, context) -> None:
        """On a VMware compute: ``vif_type=dvs`` onto the physnet's port group."""
        port = context.current
        for segment in context.segments_to_bind:
            port_group = self.port_group_for(segment)
            if port_group is None:
                continue
            details = {
                VIF_DETAILS_DVS_PORT_GROUP_NAME: port_group,
                portbindings.VIF_DETAILS_CONNECTIVITY: self.connectivity,
            }
            # Nova's VMware driver waits for no vif-plugged event and no agent
            # reports the port: the binding marks it ACTIVE.
            context.set_binding(segment[api.ID], VIF_TYPE_DVS, details,
                                status=constants.PORT_STATUS_ACTIVE)
            LOG.info("onboard_bridge: bound port %s (MAC %s) on VMware host %s to port group "
                     "%s (segment %s %s)", port["id"], port.get("mac_address"), context.host,
                     port_group, segment.get(api.NETWORK_TYPE),
                     segment.get(api.PHYSICAL_NETWORK))
            return
        LOG.debug("onboard_bridge: no port group mapped for the segments of port %s on "
                  "VMware host %s: %s", port["id"], context.host, context.segments_to_bind)

    def update_port_postcommit(self, context) -> None:
        # Unbound (host cleared) after being ours: DOWN again, so Nova hears
        # network-vif-unplugged and a later binding sends network-vif-plugged.
        if (context.original_vif_type in (portbindings.VIF_TYPE_BRIDGE, VIF_TYPE_DVS)
                and context.vif_type in (portbindings.VIF_TYPE_UNBOUND, None)
                and context.current.get("status") == constants.PORT_STATUS_ACTIVE):
            directory.get_plugin().update_port_status(
                context.plugin_context, context.current["id"], constants.PORT_STATUS_DOWN)
