"""vsphere:// URIs and where the password comes from (never the URI)."""

from __future__ import annotations

import pytest

from os_onboard.drivers.vsphere.endpoint import Endpoint, find_password, parse_uri
from os_onboard.exceptions import ConfigError


def test_defaults_verify_tls_on_443():
    assert parse_uri("vsphere://admin@vc1.example.com/") == Endpoint(
        host="vc1.example.com", port=443, user="admin", protocol="https", insecure=False)


def test_lab_switches():
    ep = parse_uri("vsphere://onboard@127.0.0.1:18989/?scheme=http&insecure=1")
    assert (ep.protocol, ep.port, ep.insecure) == ("http", 18989, True)
    assert ep.display == "vsphere://onboard@127.0.0.1:18989/"


@pytest.mark.parametrize("uri", [
    "vsphere://vc1/",  # no user
    "vsphere://admin@vc1/?verify=0",  # unknown switch
    "vsphere://admin@vc1/?scheme=ftp",
    "qemu:///system",
])
def test_bad_uris_are_config_errors(uri):
    with pytest.raises(ConfigError):
        parse_uri(uri)


def test_password_in_uri_is_refused_without_echoing_it():
    with pytest.raises(ConfigError) as err:
        parse_uri("vsphere://admin:s3cret-pw@vc1/")
    assert "s3cret-pw" not in str(err.value)
    assert "VSPHERE_PASSWORD" in str(err.value)


def test_password_from_environment_first(monkeypatch, tmp_path):
    monkeypatch.setenv("VSPHERE_PASSWORD", "from-env")
    monkeypatch.setenv("OS_ONBOARD_CONFIG", str(tmp_path / "none.yaml"))
    assert find_password(parse_uri("vsphere://a@vc1/")) == "from-env"


def test_password_from_config_file_by_host_port_then_host(monkeypatch, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("vsphere:\n  passwords:\n    vc1: by-host\n    'vc2:8443': by-port\n")
    monkeypatch.delenv("VSPHERE_PASSWORD", raising=False)
    monkeypatch.setenv("OS_ONBOARD_CONFIG", str(config))
    assert find_password(parse_uri("vsphere://a@vc1/")) == "by-host"
    assert find_password(parse_uri("vsphere://a@vc2:8443/")) == "by-port"
    with pytest.raises(ConfigError, match="no password for vsphere://a@vc3:443/"):
        find_password(parse_uri("vsphere://a@vc3/"))


def test_default_config_path_is_xdg(monkeypatch, tmp_path):
    (tmp_path / "os-onboard").mkdir()
    (tmp_path / "os-onboard" / "config.yaml").write_text(
        "vsphere:\n  passwords:\n    vc1: xdg\n")
    monkeypatch.delenv("VSPHERE_PASSWORD", raising=False)
    monkeypatch.delenv("OS_ONBOARD_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert find_password(parse_uri("vsphere://a@vc1/")) == "xdg"


def test_broken_config_does_not_quote_its_lines(monkeypatch, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("vsphere:\n  passwords:\n    vc1: [unclosed-secret\n")
    monkeypatch.delenv("VSPHERE_PASSWORD", raising=False)
    monkeypatch.setenv("OS_ONBOARD_CONFIG", str(config))
    with pytest.raises(ConfigError) as err:
        find_password(parse_uri("vsphere://a@vc1/"))
    assert "unclosed-secret" not in str(err.value)
