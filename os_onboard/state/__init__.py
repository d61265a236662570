"""os-onboard's own state: inventory snapshots (later: plans, journals, audit)."""

from os_onboard.state.store import SnapshotInfo, StateStore, default_url

__all__ = ["SnapshotInfo", "StateStore", "default_url"]
