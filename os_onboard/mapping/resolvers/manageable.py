"""Resolving against Cinder's manageable list, and lookups fed from lists.

``GET /v3/{project_id}/manageable_volumes/detail?host=…`` (microversion 3.8)
lists what a backend pool could manage: each entry's ``reference`` is exactly
what the manage call wants back, with size, safe_to_manage/reason_not_safe,
cinder_id (already managed) and driver-specific ``extra_info``. The cloud side
fetches it (all pages); everything here only reads it.

:class:`ManageableListResolver` matches a disk against the entries' reference
values and ``extra_info`` strings, by two kinds of keys (option ``match``):

* ``page83``: the LUN's page-83 id in its usual spellings, plus vendor ids that
  are unique across arrays (Pure volume serial, NetApp LUN serial);
* ``name``: the disk's own name on its storage (RBD image, LV, pool volume),
  only when that storage is ``namespace`` (the RBD pool or VG the backend
  serves): names alone repeat across pools and hosts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

from os_onboard.exceptions import ConfigError, ResolutionError
from os_onboard.inventory.models import Disk, HostInventory
from os_onboard.mapping.resolvers.base import (
    BackendConfig,
    BackendReference,
    Confidence,
    Lookup,
    ManageableVolume,
    ResolverOptions,
    VolumeResolver,
)
from os_onboard.mapping.resolvers.facts import (
    disk_notes,
    logical_volume,
    pool_volume,
    rbd_image,
)
from os_onboard.mapping.resolvers.layouts import vendor_keys
from os_onboard.mapping.resolvers.naa import disk_page83, is_hex_id, same_key

_NAME_KEYS = ("source-name", "name", "source-id")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


class ManageableOptions(ResolverOptions):
    match: list[Literal["page83", "name"]] = ["page83"]
    namespace: str | None = None  # RBD pool / VG / libvirt pool source the names live in


class ManageableListResolver(VolumeResolver):
    kind = "cinder-manageable"
    Options = ManageableOptions
    needs_manageable = True
    options: ManageableOptions

    def __init__(self, config: BackendConfig, *, lookup: Lookup | None = None,
                 manageable: Iterable[ManageableVolume] | None = None) -> None:
        super().__init__(config, lookup=lookup, manageable=manageable)
        if self.manageable is None:
            raise ConfigError(f"backend {self.config.name!r} ({self.kind}) needs Cinder's "
                              "manageable list")
        if "name" in self.options.match and not self.options.namespace:
            raise ConfigError(f"backend {self.config.name!r}: matching by name needs the "
                              "namespace (RBD pool or VG) the names live in")

    def _keys(self, disk: Disk, host: HostInventory | None) -> list[str]:
        keys: list[str] = []
        if "page83" in self.options.match:
            page83 = disk_page83(disk, host)
            if page83 is not None and page83.host_side:
                keys.extend(vendor_keys(page83.naa))
        if "name" in self.options.match:
            ns = self.options.namespace
            rbd, lv = rbd_image(disk, host), logical_volume(disk, host)
            vol = pool_volume(disk, host)
            if rbd is not None and rbd.pool == ns and not rbd.namespace and not rbd.snapshot:
                keys.append(rbd.image)
            elif lv is not None and lv.vg == ns:
                keys.append(lv.lv)
            elif vol is not None and (vol[0].source or vol[0].name) == ns:
                keys.append(vol[1])
        return keys

    def resolve(self, disk: Disk, host: HostInventory | None = None) -> BackendReference | None:
        keys = self._keys(disk, host)
        hits: dict[int, tuple[ManageableVolume, str]] = {}
        for index, entry in enumerate(self.manageable or ()):
            values = [*_strings(entry.reference), *_strings(entry.extra_info)]
            key = next((k for k in keys if any(same_key(k, v) for v in values)), None)
            if key is not None:
                hits[index] = (entry, key)
        if not hits:
            return None
        if len(hits) > 1:
            refs = ", ".join(str(e.reference) for e, _ in hits.values())
            raise ResolutionError(f"disk {disk.target} matches {len(hits)} entries of Cinder's "
                                  f"manageable list for {self.config.cinder_host}: {refs}")
        entry, key = next(iter(hits.values()))
        notes = disk_notes(disk)
        if entry.cinder_id:
            notes.append(f"Cinder already manages it as volume {entry.cinder_id}")
        elif not entry.safe_to_manage:
            notes.append(f"Cinder lists it as not safe to manage: {entry.reason_not_safe}")
        ref = {k: v if isinstance(v, str | bool) else str(v) for k, v in entry.reference.items()}
        return BackendReference(backend=self.config.name, cinder_host=self.config.cinder_host,
                                ref=ref, method="manageable-list", confidence=Confidence.LISTED,
                                evidence=f"{key} in Cinder's manageable list", notes=notes,
                                listing=entry)


def _lookup(pairs: Iterable[tuple[str, str]]) -> Lookup:
    table: dict[str, set[str]] = {}
    for key, name in pairs:
        # hex ids (serials, WWNs) match in any case; other keys exactly
        table.setdefault(key.casefold() if is_hex_id(key) else key, set()).add(name)

    def lookup(key: str) -> str | None:
        names = table.get(key.casefold() if is_hex_id(key) else key, set())
        if len(names) > 1:
            raise ResolutionError(f"{key} names {len(names)} volumes: {sorted(names)}")
        return next(iter(names), None)

    return lookup


def lookup_from_table(table: Mapping[str, str]) -> Lookup:
    """A :data:`Lookup` over a vendor inventory export: serial/WWN -> volume name."""
    return _lookup(table.items())


def lookup_from_manageable(entries: Iterable[ManageableVolume], extra_key: str) -> Lookup:
    """A :data:`Lookup` from ``extra_info[extra_key]`` to the entry's reference name.

    For drivers whose manageable list carries the id a resolver keys on (a
    serial, a WWN) in ``extra_info``; a key on two entries is reported, not guessed.
    """
    pairs = []
    for entry in entries:
        info = entry.extra_info if isinstance(entry.extra_info, Mapping) else {}
        name = next((entry.reference[k] for k in _NAME_KEYS if k in entry.reference), None)
        if isinstance(info.get(extra_key), str) and isinstance(name, str):
            pairs.append((info[extra_key], name))
    return _lookup(pairs)
