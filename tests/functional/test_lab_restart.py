"""``lab up`` after a machine restart: the lab's pidfiles outlive its daemons.

A restart kills every daemon but leaves its pidfile, and the new boot hands
those pids to other programs. CI once met host B's virtlogd pidfile naming a
Ceph thread and ``lab up`` stopped there. These tests put a live stranger's
pid in a pidfile and check that the lab treats the daemon as not running,
starts it, and never signals the stranger.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.lab import REPO, lab_env, run

LAB = REPO / "lab" / "lab"


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen]:
    """A live process that is not a lab daemon (what a restart puts behind an old pid)."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _daemon_pid(pidfile: Path, comm: str) -> subprocess.CompletedProcess[str]:
    """The lab's own daemon_pid (lab/lib/common.sh) on PIDFILE."""
    script = f'source "{REPO}/lab/lib/common.sh"; daemon_pid "$1" "$2"'
    return subprocess.run(["bash", "-c", script, "daemon_pid", str(pidfile), comm],
                          capture_output=True, text=True, check=False)


def test_a_pidfile_naming_another_program_means_not_running(stranger, tmp_path):
    pidfile = tmp_path / "virtlogd.pid"
    pidfile.write_text(f"{stranger.pid}\n")
    assert _daemon_pid(pidfile, "virtlogd").returncode == 1
    # The same file is believed when the comm matches: the check is the comm.
    found = _daemon_pid(pidfile, _comm(stranger.pid))
    assert (found.returncode, found.stdout) == (0, str(stranger.pid))
    assert stranger.poll() is None


def _stale_guest_status_clear(run_dir: Path) -> subprocess.CompletedProcess[str]:
    """The lab's stale_guest_status_clear (lab/lib/libvirtd.sh) on RUN_DIR/qemu,
    as for a host whose libvirtd is not running."""
    script = (f'source "{REPO}/lab/lib/common.sh"; source "{REPO}/lab/lib/libvirtd.sh"; '
              'host_alive() { return 1; }; host_sys_dir() { printf %s "$1"; }; '
              'stale_guest_status_clear b')
    return subprocess.run(["bash", "-c", script.replace('"$1"', f'"{run_dir}"')],
                          capture_output=True, text=True, check=False)


def test_libvirtd_starts_without_the_status_of_guests_whose_qemu_is_gone(stranger, tmp_path):
    # libvirtd reconnects to the pid a guest's status file records and kills it
    # when that fails: after a restart, the pid may be anyone's.
    qemu_dir = tmp_path / "qemu"
    qemu_dir.mkdir()
    fake_qemu = tmp_path / "qemu-system-x86_64"
    fake_qemu.symlink_to("/bin/sleep")
    live = subprocess.Popen([str(fake_qemu), "600"])
    try:
        for name, pid in (("taken", stranger.pid), ("gone", 4194304), ("live", live.pid)):
            (qemu_dir / f"{name}.pid").write_text(f"{pid}\n")
            (qemu_dir / f"{name}.xml").write_text("<domstatus/>")
        (qemu_dir / "driver.pid").write_text("1\n")
        out = _stale_guest_status_clear(tmp_path)
        assert out.returncode == 0, out.stderr
        assert sorted(p.name for p in qemu_dir.iterdir()) == [
            "driver.pid", "live.pid", "live.xml"]
        assert stranger.poll() is None and live.poll() is None
        assert "taken: its QEMU is gone" in out.stdout + out.stderr
    finally:
        live.kill()
        live.wait()


def test_lab_up_replaces_a_stale_pidfile_and_leaves_its_pid_alone(stranger):
    env = lab_env()
    pidfile = Path(env.get("LAB_STATE_DIR", "/var/lib/os-onboard-lab")) / "vsphere/run/vcsim.pid"
    old = int(pidfile.read_text().split()[0])
    assert _comm(old) == "vcsim-lab"
    # The simulator dies with the "machine"; its pid now belongs to the stranger.
    os.kill(old, signal.SIGTERM)
    for _ in range(100):
        if not Path(f"/proc/{old}").exists():
            break
        time.sleep(0.1)
    pidfile.write_text(f"{stranger.pid}\n")

    up = run(LAB, "up", timeout=600)

    new = int(pidfile.read_text().split()[0])
    assert new != stranger.pid and _comm(new) == "vcsim-lab", up.stdout + up.stderr
    assert stranger.poll() is None, "lab up signalled a process a stale pidfile named"
    assert "vsphere: simulator serves" in up.stdout + up.stderr
