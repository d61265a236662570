"""Command line: ``os-onboard`` and the ``openstack onboard`` plugin (cliff)."""
