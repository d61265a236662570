"""NetApp ONTAP: page-83 id -> LUN serial -> (lookup) LUN path or UUID -> vendor ref.

Cinder's ONTAP block driver accepts ``{"source-name": "/vol/<flexvol>/<lun>"}``
(the LUN path) or ``{"source-id": <LUN UUID>}`` (block_base.py
_get_existing_vol_with_manage_ref); neither is in the page-83 id, whose vendor
part is the LUN serial, hence the lookup (``lun show -fields serial,path,uuid``).
"""

from __future__ import annotations

import re

from os_onboard.exceptions import ResolutionError
from os_onboard.mapping.resolvers.base import BackendReference, Confidence
from os_onboard.mapping.resolvers.layouts import NETAPP, NETAPP_7MODE, netapp_lun_serial
from os_onboard.mapping.resolvers.naa import Page83
from os_onboard.mapping.resolvers.san import SanResolver

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class NetAppResolver(SanResolver):
    kind = "netapp-ontap"
    ouis = frozenset({NETAPP, NETAPP_7MODE})
    needs_lookup = "LUN serial (12 characters, case-sensitive) -> LUN path or LUN UUID"

    def resolve_naa(self, page83: Page83, *, pinned: bool,
                    notes: list[str]) -> BackendReference | None:
        if page83.naa.oui == NETAPP_7MODE:
            raise ResolutionError(f"{page83} is a Data ONTAP 7-Mode LUN; Cinder's NetApp "
                                  "driver manages clustered ONTAP LUNs only")
        serial = netapp_lun_serial(page83.naa)
        found = self.look_up(serial, "NetApp LUN serial")
        if found.startswith("/vol/"):
            ref = {"source-name": found}
        elif _UUID.match(found):
            ref = {"source-id": found}
        else:
            raise ResolutionError(f"lookup gave {found!r} for NetApp LUN serial {serial}: "
                                  "neither a LUN path (/vol/…) nor a LUN UUID")
        return self.reference(ref, method="lookup-netapp-serial", confidence=Confidence.LISTED,
                              evidence=f"{page83}, LUN serial {serial}", notes=notes)
