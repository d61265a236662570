"""vSphere TLS: verified by default (the loopback included), off only with ``insecure=1``.

pyVmomi's SmartConnect, given no SSL context, skips verification for
``localhost``/``127.0.0.1``/``::1``; the driver always passes its own. The
first tests stop at the adapter seam (``api.SmartConnect``); the last ones
run pyVmomi for real against a TLS listener on the loopback with a
self-signed certificate.
"""

from __future__ import annotations

import datetime
import logging
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from pyVim import connect as pyvim_connect

from os_onboard.drivers.vsphere import api
from os_onboard.drivers.vsphere.endpoint import parse_uri
from os_onboard.exceptions import DiscoveryError


class _SI:
    def RetrieveContent(self):
        return object()


@pytest.fixture
def smart_connect(monkeypatch):
    calls: list[dict] = []

    def fake(**kwargs):
        calls.append(kwargs)
        return _SI()

    monkeypatch.setattr(api, "SmartConnect", fake)
    return calls


@pytest.mark.parametrize("uri", [
    "vsphere://admin@vc1.example.com/",
    "vsphere://admin@127.0.0.1:8443/",  # pyVmomi alone would not verify these three
    "vsphere://admin@localhost/",
    "vsphere://admin@[::1]:443/",
    "vsphere://admin@vc1.example.com/?insecure=0",
])
def test_https_verifies_certificate_and_host_name_by_default(smart_connect, caplog, uri):
    api.connect(parse_uri(uri), "pw")
    (kwargs,) = smart_connect
    context = kwargs["sslContext"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert kwargs["disableSslCertValidation"] is False
    # pyVmomi keeps a context it is given, also for the loopback.
    assert pyvim_connect.getSslContext(kwargs["host"], context, False) is context
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_insecure_switch_turns_verification_off_and_says_so(smart_connect, caplog):
    api.connect(parse_uri("vsphere://admin@vc1.example.com/?insecure=1"), "pw")
    (kwargs,) = smart_connect
    assert kwargs["sslContext"].verify_mode == ssl.CERT_NONE
    assert kwargs["disableSslCertValidation"] is True
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "verification is off (insecure=1)" in warning.getMessage()
    assert "vc1.example.com" in warning.getMessage() and "pw" not in warning.getMessage()


def test_plain_http_warns_beyond_the_loopback_only(smart_connect, caplog):
    api.connect(parse_uri("vsphere://onboard@127.0.0.1:18989/?scheme=http"), "pw")
    assert smart_connect[-1]["sslContext"] is None
    assert not caplog.records
    api.connect(parse_uri("vsphere://admin@vc1.example.com/?scheme=http"), "pw")
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "plain HTTP" in warning.getMessage()


# -- real pyVmomi against a self-signed TLS listener on the loopback -------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vcsim-test")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture
def tls_listener(tmp_path):
    """A TLS server on 127.0.0.1 that answers every request with HTTP 503."""
    cert_file, key_file = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    handshakes: list[bool] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    handshakes.append(True)
                    tls.settimeout(2)
                    tls.recv(65536)
                    tls.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")
            except (OSError, ssl.SSLError):
                handshakes.append(False)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], cert_file, handshakes
    stop.set()
    thread.join(timeout=5)
    server.close()


def _recorded(handshakes: list[bool], timeout: float = 5.0) -> list[bool]:
    """The server thread records a handshake after the client has given up on it."""
    deadline = time.monotonic() + timeout
    while not handshakes and time.monotonic() < deadline:
        time.sleep(0.01)
    return handshakes


def test_real_pyvmomi_refuses_an_untrusted_certificate_on_the_loopback(tls_listener):
    port, _, handshakes = tls_listener
    with pytest.raises(DiscoveryError, match="TLS certificate not trusted"):
        api.connect(parse_uri(f"vsphere://admin@127.0.0.1:{port}/"), "pw", timeout=5)
    assert _recorded(handshakes) and not any(handshakes)  # never got past the handshake


def test_real_pyvmomi_trusts_the_ca_from_ssl_cert_file(tls_listener, monkeypatch):
    port, cert_file, handshakes = tls_listener
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    with pytest.raises(Exception) as info:  # the handshake passes; the 503 then fails
        api.connect(parse_uri(f"vsphere://admin@127.0.0.1:{port}/"), "pw", timeout=5)
    assert "certificate" not in str(info.value)
    assert True in handshakes


def test_real_pyvmomi_with_insecure_switch_skips_verification(tls_listener, caplog):
    port, _, handshakes = tls_listener
    with pytest.raises(Exception) as info:
        api.connect(parse_uri(f"vsphere://admin@127.0.0.1:{port}/?insecure=1"), "pw",
                    timeout=5)
    assert "certificate" not in str(info.value)
    assert True in handshakes
    assert any("insecure=1" in r.getMessage() for r in caplog.records)
