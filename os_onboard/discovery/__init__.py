"""Discovery: read-only hypervisor drivers that produce the inventory."""
