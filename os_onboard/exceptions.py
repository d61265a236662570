"""The one exception tree of os-onboard.

::

    OnboardError
    ├── ConfigError                 bad configuration or command-line input
    │   ├── ResolutionError         a disk cannot be mapped to a Cinder backend reference
    │   └── StalePlanError          the plan no longer matches OpenStack: plan again
    ├── DiscoveryError              a hypervisor could not be read
    │   ├── HostUnreachable         connect failed or timed out (temporary)
    │   ├── ReadOnlyViolation       something tried to write over a read-only link
    │   ├── ObjectVanished          a VM/volume disappeared while being read (temporary)
    │   └── MalformedXml            libvirt XML that is not the expected document
    ├── InventoryError              an inventory document is malformed
    ├── CloudError                  the OpenStack side failed (``status_code``: HTTP status)
    │   ├── TemporaryCloudError     a service down, timed out or 5xx (temporary)
    │   ├── VolumeWentToError       a volume went to an error status while waited for
    │   └── NovaHelperError         the Nova-side helper could not do its job
    ├── StateStoreError             the local state store failed
    └── HostWriteError              a write on the hypervisor host was refused
        ├── RenameError             a domain XML or rename map cannot be read or rewritten
        └── HookConflict            a qemu hook os-onboard did not install is in the way

Foreign exceptions (libvirt, SQLAlchemy, openstacksdk, ...) are translated to
these at the module that imports the foreign library, so callers never see them.

Retry semantics are carried by the type: ``temporary`` is True when the same
call may succeed later without anyone changing anything (a service or host
down, a lost answer). ``apply`` retries such a step in place, with backoff,
before journaling it failed; the reconciler queues such a drift and its
watcher retries it with backoff. A permanent error (``temporary`` False)
needs a person or a new plan: it fails the step at once, and the reconciler
reports it failed without queuing it.

This module is imported by the libvirt qemu hook, which runs under the
system python3: standard library only.
"""

from __future__ import annotations


class OnboardError(Exception):
    """Base class of every error raised by os-onboard."""

    #: retrying later, unchanged, may succeed (see the module docstring)
    temporary: bool = False


class ConfigError(OnboardError):
    """Configuration, mapping or command-line input is invalid."""


class ResolutionError(ConfigError):
    """A disk cannot be turned into a Cinder backend reference.

    The disk is (or claims to be) on a configured backend, but its identifiers
    are malformed or contradict each other, the backend's lookup does not know
    the volume, or several backends claim it. The fix is in the backend
    configuration, its lookup data, or the inventory; retrying alone won't help.
    """


class StalePlanError(ConfigError):
    """The plan no longer matches OpenStack; make a new one."""


class DiscoveryError(OnboardError):
    """A hypervisor (or one object on it) could not be read."""


class HostUnreachable(DiscoveryError):
    """The host did not answer: connection refused, timed out, or dropped."""

    temporary = True


class ReadOnlyViolation(DiscoveryError):
    """A mutating call was attempted on a read-only connection and refused."""


class ObjectVanished(DiscoveryError):
    """The object disappeared while it was being read (e.g. domain undefined)."""

    temporary = True


class MalformedXml(DiscoveryError):
    """A libvirt XML document cannot be parsed, is not the element expected,
    or lacks an identity (a domain's name or UUID)."""


class InventoryError(OnboardError):
    """An inventory document does not match the schema."""


class CloudError(OnboardError):
    """An OpenStack service, or os-onboard's helper inside it, failed.

    ``status_code`` is the HTTP status the service answered, None when there
    was no answer or the error is not an HTTP one: callers branch on it (a
    409 on a create means "it exists") instead of parsing the message.
    """

    def __init__(self, message: str = "", *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code: int | None = status_code


class TemporaryCloudError(CloudError):
    """The service did not answer or answered 5xx: retrying later may work."""

    temporary = True


class VolumeWentToError(CloudError):
    """A volume os-onboard waited for reached an error status instead."""

    def __init__(self, volume_id: str, status: str) -> None:
        super().__init__(f"volume {volume_id} went to {status}; see cinder-volume's log")
        self.volume_id, self.status = volume_id, status


class NovaHelperError(CloudError):
    """The Nova-side helper is not configured, not installed, or failed."""


class StateStoreError(OnboardError):
    """The local state store could not be read or written."""


class HostWriteError(OnboardError):
    """os-onboard's few writes on a hypervisor host (the rename map, the
    persistent definition, the qemu hook) could not be made safely."""


class RenameError(HostWriteError):
    """A domain XML cannot be read, so its disk sources cannot be rewritten;
    or a rename map is not one of ours, or holds an invalid rename."""


class HookConflict(HostWriteError):
    """A ``qemu`` hook that os-onboard did not install is in the way."""
