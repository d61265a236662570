"""A password typed into a hypervisor URI never comes back in an error message."""

from __future__ import annotations

import pytest

from os_onboard.discovery.runner import discover_hosts
from os_onboard.drivers.registry import driver_for
from os_onboard.exceptions import ConfigError


def test_no_driver_message_hides_the_password():
    with pytest.raises(ConfigError) as info:
        driver_for("foo://admin:s3cret-pw@h.example.com/")
    assert "s3cret-pw" not in str(info.value)
    assert "foo://admin:***@h.example.com/" in str(info.value)


@pytest.mark.parametrize("uri", [
    "vsphere://admin:s3cret-pw@vc1.example.com/",
    "qemu+ssh://root:s3cret-pw@hv1.example.com/system",
])
def test_discovery_refuses_and_records_the_uri_without_it(uri):
    inventory = discover_hosts([uri])
    (host,) = inventory.hosts
    assert "s3cret-pw" not in host.model_dump_json()
    assert "password in" in host.problems[0].message
