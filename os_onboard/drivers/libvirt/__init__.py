"""libvirt discovery driver."""
