"""Keystone and the OpenStack APIs: TLS as clouds.yaml says, verified by default.

os-onboard passes only the cloud's name to openstacksdk; ``verify: false`` or
``insecure: true`` in clouds.yaml are the insecure switches (openstacksdk's
own names), and os-onboard warns when a cloud uses one. No network:
openstacksdk builds the session without calling Keystone.
"""

from __future__ import annotations

import logging

import pytest

from os_onboard.cloud import openstack as adapter
from os_onboard.cloud.openstack import OpenStackCloud

# openstacksdk's own deprecation notice when it builds a session, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Support for InfluxDB")

AUTH = ("{auth_url: 'https://keystone.example.com:5000/v3', username: u, password: pw, "
        "project_name: p, user_domain_name: Default, project_domain_name: Default}")


@pytest.fixture
def clouds(tmp_path, monkeypatch):
    path = tmp_path / "clouds.yaml"
    path.write_text(f"""clouds:
  plain: {{auth: {AUTH}}}
  private-ca: {{auth: {AUTH}, cacert: {tmp_path}/ca.pem}}
  verify-false: {{auth: {AUTH}, verify: false}}
  insecure-true: {{auth: {AUTH}, insecure: true}}
""")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    for var in ("OS_INSECURE", "OS_CACERT", "OS_CLOUD"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.mark.parametrize("cloud", ["plain", "private-ca"])
def test_verified_by_default(clouds, caplog, cloud):
    conn = OpenStackCloud(cloud)._conn
    assert conn.session.verify == (True if cloud == "plain" else f"{clouds}/ca.pem")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("cloud", ["verify-false", "insecure-true"])
def test_insecure_switches_come_from_clouds_yaml_and_are_warned(clouds, caplog, cloud):
    conn = OpenStackCloud(cloud)._conn
    assert conn.session.verify is False
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert f"cloud {cloud}: TLS certificate verification is off" in warning.getMessage()


def test_os_onboard_passes_the_cloud_name_only(monkeypatch):
    calls = []

    class _Conn:
        class session:
            verify = True

    def fake_connect(*args, **kwargs):
        calls.append((args, kwargs))
        return _Conn()

    monkeypatch.setattr(adapter.openstack, "connect", fake_connect)
    OpenStackCloud("lab-admin")
    assert calls == [((), {"cloud": "lab-admin"})]  # never verify=, insecure=, cacert=
