"""Facts libvirt's API does not give but the local host's /proc does.

libvirt reports no domain uptime. When discovery runs on the hypervisor host
itself (``qemu:///system``), the QEMU process start time is the VM's uptime.
Remote hosts leave it unknown rather than guessed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

QEMU_RUN_DIR = Path("/run/libvirt/qemu")


def qemu_pid(name: str, run_dir: Path = QEMU_RUN_DIR) -> int | None:
    """PID of the QEMU process of domain ``name`` on this host, if it is ours."""
    try:
        pid = int((run_dir / f"{name}.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    # The pidfile could be stale or belong to a same-named guest of another
    # daemon; QEMU started by libvirt carries "-name guest=<name>,…".
    if not any(arg.startswith(f"guest={name},".encode()) or arg == f"guest={name}".encode()
               for arg in cmdline):
        return None
    return pid


def qemu_uptime_seconds(name: str, run_dir: Path = QEMU_RUN_DIR) -> int | None:
    pid = qemu_pid(name, run_dir)
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat; 0-based after "(comm)"
        boot_time = next(int(line.split()[1]) for line in Path("/proc/stat").read_text()
                         .splitlines() if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    started = boot_time + start_ticks / os.sysconf("SC_CLK_TCK")
    return max(0, int(time.time() - started))
