"""Volume resolvers: a VM disk -> the Cinder backend reference that adopts it.

See :mod:`~os_onboard.mapping.resolvers.base` for the contract. Resolvers are
found by driver kind through the ``os_onboard.volume_resolvers`` entry points
(:func:`resolver_for`); :func:`resolve_disk` picks the one backend of a disk.
"""

from os_onboard.mapping.resolvers.base import (
    BackendConfig,
    BackendReference,
    Confidence,
    Lookup,
    ManageableVolume,
    ResolverOptions,
    VolumeResolver,
)
from os_onboard.mapping.resolvers.manageable import lookup_from_manageable, lookup_from_table
from os_onboard.mapping.resolvers.registry import (
    available_resolvers,
    resolve_disk,
    resolver_for,
    wants_manageable_list,
)

__all__ = [
    "BackendConfig",
    "BackendReference",
    "Confidence",
    "Lookup",
    "ManageableVolume",
    "ResolverOptions",
    "VolumeResolver",
    "available_resolvers",
    "lookup_from_manageable",
    "lookup_from_table",
    "resolve_disk",
    "resolver_for",
    "wants_manageable_list",
]
