"""Policies per kind of drift, and what ``tolerate`` writes for each kind.

``report`` (phase 1) writes nothing to OpenStack; ``tolerate`` (phase 2) makes
the records follow the VM, one module per kind (see each for the order of its
writes and why it cannot make Nova act on the guest; docs/nova-out-of-band.md
has the Nova paths behind each rule):

* host-changed: :mod:`.migration` - instance, allocation, port bindings,
  Cinder attachment connectors.
* power-changed: :mod:`.power` - vm_state/power_state (a shutdown after a
  grace period; pmsuspend and crashes reported only).
* nic-added / nic-removed / ip-changed: :mod:`.nics` - ports, VIFs, cache.
* disk-added / disk-removed: :mod:`.disks` - volume + attachment + BDM, or
  detached in the records only.
* resized: :mod:`.resize` - flavor (planner's policy), request spec,
  allocation.
* vm-gone: :mod:`.gone` - records purged as ``unmanage`` does.
* not-adopted: reported only (``plan``/``apply`` adopt it).
"""

from __future__ import annotations

from collections.abc import Sequence

from os_onboard.exceptions import ConfigError, OnboardError
from os_onboard.reconcile.drift import Drift, DriftKind
from os_onboard.reconcile.tolerate import disks, gone, migration, nics, power, resize
from os_onboard.reconcile.tolerate.base import Context, Outcome

POLICIES = ("report", "tolerate")

__all__ = ["POLICIES", "Context", "Outcome", "Tolerator", "parse_policies"]


def parse_policies(default: str, overrides: Sequence[str]) -> dict[DriftKind, str]:
    """``--policy tolerate --kind-policy power-changed=report`` -> per-kind policy."""
    if default not in POLICIES:
        raise ConfigError(f"policy must be one of {', '.join(POLICIES)}, not {default!r}")
    policies = dict.fromkeys(DriftKind, default)
    for item in overrides:
        kind, _, policy = item.partition("=")
        try:
            policies[DriftKind(kind)] = policy if policy in POLICIES else _bad(item)
        except ValueError:
            kinds = ", ".join(k.value for k in DriftKind)
            raise ConfigError(f"--kind-policy {item!r}: kind must be one of {kinds}") from None
    return policies


def _bad(item: str) -> str:
    raise ConfigError(f"--kind-policy {item!r}: policy must be one of {', '.join(POLICIES)}")


class Tolerator:
    """Applies one pass's drifts by policy, one executor per kind."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def apply(self, drift: Drift, policy: str) -> Outcome:
        if policy == "report":
            return Outcome(drift, "reported", "policy report: nothing written")
        try:
            return self._execute(drift)
        except OnboardError as exc:
            return Outcome(drift, "failed", f"{exc} (the next pass retries)")

    def _execute(self, drift: Drift) -> Outcome:
        ctx, kind = self.ctx, drift.kind
        if kind is DriftKind.HOST_CHANGED:
            return migration.moved(ctx, drift)
        if kind is DriftKind.POWER_CHANGED:
            return power.power(ctx, drift)
        if kind is DriftKind.NIC_ADDED:
            return nics.added(ctx, drift)
        if kind is DriftKind.NIC_REMOVED:
            return nics.removed(ctx, drift, self._host(drift))
        if kind is DriftKind.IP_CHANGED:
            return nics.ip_changed(ctx, drift, self._host(drift))
        if kind is DriftKind.DISK_ADDED:
            return disks.added(ctx, drift)
        if kind is DriftKind.DISK_REMOVED:
            return disks.removed(ctx, drift)
        if kind is DriftKind.RESIZED:
            return resize.resized(ctx, drift)
        if kind is DriftKind.VM_GONE:
            return gone.gone(ctx, drift)
        return Outcome(drift, "reported", "reported only: adopt it with 'os-onboard plan' "
                       "and 'apply'")

    def _host(self, drift: Drift) -> str:
        """The nova-compute host the VM runs under (for the network cache helper)."""
        found = self.ctx.vm(drift.uuid)
        uri_host = found[0] if found else None
        for host in (self.ctx.inventory.hosts if self.ctx.inventory else []):
            if host.host.uri == uri_host:
                return next((h["service_host"] for h in self.ctx.hypervisors
                             if h["node"] == host.host.hostname), host.host.hostname or "")
        return ""
