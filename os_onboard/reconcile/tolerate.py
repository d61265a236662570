"""Policies per kind of drift, and what ``tolerate`` writes for each kind.

``report`` (phase 1) writes nothing to OpenStack; ``tolerate`` (phase 2) makes
the records follow the VM. Only kinds whose records os-onboard can update
without Nova acting on the guest are tolerated here (see
docs/nova-out-of-band.md for the Nova paths behind each rule):

* host-changed: Nova instance host/node/compute_id first (the source's
  delayed STOPPED event then finds the instance is not its own), then the
  Placement allocation moved to the destination's provider (one PUT with the
  consumer generation), then each port's ``binding:host_id``.
* power-changed to *paused* or back to *running* from paused: power state
  mirrored (Nova ignores a paused guest; nothing to race).

Everything else is reported only, with the reason, for now: a guest shut
down out of band is stopped by Nova itself 15 s later (harmless, the guest is
off), a guest started out of band while Nova says SHUTOFF is force-stopped by
Nova within milliseconds (no record write can win that race: set
``[workarounds] handle_virt_lifecycle_events=False`` on such hosts), and NIC,
disk and size changes need new records whose tolerate executors are not
written yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from os_onboard.cloud.nova_helper import run_helper
from os_onboard.cloud.openstack import OpenStackCloud
from os_onboard.exceptions import CloudError, ConfigError, OnboardError
from os_onboard.reconcile.drift import Drift, DriftKind

POLICIES = ("report", "tolerate")
TOLERABLE = {DriftKind.HOST_CHANGED, DriftKind.POWER_CHANGED}
NOT_YET = ("reported only: os-onboard does not write records for this kind of change yet")


@dataclass
class Outcome:
    drift: Drift
    action: str   # reported | tolerated | failed
    detail: str = ""


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
    def __init__(self, cloud: OpenStackCloud, hypervisors: list[dict],
                 nova_python: str | None = None, nova_config: Sequence[str] = ()) -> None:
        """:param hypervisors: ``cloud.hypervisors()`` as the pass read it."""
        self.cloud = cloud
        self.nova_python = nova_python
        self.nova_config = list(nova_config)
        self._providers = {h["node"]: h["uuid"] for h in hypervisors}

    def apply(self, drift: Drift, policy: str) -> Outcome:
        if policy == "report":
            return Outcome(drift, "reported", "policy report: nothing written")
        if drift.kind not in TOLERABLE:
            return Outcome(drift, "reported", NOT_YET)
        try:
            if drift.kind is DriftKind.HOST_CHANGED:
                return self._moved(drift)
            return self._power(drift)
        except OnboardError as exc:
            return Outcome(drift, "failed", f"{exc} (the next pass retries)")

    def _helper(self, item: dict) -> dict:
        [result] = run_helper("update", [], self.nova_python, self.nova_config, stdin=[item])
        if "error" in result:
            raise CloudError(f"Nova-side helper: {result['error']}")
        return result

    def _moved(self, drift: Drift) -> Outcome:
        host, node = drift.detail["host"], drift.detail["node"]
        provider = self._providers.get(node)
        if provider is None:
            raise CloudError(f"no compute node {node} in Nova: run prepare-host and start "
                             "nova-compute there")
        self._helper({"uuid": drift.uuid, "host": host, "node": node, "power_state": 1})
        current = self.cloud.allocations(drift.uuid)
        allocations = current.get("allocations") or {}
        resources: dict[str, int] = {}
        for alloc in allocations.values():
            for rc, amount in alloc.get("resources", {}).items():
                resources[rc] = resources.get(rc, 0) + amount
        if resources and list(allocations) != [provider]:
            self.cloud.put_allocations(drift.uuid, provider, resources,
                                       current["project_id"], current["user_id"],
                                       current.get("consumer_generation"))
        moved_ports = 0
        for port in self.cloud.ports(device_id=drift.uuid):
            if port["host"] != host:
                self.cloud.update_port(port["id"], binding_host_id=host)
                moved_ports += 1
        return Outcome(drift, "tolerated",
                       f"instance on {host}/{node}, allocation on {node}, "
                       f"{moved_ports} port binding(s) moved")

    def _power(self, drift: Drift) -> Outcome:
        before, after = drift.before.split(" ")[0], drift.detail["power_state"]
        if after == "paused" and before == "ACTIVE":
            self._helper({"uuid": drift.uuid, "power_state": 3, "vm_state": "paused"})
            return Outcome(drift, "tolerated", "recorded paused")
        if after == "running" and before == "PAUSED":
            self._helper({"uuid": drift.uuid, "power_state": 1, "vm_state": "active"})
            return Outcome(drift, "tolerated", "recorded active")
        return Outcome(drift, "reported",
                       "reported only: Nova itself reacts to this power change "
                       "(see docs/nova-out-of-band.md)")
