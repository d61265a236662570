"""The rename trap, end to end on the lab, with a scratch guest of its own.

Cinder's *manage existing* renames an RBD image under a running guest
(``legacy/lab-rt1-data`` -> ``legacy/volume-<id>``). QEMU keeps the image open
and does not notice; the domain definitions still name the old image. This
test does what Cinder does (``rbd rename``) to a scratch guest ``lab-rt1`` on
host A, applies os-onboard's host-side writes (persistent redefinition,
rename map, qemu hook on both hosts, SIGHUP to activate the hook) and proves:

* the rename and the writes leave the guest undisturbed (same QEMU PID and
  domain id, heartbeat without a gap; the live XML is not touched);
* without the rename map a plain ``virsh migrate --live`` fails on the
  destination (the trap is real) and the guest keeps running on A;
* with it, plain ``virsh migrate --live`` A -> B -> A works, heartbeat continuous;
* ``virsh destroy`` + ``virsh start`` boots from the renamed image.

Only lab-rt1 and its image are ever started, stopped or removed; the hook and
the map entries are removed again when this test installed them.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from os_onboard.drivers.libvirt.hostwrite import install, persistent, renamemap
from tests.functional.lab import GuestWitness, HeartbeatMonitor, qemu_pid, virsh

NAME = "lab-rt1"
DOMAIN_XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>96</memory>
  <currentMemory unit='MiB'>96</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{state}/guest/vmlinux</kernel>
    <initrd>{state}/guest/initramfs.cpio</initrd>
    <cmdline>console=ttyS0 panic=-1 edd=off quiet lab.name={name}</cmdline>
  </os>
  <features><acpi/><apic/><tcg><tb-cache unit='MiB'>32</tb-cache></tcg></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='writeback'/>
      <auth username='{user}'>
        <secret type='ceph' uuid='{secret}'/>
      </auth>
      <source protocol='rbd' name='{image}'>
        <host name='{mon_host}' port='{mon_port}'/>
      </source>
      <target dev='vda' bus='virtio'/>
      <serial>data-{name}</serial>
    </disk>
    <controller type='usb' model='none'/>
    <serial type='pty'>
      <log file='{console}' append='on'/>
      <target port='0'/>
    </serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
"""


@dataclass
class Host:
    key: str  # "a" or "b"
    uri: str
    config_dir: Path  # the host's /etc/libvirt, seen from here
    pidfile: Path  # its libvirtd's
    incoming: tuple[str, range]  # migration listen address and port range


@dataclass
class Scratch:
    lab: dict[str, str]
    a: Host
    b: Host
    old: str  # pool/image before the rename
    new: str  # after it
    console: Path
    hook_was_installed: dict[str, bool] = field(default_factory=dict)
    map_existed: dict[str, bool] = field(default_factory=dict)
    measured: list[str] = field(default_factory=list)


def _run(*cmd: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                          check=False)


def _rbd(lab: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The rbd CLI as client.admin (the lab's ceph.conf names the admin keyring)."""
    return _run("rbd", "-c", lab["LAB_CEPH_CONF"], *args, timeout=60)


def _state(uri: str) -> str:
    result = _run("virsh", "-c", uri, "--readonly", "domstate", NAME)
    return result.stdout.strip() if result.returncode == 0 else "undefined"


def _remove_guest(*hosts: Host) -> None:
    for host in hosts:
        if _state(host.uri) not in ("undefined", "shut off"):
            _run("virsh", "-c", host.uri, "destroy", NAME)
        if _state(host.uri) != "undefined":
            _run("virsh", "-c", host.uri, "undefine", NAME)


def _remove_image(lab: dict[str, str], image: str) -> None:
    # A watch of a QEMU that did not close the image expires after 30 s.
    for _ in range(45):
        if _rbd(lab, "info", image).returncode != 0:
            return
        if _rbd(lab, "rm", "--no-progress", image).returncode == 0:
            return
        time.sleep(1)


def _libvirtd_pid(host: Host) -> int:
    return int(host.pidfile.read_text().split()[0])


def _sighup(host: Host) -> str:
    """Make the host's libvirtd look for hook scripts again; same daemon afterwards."""
    pid = _libvirtd_pid(host)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGHUP)
    while _run("virsh", "-c", host.uri, "--readonly", "version").returncode != 0:
        assert time.monotonic() - t0 < 30, f"host {host.key}: libvirtd silent after SIGHUP"
        time.sleep(0.05)
    assert _libvirtd_pid(host) == pid, f"host {host.key}: libvirtd was replaced"
    return f"host {host.key.upper()}: SIGHUP to libvirtd {pid}: answers after " \
           f"{time.monotonic() - t0:.3f} s, same pid"


def _free_port(host: Host) -> int:
    address, ports = host.incoming
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind((address, port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free migration port for host {host.key} in {ports}")


def _migrate(src: Host, dst: Host) -> subprocess.CompletedProcess[str]:
    """What an operator runs out of band (the same command as ``lab/lab migrate``)."""
    return _run("virsh", "-c", src.uri, "migrate", "--live", "--persistent", "--undefinesource",
                "--unsafe", NAME, dst.uri,
                "--migrateuri", f"tcp://{dst.incoming[0]}:{_free_port(dst)}", timeout=180)


def _wait_console(log: Path, offset: int, pattern: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError), open(log, errors="replace") as fh:
            fh.seek(offset)
            text = fh.read()
            if re.search(pattern, text):
                return text
        time.sleep(0.2)
    raise AssertionError(f"{log}: no {pattern!r} within {timeout} s")


def _qemu_cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _image_of(xml: str) -> str:
    (name,) = re.findall(r"<source protocol='rbd' name='([^']+)'", xml)
    return name


@pytest.fixture
def scratch(lab):
    state = Path(lab["LAB_STATE_DIR"])
    pool = lab["LAB_CEPH_POOL_LEGACY"]
    a = Host("a", lab["LAB_HOST_A_URI"], Path("/etc/libvirt"),
             state / "hosts/a/run/libvirtd.pid", ("127.0.0.1", range(49152, 49216)))
    b = Host("b", lab["LAB_HOST_B_URI"], state / "hosts/b/etc",
             state / "hosts/b/run/libvirtd.pid", ("127.0.0.2", range(49400, 49500)))
    s = Scratch(lab, a, b, f"{pool}/{NAME}-data", f"{pool}/volume-{uuid.uuid4()}",
                Path(lab["LAB_CONSOLE_DIR"]) / f"{NAME}-console.log")
    # Leftovers of an interrupted run (only our own scratch names).
    _remove_guest(b, a)
    _remove_image(lab, s.old)
    try:
        # The hook on both hosts, activated with SIGHUP (no libvirtd restart).
        for host in (a, b):
            s.hook_was_installed[host.key] = install.hook_path(host.config_dir).exists()
            s.map_existed[host.key] = renamemap.map_path(host.config_dir).exists()
            try:
                install.install_migrate_hook(host.config_dir)
            except install.HookConflict as exc:
                pytest.skip(str(exc))
            s.measured.append(_sighup(host))
        created = _rbd(lab, "create", "--size", "64M", s.old)
        assert created.returncode == 0, created.stderr
        xml = DOMAIN_XML.format(
            name=NAME, state=state, user=lab["LAB_CEPH_USER"],
            secret=lab["LAB_CEPH_SECRET_UUID"], image=s.old, mon_host=lab["LAB_CEPH_MON_HOST"],
            mon_port=lab["LAB_CEPH_MON_PORT"], console=s.console)
        xml_file = Path(f"/tmp/{NAME}.xml")
        xml_file.write_text(xml)
        virsh(a.uri, "define", str(xml_file))
        xml_file.unlink()
        offset = s.console.stat().st_size if s.console.exists() else 0
        virsh(a.uri, "start", NAME)
        _wait_console(s.console, offset, r"HEARTBEAT \d+")
        yield s
    finally:
        _remove_guest(b, a)
        _remove_image(lab, s.old)
        _remove_image(lab, s.new)
        for host in (a, b):
            path = renamemap.map_path(host.config_dir)
            with contextlib.suppress(Exception):
                if renamemap.remove(path, [s.old]) == {} and not s.map_existed.get(host.key):
                    path.unlink()
            if host.key in s.hook_was_installed and not s.hook_was_installed[host.key]:
                # takes effect without SIGHUP: libvirt checks the script before each call
                install.uninstall_migrate_hook(host.config_dir)
        for line in s.measured:
            print(line)


def test_rename_trap_is_closed_without_disturbing_the_guest(scratch):
    s = scratch
    a, b = s.a, s.b
    dom_uuid = virsh(a.uri, "--readonly", "domuuid", NAME).strip()

    with HeartbeatMonitor(s.console) as monitor:
        witness = GuestWitness(a.uri, NAME).record()

        # 1. What Cinder's manage-existing does under the running guest.
        renamed = _rbd(s.lab, "rename", s.old, s.new)
        assert renamed.returncode == 0, renamed.stderr
        witness.assert_undisturbed()

        # 2. os-onboard: persistent definition only; the live one keeps the old name.
        t0 = time.monotonic()
        assert persistent.redefine_with_renames(a.uri, dom_uuid, {s.old: s.new}) is True
        s.measured.append(f"persistent redefinition: {time.monotonic() - t0:.3f} s")
        assert _image_of(virsh(a.uri, "--readonly", "dumpxml", "--inactive", NAME)) == s.new
        assert _image_of(virsh(a.uri, "--readonly", "dumpxml", NAME)) == s.old
        witness.assert_undisturbed()

        # 3. The trap is real: without the rename map the destination opens the old name.
        failed = _migrate(a, b)
        assert failed.returncode != 0, "migration worked without the rename map?"
        assert _state(b.uri) == "undefined"
        witness.assert_undisturbed()

        # 4. The map on both hosts (the redefinition is already done: no change).
        assert persistent.apply_renames(a.uri, dom_uuid, {s.old: s.new},
                                        [a.config_dir, b.config_dir]) is False
        assert renamemap.load(renamemap.map_path(b.config_dir))[s.old] == s.new
        witness.assert_undisturbed()
        monitor.wait_for_beats(len(monitor.beats) + 2, timeout=15)
    monitor.assert_no_gap(max_interval=3.0)
    assert failed.stderr.strip(), failed
    s.measured.append(f"plain migration without the map failed as expected: "
                      f"{failed.stderr.strip().splitlines()[-1]}")

    # 5. Plain virsh live migration A -> B -> A, as the old tools do it.
    pid_a = qemu_pid(NAME)
    with HeartbeatMonitor(s.console) as monitor:
        t0 = time.monotonic()
        to_b = _migrate(a, b)
        assert to_b.returncode == 0, to_b.stderr
        s.measured.append(f"migration A -> B: {time.monotonic() - t0:.2f} s")
        assert (_state(a.uri), _state(b.uri)) == ("undefined", "running")
        pid_b = qemu_pid(NAME)
        assert pid_b not in (None, pid_a)
        # the hook rewrote B's live definition; QEMU on B opened the new name
        assert _image_of(virsh(b.uri, "--readonly", "dumpxml", NAME)) == s.new
        assert _image_of(virsh(b.uri, "--readonly", "dumpxml", "--inactive", NAME)) == s.new
        assert f'"image":"{s.new.split("/", 1)[1]}"' in _qemu_cmdline(pid_b)
        monitor.wait_for_beats(len(monitor.beats) + 3, timeout=15)

        t0 = time.monotonic()
        to_a = _migrate(b, a)
        assert to_a.returncode == 0, to_a.stderr
        s.measured.append(f"migration B -> A: {time.monotonic() - t0:.2f} s")
        assert (_state(a.uri), _state(b.uri)) == ("running", "undefined")
        assert qemu_pid(NAME) not in (None, pid_b)
    monitor.assert_no_gap(max_interval=3.0)

    # 6. A cold start by the old tools uses the persistent definition: the new name.
    virsh(a.uri, "destroy", NAME)
    offset = s.console.stat().st_size
    virsh(a.uri, "start", NAME)
    booted = _wait_console(s.console, offset, r"HEARTBEAT \d+")
    assert f"LAB-BOOT name={NAME}" in booted
    assert re.search(rf"BLOCK vda serial=data-{NAME} .*size=67108864", booted), booted
    assert _image_of(virsh(a.uri, "--readonly", "dumpxml", NAME)) == s.new
    pid = qemu_pid(NAME)
    assert pid is not None and f'"image":"{s.new.split("/", 1)[1]}"' in _qemu_cmdline(pid)
    assert _rbd(s.lab, "info", s.old).returncode != 0  # the old name really is gone
