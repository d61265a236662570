"""HPE 3PAR / Primera: page-83 id -> VV WWN -> (lookup) VV name -> ``{"source-name": …}``."""

from __future__ import annotations

from os_onboard.mapping.resolvers.base import BackendReference, Confidence
from os_onboard.mapping.resolvers.layouts import HPE_3PAR, hpe3par_wwn
from os_onboard.mapping.resolvers.naa import Page83
from os_onboard.mapping.resolvers.san import SanResolver


class Hpe3parResolver(SanResolver):
    kind = "hpe-3par"
    ouis = frozenset({HPE_3PAR})
    needs_lookup = "VV WWN (upper-case hex, as showvv -d prints it) -> virtual volume name"

    def resolve_naa(self, page83: Page83, *, pinned: bool,
                    notes: list[str]) -> BackendReference | None:
        wwn = hpe3par_wwn(page83.naa)
        name = self.look_up(wwn, "3PAR VV WWN")
        # source-id would name a VV Cinder itself unmanaged ('unm-…'): source-name is the one
        # for a foreign VV (hpe_3par_common.py _get_existing_volume_ref_name)
        notes.append("Cinder's 3PAR driver renames the VV to its own naming scheme")
        return self.reference({"source-name": name}, method="lookup-3par-wwn",
                              confidence=Confidence.LISTED, evidence=str(page83), notes=notes)
