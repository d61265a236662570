"""The volume resolver contract: a hypervisor disk -> a Cinder *manage existing* reference.

Cinder adopts a backend object through ``POST /v3/{project_id}/manageable_volumes``
with the cinder-volume ``host`` (``host@backend#pool``) and a driver-specific
``ref`` (``{"source-name": …}``, ``{"source-id": …}``, or vendor keys). The
hypervisor only knows a path, an RBD name, or a WWN / SCSI page-83 id. A
:class:`VolumeResolver` closes that gap for one configured backend.

The contract:

* **Pure.** :meth:`VolumeResolver.resolve` reads only its arguments and what was
  given at construction: the :class:`BackendConfig`, an optional :data:`Lookup`,
  and optionally Cinder's manageable list for that backend. No I/O, so a plan
  is reproducible and tests need no network.
* **Three answers.** A :class:`BackendReference` when the disk is on this
  backend; ``None`` when it plainly is not (other storage kind, vendor, pool or
  array); :class:`~os_onboard.exceptions.ResolutionError` when it is (or claims
  to be) on this backend but no reference can be made: a malformed or
  conflicting identifier, a lookup without the volume, a pinned array that
  Cinder does not list.
* **Say how sure.** Every reference carries a :class:`Confidence`, the method
  used and the evidence (which identifier, from where), so a plan can show it.
* **Lookups are injected.** Where the backend name cannot be derived from the
  identifiers (Pure's volume name from its serial, NetApp's LUN path, 3PAR's
  VV name), the resolver is given a :data:`Lookup`; the cloud side builds one
  from Cinder's manageable list or a vendor inventory export
  (:mod:`~os_onboard.mapping.resolvers.manageable`).
* **Cross-checked when possible.** Given Cinder's manageable list, a derived
  reference must appear in it (then it is ``LISTED``), or resolution fails.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import ConfigDict, Field, ValidationError, field_validator

from os_onboard.exceptions import ConfigError, ResolutionError
from os_onboard.inventory.models import Disk, HostInventory, _Model
from os_onboard.mapping.resolvers.naa import same_key

#: Backend-specific key (serial, WWN, …) -> the backend's name for the volume, or None.
Lookup = Callable[[str], str | None]

_CINDER_HOST = re.compile(r"^[^@#\s]+@[^@#\s]+#[^#\s]+$")


class Confidence(StrEnum):
    """How a reference was established, strongest first."""

    LISTED = "listed"  # the backend's own inventory (manageable list, lookup) names the volume
    DERIVED = "derived"  # computed; the pool/cluster/array is confirmed by configuration
    PLAUSIBLE = "plausible"  # computed; only kind/vendor matched, a sibling backend could too


RANK = {Confidence.LISTED: 3, Confidence.DERIVED: 2, Confidence.PLAUSIBLE: 1}


class BackendConfig(_Model):
    """One Cinder backend that adopted disks may land on."""

    name: str = Field(description="our name for the backend, e.g. 'ceph-legacy'")
    cinder_host: str = Field(description="cinder-volume host@backend#pool")
    driver: str = Field(description="resolver kind: entry point in os_onboard.volume_resolvers")
    options: dict[str, Any] = Field(default_factory=dict, description="driver-specific")
    cross_check: bool = Field(default=False, description=(
        "plan reads Cinder's manageable list of cinder_host (one request per plan) and "
        "blocks a disk whose reference it does not list, e.g. an object renamed or "
        "removed since discovery"))

    @field_validator("cinder_host")
    @classmethod
    def _host_backend_pool(cls, value: str) -> str:
        if not _CINDER_HOST.match(value):
            raise ValueError(f"{value!r} is not of the form host@backend#pool")
        return value

    @property
    def pool(self) -> str:
        return self.cinder_host.rsplit("#", 1)[1]


class ManageableVolume(_Model):
    """One entry of Cinder's ``GET /v3/{project_id}/manageable_volumes/detail``."""

    # The API may grow fields; reading it must not break on them.
    model_config = ConfigDict(extra="ignore")

    reference: dict[str, Any]
    size: int | None = Field(default=None, description="GiB, rounded up by the driver")
    safe_to_manage: bool = False
    reason_not_safe: str | None = None
    cinder_id: str | None = Field(default=None, description="set when Cinder already manages it")
    extra_info: Any = None


class BackendReference(_Model):
    """Where a disk lives in Cinder's terms: the body of a manage-existing request."""

    backend: str
    cinder_host: str
    ref: dict[str, str | bool]
    method: str = Field(description="e.g. 'rbd-image', 'naa-vdisk-uid', 'manageable-list'")
    confidence: Confidence
    evidence: str = Field(description="the identifier used and where it came from")
    notes: list[str] = Field(default_factory=list, description="facts a plan must weigh")
    listing: ManageableVolume | None = Field(default=None, description="Cinder's entry, if seen")
    in_place: str | None = Field(default=None, description=(
        "who records the volume where it is instead of Cinder's manage API, which would "
        "move it: 'vmdk' (extras/cinder: os_onboard_cinder.vmdk_in_place)"))

    def manage_request(self) -> dict[str, Any]:
        """The ``host`` and ``ref`` members of a manage-existing request body."""
        return {"host": self.cinder_host, "ref": dict(self.ref)}


class ResolverOptions(_Model):
    """Driver-specific options; each resolver declares its own subclass."""


class VolumeResolver(abc.ABC):
    """Turns disks into references for one backend. Instances are immutable in use."""

    #: entry-point name; equals :attr:`BackendConfig.driver`
    kind: ClassVar[str]
    #: the typed form of :attr:`BackendConfig.options`
    Options: ClassVar[type[ResolverOptions]] = ResolverOptions
    #: what the injected lookup maps, e.g. "Pure volume serial -> volume name"; None: no lookup
    needs_lookup: ClassVar[str | None] = None
    #: resolves from Cinder's manageable list itself (the plan reads it whatever cross_check says)
    needs_manageable: ClassVar[bool] = False

    def __init__(self, config: BackendConfig, *, lookup: Lookup | None = None,
                 manageable: Iterable[ManageableVolume] | None = None) -> None:
        """
        :param lookup: backend key -> volume name, for vendors that need one.
        :param manageable: Cinder's manageable list for ``config.cinder_host``;
            when given, every derived reference must appear in it.
        :raises ConfigError: wrong driver kind, invalid options, missing lookup.
        """
        if config.driver != self.kind:
            raise ConfigError(f"backend {config.name!r} is {config.driver!r}, not {self.kind!r}")
        try:
            self.options = self.Options.model_validate(config.options)
        except ValidationError as exc:
            raise ConfigError(f"backend {config.name!r}: invalid options: {exc}") from exc
        if self.needs_lookup and lookup is None:
            raise ConfigError(f"backend {config.name!r} ({self.kind}) needs a lookup: "
                              f"{self.needs_lookup}")
        self.config = config
        self.lookup = lookup
        self.manageable = tuple(manageable) if manageable is not None else None

    @abc.abstractmethod
    def resolve(self, disk: Disk, host: HostInventory | None = None) -> BackendReference | None:
        """Return the reference of ``disk`` on this backend, or None if it is not on it.

        :param host: the host inventory the disk was discovered in; supplies
            host-side facts (storage pools, the host's SCSI devices, hostname).
        :raises ResolutionError: the disk is on this backend (or claims to be),
            but no reference can be made; the message says why.
        """

    def reference(self, ref: dict[str, str | bool], *, method: str, confidence: Confidence,
                  evidence: str, notes: Iterable[str] = (),
                  in_place: str | None = None) -> BackendReference:
        """Build a reference, cross-checked against the manageable list when one was given."""
        result = BackendReference(backend=self.config.name, cinder_host=self.config.cinder_host,
                                  ref=ref, method=method, confidence=confidence,
                                  evidence=evidence, notes=list(notes), in_place=in_place)
        if self.manageable is None:
            return result
        wanted = [v for v in ref.values() if isinstance(v, str)]
        hits = [e for e in self.manageable
                if any(same_key(w, v) for w in wanted for v in e.reference.values()
                       if isinstance(v, str))]
        if not hits:
            raise ResolutionError(
                f"{evidence} gives {ref} on backend {self.config.name!r}, but Cinder's "
                f"manageable list for {self.config.cinder_host} has no such volume")
        if len(hits) > 1:
            raise ResolutionError(f"{ref} matches {len(hits)} entries of Cinder's manageable "
                                  f"list for {self.config.cinder_host}")
        return result.model_copy(update={"confidence": Confidence.LISTED, "listing": hits[0]})

    def look_up(self, key: str, what: str) -> str:
        """Ask the injected lookup for ``key`` (described by ``what``).

        :raises ResolutionError: no lookup, no entry, or the lookup itself failed.
        """
        if self.lookup is None:
            raise ResolutionError(f"backend {self.config.name!r} needs a lookup for {what}")
        try:
            name = self.lookup(key)
        except ResolutionError:
            raise
        except Exception as exc:  # an injected callable: report it, never leak it
            raise ResolutionError(f"lookup of {what} {key} for backend "
                                  f"{self.config.name!r} failed: {exc}") from exc
        if not name:
            raise ResolutionError(f"{what} {key} is not in the lookup of backend "
                                  f"{self.config.name!r} (not on this array, or stale data)")
        return name

