"""IBM Storwize / SVC / FlashSystem: the page-83 id is the vdisk UID -> ``{"source-id": UID}``."""

from __future__ import annotations

from os_onboard.mapping.resolvers.base import BackendReference
from os_onboard.mapping.resolvers.layouts import IBM, storwize_vdisk_uid
from os_onboard.mapping.resolvers.naa import Page83
from os_onboard.mapping.resolvers.san import SanOptions, SanResolver


class StorwizeOptions(SanOptions):
    # The running VM's vdisk is mapped to its hypervisor; Cinder's driver refuses
    # mapped vdisks unless the ref says manage_if_in_use (storwize_svc_common.py
    # manage_existing_get_size), and tests it for truth, so it must be a JSON bool.
    manage_if_in_use: bool = True


class StorwizeResolver(SanResolver):
    kind = "ibm-storwize-svc"
    Options = StorwizeOptions
    options: StorwizeOptions
    ouis = frozenset({IBM})

    def resolve_naa(self, page83: Page83, *, pinned: bool,
                    notes: list[str]) -> BackendReference | None:
        ref: dict[str, str | bool] = {"source-id": storwize_vdisk_uid(page83.naa)}
        if self.options.manage_if_in_use:
            ref["manage_if_in_use"] = True
        else:
            notes.append("manage_if_in_use is off: Cinder refuses the vdisk while it is mapped")
        return self.reference(ref, method="naa-vdisk-uid", confidence=self.confidence(pinned),
                              evidence=str(page83), notes=notes)
