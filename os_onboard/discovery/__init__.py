"""Discovery: read many hypervisor endpoints at once through their drivers (bounded pool,
per-host deadlines); see :mod:`os_onboard.drivers` for the drivers themselves."""
