"""Helpers to observe the lab's real guests: QEMU PIDs, domain ids, heartbeats.

These are the witnesses of "zero disruption": a test records them before it
touches a guest and proves afterwards that the same QEMU process runs the
same domain and the guest's heartbeat never stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_HEARTBEAT = re.compile(r"HEARTBEAT (\d+)")


def lab_env() -> dict[str, str]:
    """The lab's settings from ``lab/lab env`` (raises if the lab is not up)."""
    status = subprocess.run([REPO / "lab" / "lab", "status"], capture_output=True, text=True,
                            check=False)
    if status.returncode != 0:
        raise RuntimeError("the lab is not up (run 'make lab-up'):\n" + status.stdout
                           + status.stderr)
    out = subprocess.run([REPO / "lab" / "lab", "env"], capture_output=True, text=True,
                         check=True).stdout
    env = {}
    for line in out.splitlines():
        line = line.removeprefix("export ").strip()
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = shlex.split(value)[0] if value else ""
    return env


def run(*cmd: str | Path, env: dict | None = None, timeout: float = 300,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, output captured; with ``check``, a failure shows both streams."""
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                            timeout=timeout, env=env, check=False)
    if check:
        assert result.returncode == 0, f"{cmd}: {result.stdout}\n{result.stderr}"
    return result


def virsh(uri: str, *args: str) -> str:
    return subprocess.run(["virsh", "-c", uri, *args], capture_output=True, text=True,
                          check=True).stdout


def qemu_pid(name: str) -> int | None:
    """PID of the QEMU process running guest ``name`` (any lab host)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and b"qemu-system" in args[0] and any(
                a == f"guest={name}".encode() or a.startswith(f"guest={name},".encode())
                for a in args):
            return int(proc.name)
    return None


@dataclass
class GuestWitness:
    uri: str
    name: str
    pid: int | None = None
    domain_id: str | None = None

    def record(self) -> GuestWitness:
        self.pid = qemu_pid(self.name)
        self.domain_id = virsh(self.uri, "--readonly", "domid", self.name).strip()
        assert self.pid is not None, f"{self.name}: no QEMU process"
        return self

    def assert_undisturbed(self) -> None:
        assert qemu_pid(self.name) == self.pid, f"{self.name}: QEMU process changed"
        assert virsh(self.uri, "--readonly", "domid", self.name).strip() == self.domain_id, (
            f"{self.name}: domain id changed")
        state = virsh(self.uri, "--readonly", "domstate", self.name).strip()
        assert state == "running", f"{self.name}: state is {state!r}"


@dataclass
class HeartbeatMonitor:
    """Tails a guest's serial-console log and records when each heartbeat arrives."""

    log_path: Path
    beats: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> HeartbeatMonitor:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.wait_for_beats(2, timeout=15)
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            # keep watching a little after the action, then stop
            self.wait_for_beats(len(self.beats) + 2, timeout=15)
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        with open(self.log_path, errors="replace") as fh:
            fh.seek(0, os.SEEK_END)
            buffer = ""
            while not self._stop.is_set():
                chunk = fh.read()
                if not chunk:
                    time.sleep(0.05)
                    continue
                buffer += chunk
                *lines, buffer = buffer.split("\n")
                for line in lines:
                    match = _HEARTBEAT.search(line)
                    if match:
                        self.beats.append((time.monotonic(), int(match.group(1))))

    def wait_for_beats(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.beats) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.log_path}: only {len(self.beats)} heartbeats "
                                     f"in {timeout} s (expected {count})")
            time.sleep(0.1)

    def assert_no_gap(self, max_interval: float = 3.0) -> None:
        """Counters consecutive and no silence longer than ``max_interval``."""
        assert len(self.beats) >= 3, f"too few heartbeats: {self.beats}"
        for (t0, n0), (t1, n1) in zip(self.beats, self.beats[1:], strict=False):
            assert n1 == n0 + 1, f"heartbeat counter jumped {n0} -> {n1} (guest restarted?)"
            assert t1 - t0 <= max_interval, f"heartbeat gap of {t1 - t0:.1f} s after #{n0}"


@contextlib.contextmanager
def undisturbed(guests: list[tuple[str, str]], console_log) -> Iterator[None]:
    """Prove that the block left each ``(host uri, guest name)`` undisturbed:
    same QEMU process, same domain id, still running, heartbeat without a gap."""
    witnesses = [GuestWitness(uri, name).record() for uri, name in guests]
    with contextlib.ExitStack() as stack:
        monitors = [stack.enter_context(HeartbeatMonitor(console_log(name)))
                    for _, name in guests]
        yield
    for witness in witnesses:
        witness.assert_undisturbed()
    for monitor in monitors:
        monitor.assert_no_gap()


def ensure_nova_compute_on_a(lab: dict[str, str], timeout: float = 240) -> None:
    """Host A's nova-compute runs and reports (on a fresh lab it waits for
    ``os-onboard prepare-host``, which is idempotent: run it, then start it)."""
    cli = Path(sys.executable).parent / "os-onboard"
    subprocess.run([cli, "prepare-host", "--host", lab["LAB_NOVA_HOST_A"], "--state-path",
                    lab["LAB_NOVA_STATE_PATH_A"], "--nova-python",
                    str(Path(lab["LAB_OPENSTACK_BIN"]) / "python"), "--nova-config",
                    lab["LAB_NOVA_CONF"]], capture_output=True, text=True, timeout=180,
                   check=True)
    subprocess.run([REPO / "lab" / "lab", "compute-start", "a"], capture_output=True,
                   text=True, timeout=300, check=True)
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run([Path(lab["LAB_OPENSTACK_BIN"]) / "openstack", "--os-cloud",
                              "lab-admin", "compute", "service", "list", "--service",
                              "nova-compute", "-f", "json"], capture_output=True, text=True,
                             timeout=120, check=False).stdout
        if any(s.get("Host") == lab["LAB_NOVA_HOST_A"] and s.get("State") == "up"
               for s in json.loads(out or "[]")):
            return
        assert time.monotonic() < deadline, "nova-compute on host A does not report up"
        time.sleep(3)
