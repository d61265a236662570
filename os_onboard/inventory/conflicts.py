"""Find identifiers that must be unique across an estate but are not.

Conflicts are data, not crashes: a duplicate MAC cannot become two Neutron
ports, and a UUID seen twice cannot become two Nova servers, so the planner
blocks them; discovery only reports them.

A UUID defined on two hosts but *running* on at most one is the normal trace
of a live migration that kept the source definition (``virsh migrate`` without
``--undefinesource``); it is reported with that explanation, not as a clash.
"""

from __future__ import annotations

from collections import defaultdict

from os_onboard.inventory.models import Conflict, Inventory, PowerState


def find_conflicts(inventory: Inventory) -> list[Conflict]:
    macs: dict[str, list[str]] = defaultdict(list)
    uuids: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for host, vm in inventory.iter_vms():
        member = f"{host.host.uri} {vm.name}"
        uuids[vm.uuid].append((member, vm.power_state != PowerState.SHUTOFF))
        for mac in {nic.mac for nic in vm.nics}:
            macs[mac].append(member)
    conflicts = [Conflict(kind="duplicate-mac", value=mac, members=members)
                 for mac, members in sorted(macs.items()) if len(members) > 1]
    for uuid, holders in sorted(uuids.items()):
        if len(holders) < 2:
            continue
        running = sum(1 for _, active in holders if active)
        detail = ("defined on several hosts, running on at most one: a leftover definition "
                  "(e.g. after a live migration)" if running <= 1 else
                  f"active on {running} hosts at once")
        conflicts.append(Conflict(kind="duplicate-uuid", value=uuid,
                                  members=[m for m, _ in holders], detail=detail))
    return conflicts
