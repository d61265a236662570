"""The lab's shared storage: a legacy guest with an RBD disk on the single-node Ceph.

The guest runs on QEMU's librbd with cephx through a libvirt secret, and it keeps
its heartbeat. Ceph itself (``rbd info``, as the user the Cinder backends use) and
os-onboard's discovery must both see the disk, and the storage view groups it
under its RBD pool. Every check is read-only and proves the guest undisturbed.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.functional.lab import HeartbeatMonitor, undisturbed, virsh

CLI = [str(Path(sys.executable).parent / "os-onboard")]


@pytest.fixture(scope="module")
def ceph(lab):
    missing = [k for k in ("LAB_CEPH_CONF", "LAB_CEPH_USER", "LAB_CEPH_KEYRING",
                           "LAB_CEPH_SECRET_UUID", "LAB_CEPH_POOL_LEGACY",
                           "LAB_CEPH_MON_HOST", "LAB_CEPH_MON_PORT", "LAB_CEPH_RBD_DISKS")
               if k not in lab]
    assert not missing, f"'lab/lab env' lacks {missing}: Ceph is not wired into lab/lab"
    return lab


@pytest.fixture(scope="module")
def rbd_guests(ceph, running_guests):
    """{guest: 'pool/image'} of the running guests with an RBD disk."""
    disks = dict(item.split("=", 1) for item in ceph["LAB_CEPH_RBD_DISKS"].split())
    guests = {name: image for name, image in disks.items() if name in running_guests}
    assert guests, f"no running lab guest has an RBD disk ({ceph['LAB_CEPH_RBD_DISKS']!r})"
    return guests


def _rbd(ceph, *args: str) -> str:
    """The rbd CLI as the lab's client user (the Cinder backends' rbd_user)."""
    return subprocess.run(
        ["rbd", "-c", ceph["LAB_CEPH_CONF"], "--id", ceph["LAB_CEPH_USER"], *args],
        capture_output=True, text=True, timeout=60, check=True).stdout


def _host_of(lab, name: str) -> str:
    """URI of the lab host where ``name`` runs (host B only after a migration)."""
    uris = [lab[k] for k in sorted(lab) if re.fullmatch(r"LAB_HOST_[A-Z]_URI", k)]
    for uri in uris:
        with contextlib.suppress(subprocess.CalledProcessError):
            if virsh(uri, "--readonly", "domstate", name).strip() == "running":
                return uri
    raise AssertionError(f"{name} runs on none of {uris}")


def _rbd_disk_xml(uri: str, name: str, image: str) -> ET.Element:
    xml = ET.fromstring(virsh(uri, "--readonly", "dumpxml", name))
    (disk,) = [d for d in xml.findall("devices/disk[@type='network']")
               if d.find("source").get("protocol") == "rbd"
               and d.find("source").get("name") == image]
    return disk


def _undisturbed(lab, guests, console_log):
    return undisturbed([(_host_of(lab, name), name) for name in guests], console_log)


def _discover(uri: str, tmp_path: Path, *extra: str) -> tuple[list, dict]:
    """(the rows printed with ``-f json``, the full inventory document)."""
    doc = tmp_path / "inventory.json"
    result = subprocess.run([*CLI, "discover", uri, "--no-save", "-f", "json",
                             "--output-file", str(doc), *extra],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), json.loads(doc.read_text())


def test_the_rbd_guest_runs_on_librbd_with_cephx_and_heartbeats(ceph, rbd_guests, console_log):
    for name, image in rbd_guests.items():
        uri = _host_of(ceph, name)
        disk = _rbd_disk_xml(uri, name, image)
        host = disk.find("source/host")
        assert (host.get("name"), host.get("port")) == (ceph["LAB_CEPH_MON_HOST"],
                                                        ceph["LAB_CEPH_MON_PORT"])
        assert disk.find("auth").get("username") == ceph["LAB_CEPH_USER"]
        secret = disk.find("auth/secret")
        assert (secret.get("type"), secret.get("uuid")) == ("ceph", ceph["LAB_CEPH_SECRET_UUID"])
        # The libvirt secret holds the key of that user.
        keyring = Path(ceph["LAB_CEPH_KEYRING"]).read_text()
        key = re.search(r"^\s*key\s*=\s*(\S+)", keyring, re.M).group(1)
        assert virsh(uri, "secret-get-value", ceph["LAB_CEPH_SECRET_UUID"]).strip() == key
        with HeartbeatMonitor(console_log(name)) as monitor:
            monitor.wait_for_beats(3, timeout=15)
        monitor.assert_no_gap()


def _console_text(current: Path) -> str:
    """The console log with the files virtlogd rotated out of it (``<log>.0`` newest, up to
    ``max_backups``), oldest first: a guest up for hours has its boot lines there."""
    rotated = sorted(current.parent.glob(current.name + ".[0-9]*"),
                     key=lambda p: int(p.suffix[1:]), reverse=True)
    return "".join(p.read_text(errors="replace") for p in [*rotated, current] if p.exists())


def test_the_guest_sees_the_rbd_disk(ceph, rbd_guests, console_log):
    """The guest's /init printed a BLOCK line for the disk, with the image's size."""
    for name, image in rbd_guests.items():
        disk = _rbd_disk_xml(_host_of(ceph, name), name, image)
        size = json.loads(_rbd(ceph, "info", "--format", "json", image))["size"]
        boot = _console_text(console_log(name)).replace("\r", "")
        boot = boot[boot.rfind("LAB-BOOT "):]
        # The guest names virtio disks in PCI order, not by the XML's target.
        serial = disk.findtext("serial")
        assert re.search(rf"^BLOCK vd[a-z]+ serial={re.escape(serial)} wwid=- size={size}$", boot,
                         re.M), f"{name}: no BLOCK line for {image} in {boot[:400]!r}"


def test_rbd_info_of_the_guest_image(ceph, rbd_guests):
    for _name, image in rbd_guests.items():
        pool, _, _ = image.partition("/")
        assert pool == ceph["LAB_CEPH_POOL_LEGACY"]
        info = json.loads(_rbd(ceph, "info", "--format", "json", image))
        assert 4 << 20 <= info["size"] <= 64 << 20
        assert "exclusive-lock" in info["features"]
        # The running QEMU has the image open: one watcher.
        status = json.loads(_rbd(ceph, "status", "--format", "json", image))
        assert len(status["watchers"]) >= 1, status


def test_discovery_reports_the_rbd_disk(ceph, rbd_guests, console_log, tmp_path):
    for name, image in rbd_guests.items():
        uri = _host_of(ceph, name)
        with _undisturbed(ceph, [name], console_log):
            _, doc = _discover(uri, tmp_path)
        (host,) = doc["hosts"]
        (vm,) = [v for v in host["vms"] if v["name"] == name]
        (disk,) = [d for d in vm["disks"] if d["source_kind"] == "network-rbd"]
        size = json.loads(_rbd(ceph, "info", "--format", "json", image))["size"]
        assert disk["source"] == image
        assert disk["source_hosts"] == [f"{ceph['LAB_CEPH_MON_HOST']}:{ceph['LAB_CEPH_MON_PORT']}"]
        assert disk["capacity_bytes"] == size
        assert disk["format"] == "raw"
        assert disk["target"] == _rbd_disk_xml(uri, name, image).find("target").get("dev")


def test_the_storage_view_groups_the_disk_under_its_rbd_pool(ceph, rbd_guests, console_log,
                                                            tmp_path):
    for name, image in rbd_guests.items():
        pool, _, volume = image.partition("/")
        uri = _host_of(ceph, name)
        with _undisturbed(ceph, [name], console_log):
            rows, _ = _discover(uri, tmp_path, "--by", "storage")
        (row,) = [r for r in rows if r["Kind"] == "rbd" and r["Device"] == pool
                  and r["Volume"] == volume]
        target = _rbd_disk_xml(uri, name, image).find("target").get("dev")
        assert [(u["vm"], u["target"]) for u in row["Used by"]] == [(name, target)]
