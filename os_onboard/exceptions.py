"""The one exception tree of os-onboard.

::

    OnboardError
    ├── ConfigError                 bad configuration or command-line input
    │   └── ResolutionError         a disk cannot be mapped to a Cinder backend reference
    ├── DiscoveryError              a hypervisor could not be read
    │   ├── HostUnreachable         connect failed or timed out (temporary)
    │   ├── ReadOnlyViolation       something tried to write over a read-only link
    │   └── ObjectVanished          a VM/volume disappeared while being read
    ├── InventoryError              an inventory document is malformed
    ├── CloudError                  the OpenStack side failed
    │   └── NovaHelperError         the Nova-side helper could not do its job
    └── StateStoreError             the local state store failed

Foreign exceptions (libvirt, SQLAlchemy, ...) are translated to these at the
module that imports the foreign library, so callers never see them.
``temporary`` tells a caller whether retrying later may succeed.
"""

from __future__ import annotations


class OnboardError(Exception):
    """Base class of every error raised by os-onboard."""

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


class InventoryError(OnboardError):
    """An inventory document does not match the schema."""


class CloudError(OnboardError):
    """An OpenStack service, or os-onboard's helper inside it, failed."""


class NovaHelperError(CloudError):
    """The Nova-side helper is not configured, not installed, or failed."""


class StateStoreError(OnboardError):
    """The local state store could not be read or written."""
