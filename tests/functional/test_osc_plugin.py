"""os-onboard as a python-openstackclient plugin, in the lab's OpenStack venv.

The lab installs os-onboard next to the real `openstack` CLI; the same
commands answer as `openstack onboard …`, without a cloud login.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def _openstack(lab, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(lab["LAB_OPENSTACK_BIN"]) / "openstack"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def test_openstack_onboard_discover_lists_the_lab_guests(lab, host_a):
    result = _openstack(lab, "onboard", "discover", host_a, "--no-save", "-f", "json")
    assert result.returncode == 0, result.stderr
    names = {row["Name"] for row in json.loads(result.stdout)}
    assert set(lab["LAB_GUESTS"].split()) <= names


def test_openstack_help_documents_the_commands(lab):
    result = _openstack(lab, "help", "onboard", "discover")
    assert result.returncode == 0, result.stderr
    assert "read-only" in result.stdout and "--by" in result.stdout
    listed = _openstack(lab, "command", "list", "--group", "openstack.onboard.v1", "-f", "json")
    assert listed.returncode == 0, listed.stderr
    commands = {c for group in json.loads(listed.stdout) for c in group["Commands"]}
    assert {"onboard discover", "onboard inventory show", "onboard schema"} <= commands
