"""Dell PowerMax / VMAX3: page-83 id -> (array, device id) -> ``{"source-name": device}``.

Cinder's PowerMax driver takes the device id from source-name (or source-id)
and the array from the last '+' part of the volume's host pool, e.g.
``host@powermax#Diamond+SRP_1+000197800123`` (powermax/utils.py
get_array_and_device_id), so the configured pool itself pins the array.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from os_onboard.exceptions import ConfigError
from os_onboard.mapping.resolvers.base import (
    BackendConfig,
    BackendReference,
    Lookup,
    ManageableVolume,
)
from os_onboard.mapping.resolvers.layouts import EMC_SYMMETRIX, powermax_device
from os_onboard.mapping.resolvers.naa import Page83
from os_onboard.mapping.resolvers.san import SanResolver


class PowerMaxResolver(SanResolver):
    kind = "dell-powermax"
    ouis = frozenset({EMC_SYMMETRIX})
    checks_array = True

    def __init__(self, config: BackendConfig, *, lookup: Lookup | None = None,
                 manageable: Iterable[ManageableVolume] | None = None) -> None:
        super().__init__(config, lookup=lookup, manageable=manageable)
        self.array = self.config.pool.rsplit("+", 1)[-1]
        if not re.fullmatch(r"\d{12}", self.array):
            raise ConfigError(f"backend {self.config.name!r}: a PowerMax pool ends in "
                              f"'+<12-digit array id>', not {self.config.pool!r}")

    def resolve_naa(self, page83: Page83, *, pinned: bool,
                    notes: list[str]) -> BackendReference | None:
        symm, device = powermax_device(page83.naa)
        if symm != self.array:
            return None  # a device of another array
        notes.append("Cinder's PowerMax driver refuses devices in a masking view "
                     "(common.py _check_lun_valid_for_cinder_management)")
        return self.reference({"source-name": device}, method="naa-device-id",
                              confidence=self.confidence(pinned),
                              evidence=f"{page83}, array {symm}, device {device}", notes=notes)
