"""TLS against the lab's vSphere simulator over https (its self-signed certificate).

The simulator serves the same inventory on LAB_VSPHERE_HTTPS_PORT with a
certificate for 127.0.0.1 that no system store trusts; the lab writes it to
LAB_VSPHERE_CA_FILE. Verified by default also on the loopback (pyVmomi alone
would skip verification for 127.0.0.1), trusted once the CA is given, and
skipped only with the switch named ``insecure=1``, which says so on stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CLI = str(Path(sys.executable).parent / "os-onboard")


@pytest.fixture(scope="module")
def https(lab) -> tuple[str, dict[str, str]]:
    user = urlsplit(lab["LAB_VSPHERE_URI"]).username
    uri = f"vsphere://{user}@127.0.0.1:{lab['LAB_VSPHERE_HTTPS_PORT']}/"
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    env.update(VSPHERE_PASSWORD=lab["VSPHERE_PASSWORD"], OS_ONBOARD_CONFIG="/nonexistent")
    return uri, env


def _discover(uri: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "discover", uri, "--no-save", "-f", "json", "--timeout", "60"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def test_an_untrusted_certificate_is_refused_on_the_loopback(https):
    uri, env = https
    result = _discover(uri, env)
    assert "TLS certificate not trusted" in result.stderr, result.stderr
    assert "insecure=1" in result.stderr  # the way out is named for what it is
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout) == []  # no VM read


def test_the_lab_ca_makes_it_trusted(https, lab):
    uri, env = https
    result = _discover(uri, dict(env, SSL_CERT_FILE=lab["LAB_VSPHERE_CA_FILE"]))
    assert result.returncode == 0 and json.loads(result.stdout), result.stderr
    assert "not trusted" not in result.stderr and "insecure" not in result.stderr


def test_insecure_switch_skips_verification_and_says_so(https):
    uri, env = https
    result = _discover(uri + "?insecure=1", env)
    assert result.returncode == 0 and json.loads(result.stdout), result.stderr
    assert "TLS certificate verification is off (insecure=1)" in result.stderr
    assert env["VSPHERE_PASSWORD"] not in result.stderr + result.stdout
