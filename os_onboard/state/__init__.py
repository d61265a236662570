"""os-onboard's own state, one module per thing it holds.

* :mod:`.store` - the database (any SQLAlchemy URL) and inventory snapshots;
* :mod:`.journal` - plans and the apply journal;
* :mod:`.audit` - the reconciler's audit log;
* :mod:`.drift_queue` - drift waiting for OpenStack;
* :mod:`.records_cache` - OpenStack's records as the last pass read them;
* :mod:`.statuses` - the statuses stored and reported (StrEnums).

Each of the four opens on a :class:`StateStore` and creates its tables then;
they import the store, never one another, and the store imports none of them.
"""

from os_onboard.state.store import SnapshotInfo, StateStore, default_url

__all__ = ["SnapshotInfo", "StateStore", "default_url"]
