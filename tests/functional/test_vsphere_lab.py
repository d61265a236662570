"""vSphere discovery against the lab's vSphere API simulator (govmomi simulator).

The lab serves it (``lab/lab up``); these tests start nothing. The URI and
password come from the environment (LAB_VSPHERE_URI, VSPHERE_PASSWORD) or
from ``lab/lab env``. Every field checked is compared with an independent
pyVmomi read made here, not with constants.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from os_onboard.drivers.base import ChangeKind
from os_onboard.drivers.vsphere.driver import VsphereChangeFeed
from tests.functional.lab import lab_env

CLI = [str(Path(sys.executable).parent / "os-onboard")]
POWER = {"poweredOn": "running", "poweredOff": "shutoff", "suspended": "suspended"}


@pytest.fixture(scope="module")
def vsphere() -> tuple[str, str]:
    uri, password = os.environ.get("LAB_VSPHERE_URI"), os.environ.get("VSPHERE_PASSWORD")
    if not (uri and password):
        env = lab_env()
        uri, password = env.get("LAB_VSPHERE_URI"), env.get("VSPHERE_PASSWORD")
    if not (uri and password):
        raise RuntimeError("no vSphere simulator: LAB_VSPHERE_URI/VSPHERE_PASSWORD are unset "
                           "and 'lab/lab env' does not give them (run 'make lab-up')")
    return uri, password


@pytest.fixture(scope="module")
def si(vsphere):
    """An independent pyVmomi session (not os-onboard's code)."""
    uri, password = vsphere
    parts = urlsplit(uri)
    conn = SmartConnect(host=parts.hostname, port=parts.port, user=parts.username, pwd=password,
                        protocol="http")
    yield conn
    Disconnect(conn)


def _all(si, kind):
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
    try:
        return list(view.view)
    finally:
        view.DestroyView()


def _run(args: list[str], password: str | None, tmp_path: Path,
         **env_extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VSPHERE_PASSWORD"}
    env["OS_ONBOARD_CONFIG"] = str(tmp_path / "no-config.yaml")
    if password is not None:
        env["VSPHERE_PASSWORD"] = password
    env.update(env_extra)
    return subprocess.run([*CLI, "--state-url", f"sqlite:///{tmp_path}/state.db", *args],
                          capture_output=True, text=True, timeout=120, env=env, check=False)


@pytest.fixture(scope="module")
def discovered(vsphere, tmp_path_factory):
    uri, password = vsphere
    tmp = tmp_path_factory.mktemp("vsphere")
    out = tmp / "inventory.json"
    table = _run(["discover", uri, "--output-file", str(out)], password, tmp)
    assert table.returncode == 0, table.stderr
    doc = json.loads(out.read_text())
    return {"doc": doc, "table": table, "tmp": tmp}


def test_cli_lists_every_vm_as_the_api_reports_it(discovered, si):
    (host,) = discovered["doc"]["hosts"]
    assert host["status"] == "ok", host["problems"]
    assert host["host"]["kind"] == "vsphere"
    vms = {v["name"]: v for v in host["vms"]}
    expected = _all(si, vim.VirtualMachine)
    assert len(expected) >= 10
    assert set(vms) == {v.name for v in expected}
    for ref in expected:
        vm = vms[ref.name]
        assert vm["uuid"] == ref.config.instanceUuid.lower()
        assert vm["bios_uuid"] in (ref.config.uuid.lower(), None)
        assert vm["vcpus"] == ref.config.hardware.numCPU
        assert vm["memory_mib"] == ref.config.hardware.memoryMB
        assert vm["power_state"] == POWER[ref.runtime.powerState]
        assert vm["guest_os"] == ref.config.guestId
        assert vm["firmware"] == {"efi": "uefi", "bios": "bios"}[ref.config.firmware]
        assert vm["location"]["host"] == ref.runtime.host.name
        assert vm["location"]["resource_pool"] == ref.resourcePool.name
        devices = ref.config.hardware.device
        disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
        assert sorted(d["capacity_bytes"] for d in vm["disks"] if d["device"] != "cdrom") == \
            sorted(d.capacityInKB * 1024 for d in disks)
        macs = [d.macAddress.lower() for d in devices
                if isinstance(d, vim.vm.device.VirtualEthernetCard)]
        assert [n["mac"] for n in vm["nics"]] == macs
        for nic in vm["nics"]:
            assert nic["portgroup_key"], nic  # the simulator backs every NIC by a dvPortgroup
        ips = sorted(ip for g in ref.guest.net or () for ip in g.ipAddress or ())
        assert sorted(a["address"] for n in vm["nics"] for a in n["addresses"]) == ips
    # Every VM row is in the human table too.
    for name in vms:
        assert name in discovered["table"].stdout


def test_rdm_thin_thick_and_guest_ips_of_the_brownfield_vms(discovered, si):
    (host,) = discovered["doc"]["hosts"]
    rdms = [(vm, d) for vm in host["vms"] for d in vm["disks"] if d["format"] == "raw"]
    assert len(rdms) >= 1
    luns = {lun.uuid: lun.canonicalName for h in _all(si, vim.HostSystem)
            for lun in h.config.storageDevice.scsiLun}
    for ref in _all(si, vim.VirtualMachine):
        for dev in ref.config.hardware.device:
            if isinstance(dev.backing, vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo):
                vm = next(v for v in host["vms"] if v["name"] == ref.name)
                disk = next(d for d in vm["disks"] if d["format"] == "raw")
                assert disk["identifiers"]["scsi_page83"] == luns[dev.backing.lunUuid]
                assert disk["identifiers"]["scsi_page83"].startswith("naa.")
                assert disk["device"] == "lun"
    thin = {d["thin"] for vm in host["vms"] for d in vm["disks"] if d["format"] == "vmdk"}
    assert thin == {True, False}
    assert any(a["source"] == "guest-tools" for vm in host["vms"] for n in vm["nics"]
               for a in n["addresses"])


def test_duplicate_macs_and_uuids_are_conflicts_not_crashes(discovered, si, vsphere):
    uri, _ = vsphere
    holders: dict[str, list[str]] = {}
    by_uuid: dict[str, list[str]] = {}
    for ref in _all(si, vim.VirtualMachine):
        by_uuid.setdefault(ref.config.instanceUuid.lower(), []).append(ref.name)
        for dev in ref.config.hardware.device:
            if isinstance(dev, vim.vm.device.VirtualEthernetCard):
                holders.setdefault(dev.macAddress.lower(), []).append(ref.name)
    expected_macs = {mac: sorted(f"{uri} {n}" for n in names)
                     for mac, names in holders.items() if len(names) > 1}
    expected_uuids = {u: sorted(f"{uri} {n}" for n in names)
                      for u, names in by_uuid.items() if len(names) > 1}
    assert expected_macs and expected_uuids  # the lab model has both
    conflicts = discovered["doc"]["conflicts"]
    assert {c["value"]: sorted(c["members"]) for c in conflicts
            if c["kind"] == "duplicate-mac"} == expected_macs
    assert {c["value"]: sorted(c["members"]) for c in conflicts
            if c["kind"] == "duplicate-uuid"} == expected_uuids


def test_conflict_view(vsphere, tmp_path):
    uri, password = vsphere
    result = _run(["discover", uri, "--by", "conflict", "-f", "json", "--no-save"], password,
                  tmp_path)
    assert result.returncode == 0, result.stderr
    kinds = {row["Kind"] for row in json.loads(result.stdout)}
    assert kinds == {"duplicate-mac", "duplicate-uuid"}


def test_password_never_appears_in_output_logs_or_state(discovered, vsphere, tmp_path):
    uri, password = vsphere
    debug = _run(["--debug", "-v", "discover", uri, "-f", "yaml"], password, tmp_path)
    assert debug.returncode == 0, debug.stderr
    texts = [discovered["table"].stdout, discovered["table"].stderr, debug.stdout,
             debug.stderr, (discovered["tmp"] / "inventory.json").read_text()]
    for text in texts:
        assert password not in text
    db = sqlite3.connect(discovered["tmp"] / "state.db")
    dump = "\n".join(db.iterdump())
    db.close()
    assert password not in dump


def test_wrong_password_is_one_clear_line(vsphere, tmp_path):
    uri, password = vsphere
    wrong = password + "-wrong"
    result = _run(["discover", uri, "--no-save"], wrong, tmp_path)
    assert "incorrect user name or password" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert wrong not in result.stderr + result.stdout
    missing = _run(["discover", uri, "--no-save"], None, tmp_path)
    assert "no password for" in missing.stderr and "VSPHERE_PASSWORD" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_tls_is_verified_by_default(vsphere, tmp_path):
    """Without ?scheme=http the driver speaks TLS; the plain-HTTP simulator fails cleanly."""
    uri, password = vsphere
    https_uri = uri.split("?", 1)[0]
    result = _run(["discover", https_uri, "--no-save", "--timeout", "30"], password, tmp_path)
    assert "TLS" in result.stderr and "scheme=http" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_vmotion_shows_up_in_the_change_feed(vsphere, si, monkeypatch):
    uri, password = vsphere
    monkeypatch.setenv("VSPHERE_PASSWORD", password)
    cluster_vms = [v for v in _all(si, vim.VirtualMachine)
                   if isinstance(v.runtime.host.parent, vim.ClusterComputeResource)
                   and not any(isinstance(d.backing,
                                          vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo)
                               for d in v.config.hardware.device)]
    vm = sorted(cluster_vms, key=lambda v: v.name)[-1]
    source = vm.runtime.host
    target = next(h for h in source.parent.host if h != source)
    stop, events, ready = threading.Event(), [], threading.Event()
    driver = VsphereChangeFeed(uri)

    def follow():
        feed = driver.watch(stop)
        ready.set()
        for event in feed:
            events.append((time.monotonic(), event))

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    ready.wait(5)
    time.sleep(2)  # the feed's first answer (current state) primes the tracker
    try:
        moved_at = time.monotonic()
        _wait_task(vm.RelocateVM_Task(vim.vm.RelocateSpec(host=target)))
        deadline = moved_at + 10
        hit = None
        while hit is None and time.monotonic() < deadline:
            hit = next(((t, e) for t, e in events if e.kind == ChangeKind.HOST_CHANGED
                        and e.vm_uuid == vm.config.instanceUuid.lower()), None)
            time.sleep(0.05)
        assert hit is not None, f"no host-changed event in 10 s: {[e for _, e in events]}"
        at, event = hit
        assert event.data["old_host"] == source.name
        assert event.data["new_host"] == target.name
        assert at - moved_at < 5, f"host change seen after {at - moved_at:.1f} s"
    finally:
        _wait_task(vm.RelocateVM_Task(vim.vm.RelocateSpec(host=source)))  # put it back
        stop.set()
        thread.join(10)
    assert not thread.is_alive(), "watch() did not stop within 10 s of stop.set()"


def _wait_task(task, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while task.info.state not in ("success", "error"):
        assert time.monotonic() < deadline, "task did not finish"
        time.sleep(0.1)
    assert task.info.state == "success", task.info.error
