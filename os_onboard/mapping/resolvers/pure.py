"""Pure FlashArray: page-83 id -> volume serial -> (lookup) volume name -> ``{"name": …}``.

Cinder's Pure driver reads the volume from ``existing_ref["name"]`` and refuses
any other key (pure.py _validate_manage_existing_ref), though most drivers use
source-name; its manageable list reports ``{"name": …}`` too.
"""

from __future__ import annotations

from os_onboard.exceptions import ResolutionError
from os_onboard.mapping.resolvers.base import BackendReference, Confidence
from os_onboard.mapping.resolvers.layouts import PURE, pure_serial
from os_onboard.mapping.resolvers.naa import Page83
from os_onboard.mapping.resolvers.san import SanResolver


class PureResolver(SanResolver):
    kind = "pure-flasharray"
    ouis = frozenset({PURE})
    needs_lookup = "volume serial (24 hex digits, upper case) -> Purity volume name"

    def resolve_naa(self, page83: Page83, *, pinned: bool,
                    notes: list[str]) -> BackendReference | None:
        serial = pure_serial(page83.naa)
        name = self.look_up(serial, "Pure volume serial")
        if "::" in name:
            raise ResolutionError(f"Pure volume {name!r} (serial {serial}) is in a pod; "
                                  "Cinder's Pure driver cannot manage pod volumes")
        notes.append("Cinder's Pure driver refuses volumes connected to hosts "
                     "(pure.py manage_existing): disconnect first, or adoption stops here")
        return self.reference({"name": name}, method="lookup-pure-serial",
                              confidence=Confidence.LISTED,
                              evidence=f"{page83}, serial {serial}", notes=notes)
