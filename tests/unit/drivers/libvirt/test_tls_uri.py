"""libvirt TLS: libvirt verifies ``qemu+tls://`` itself; ``no_verify=1`` is its insecure
switch, passed through as given and warned about by os-onboard on every connection."""

from __future__ import annotations

import logging

import pytest

from os_onboard.drivers.libvirt import api


@pytest.fixture
def opened(monkeypatch):
    uris: list[str] = []

    class _Conn:
        def close(self):
            pass

    def fake_open(uri):
        uris.append(uri)
        return _Conn()

    monkeypatch.setattr(api.libvirt, "openReadOnly", fake_open)
    return uris


@pytest.mark.parametrize("uri", [
    "qemu+tls://hv1.example.com/system",
    "qemu://hv1.example.com/system",  # a remote URI without transport is TLS too
    "qemu+tls://hv1.example.com/system?pkipath=/etc/pki/onboard",
    "qemu+tls://hv1.example.com/system?no_verify=0",
    "qemu:///system",
])
def test_verified_uris_pass_unchanged_and_quietly(opened, caplog, uri):
    api.open_read_only(uri)
    assert opened == [uri]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("uri", [
    "qemu+tls://hv1.example.com/system?no_verify=1",
    "qemu+tls://hv1.example.com/system?pkipath=/p&no_verify=1",
])
def test_no_verify_is_passed_to_libvirt_and_warned(opened, caplog, uri):
    api.open_read_only(uri)
    assert opened == [uri]  # libvirt's own switch: os-onboard does not override the operator
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage().startswith("qemu+tls://hv1.example.com: TLS certificate "
                                           "verification is off (no_verify=1")


def test_the_write_connection_warns_too(monkeypatch, caplog):
    def refuse(uri):
        raise api.libvirt.libvirtError("no route")

    monkeypatch.setattr(api.libvirt, "open", refuse)
    with pytest.raises(api.HostUnreachable):
        api.redefine_persistent_config("qemu+tls://hv1/system?no_verify=1", "u", str)
    assert any("no_verify=1" in r.getMessage() for r in caplog.records)


def test_the_warning_never_repeats_a_password(caplog):
    assert api.warn_if_insecure("qemu+tls://root:s3cret@hv1/system?no_verify=1")
    assert "s3cret" not in caplog.text and "hv1" in caplog.text


@pytest.mark.parametrize("uri", [
    "qemu+ssh://root:s3cret@hv1.example.com/system",
    "qemu+tcp://admin:s3cret@127.0.0.1:16509/system?no_verify=1",
])
def test_a_password_in_a_libvirt_uri_is_refused_before_libvirt_sees_it(opened, uri):
    with pytest.raises(api.ConfigError) as info:
        api.open_read_only(uri)
    assert opened == []  # never passed on (libvirt would hand "root:s3cret" to ssh -l)
    assert "s3cret" not in str(info.value) and "password in a libvirt URI" in str(info.value)
