"""Hitachi VSP (Cinder HBSD driver): page-83 id -> LDEV number -> ``{"source-id": LDEV}``."""

from __future__ import annotations

from os_onboard.mapping.resolvers.base import BackendReference
from os_onboard.mapping.resolvers.layouts import HITACHI, hitachi_ldev
from os_onboard.mapping.resolvers.naa import Page83
from os_onboard.mapping.resolvers.san import SanResolver


class HitachiResolver(SanResolver):
    kind = "hitachi-vsp"
    ouis = frozenset({HITACHI})

    def resolve_naa(self, page83: Page83, *, pinned: bool,
                    notes: list[str]) -> BackendReference | None:
        ldev = hitachi_ldev(page83.naa)
        # hbsd_common.py _str2int takes decimal digits or 'xx:xx:xx' hex for source-id
        notes.append("Cinder's HBSD driver refuses mapped LDEVs and sizes that are not whole "
                     "GiB (hbsd_rest.py check_ldev_manageability)")
        return self.reference({"source-id": str(ldev)}, method="naa-ldev",
                              confidence=self.confidence(pinned),
                              evidence=f"{page83}, LDEV 00:{ldev >> 8:02X}:{ldev & 0xFF:02X}",
                              notes=notes)
