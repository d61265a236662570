"""``os-onboard watch`` under faults, on the lab, with lab-vm1 adopted (the
fixture of test_reconcile.py: adopted on host A, released at the end).

* host A's libvirtd restarted (down for a few seconds) while watch runs with
  a 2 s period: the passes in the window cannot read A and conclude nothing
  from it - no vm-gone is recorded, no record removed - the libvirt change
  feed reconnects and wakes a pass, and the guests on A keep their QEMU
  process, domain id and heartbeat.
* nova-api down while lab-vm1 is live-migrated out of band with plain virsh:
  the drift is compared with the records read last, queued in the state
  store (``os-onboard drift`` lists it), retried with a growing backoff, and
  applied by the first retry after nova-api is back - within one period.
* Placement down while it is migrated back: the toleration moves the Nova
  instance but not the allocation; the watcher is killed -9 with that drift
  queued, and a new one finishes the move once Placement is back, though
  the records' host already matched (the queue is in the state store).

The guest's heartbeat runs without a gap throughout. (kill -9 of watch with
nothing queued: test_reconcile.py.)
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.functional import test_reconcile as reconcile
from tests.functional.lab import REPO, HeartbeatMonitor, run, undisturbed

ctx = reconcile.ctx  # the same module fixture: lab-vm1 adopted on host A
VM = reconcile.VM
PERIOD = 20  # watch's periodic pass in the outage tests (s)


@contextlib.contextmanager
def _watching(ctx, tmp_path: Path, interval: float) -> Iterator[dict]:
    """A ``watch --policy tolerate`` over both hosts, output in files (a pipe
    nobody reads would fill and block it)."""
    lab = ctx["lab"]
    tmp_path.mkdir(parents=True, exist_ok=True)
    out, err = tmp_path / "watch.out", tmp_path / "watch.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [str(reconcile.CLI), "watch", lab["LAB_HOST_A_URI"], lab["LAB_HOST_B_URI"],
             "--policy", "tolerate", "--interval", str(interval)],
            env=ctx["env"], stdout=stdout, stderr=stderr, text=True)
        watcher = {"proc": proc, "err": err}
        try:
            _wait(watcher, lambda: _passes(watcher), 60, "watch ran no pass")
            yield watcher
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _passes(watcher) -> list[str]:
    """The watcher's one line per pass: 'pass (cause): summary'."""
    return [line for line in watcher["err"].read_text().splitlines()
            if line.startswith("pass (")]


def _wait(watcher, condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert watcher["proc"].poll() is None, (
            f"watch exited: {watcher['err'].read_text()[-3000:]}")
        assert time.monotonic() < deadline, f"{what}; watch said:\n" + (
            watcher["err"].read_text()[-3000:])
        time.sleep(0.5)
    return result


def _lab(*args: str) -> None:
    run(REPO / "lab" / "lab", *args)


def _history(ctx) -> list[dict]:
    return json.loads(reconcile._onboard(ctx, "history", VM, "-f", "json").stdout)


def _drift_rows(ctx) -> list[dict]:
    lab = ctx["lab"]
    out = reconcile._onboard(ctx, "drift", lab["LAB_HOST_A_URI"], lab["LAB_HOST_B_URI"],
                             "-f", "json").stdout
    return [row for row in json.loads(out) if row["UUID"] == ctx["uuid"]]


def _retry_delays(watcher) -> list[float]:
    return [float(m.group(1)) for m in re.finditer(r"retry \d+ in ([\d.]+) s",
                                                    watcher["err"].read_text())]


def _follows(ctx, host: str):
    """True once Nova, Placement and Neutron all place the VM on ``host``."""
    lab = ctx["lab"]
    node = lab["LAB_HOST_A_HOSTNAME"] if host == lab["LAB_NOVA_HOST_A"] else (
        lab["LAB_HOST_B_HOSTNAME"])
    record = reconcile._record(ctx)
    return record if (record[0], record[1], record[2], set(record[3])) == (
        host, "ACTIVE", reconcile._provider(ctx, node), {host}) else None


def test_libvirtd_restart_during_watch_concludes_no_vm_gone(ctx, tmp_path, console_log):
    lab = ctx["lab"]
    host_a = lab["LAB_HOST_A_URI"]
    assert reconcile._where_is(ctx) == "LAB_HOST_A_URI"
    history_before = len(_history(ctx))
    with _watching(ctx, tmp_path, interval=2) as watcher, undisturbed(
            [(host_a, VM), (host_a, "lab-vm2")], console_log):
        _lab("restart-libvirtd", "a", "--down", "6")
        # the feed reconnects (its backoff: 1, 2, 4 s) and wakes a pass
        _wait(watcher, lambda: any(f"reconnected on {host_a}" in p for p in _passes(watcher)),
              60, "the change feed of host A did not reconnect")
        passes = _passes(watcher)
        _wait(watcher, lambda: len(_passes(watcher)) >= len(passes) + 2, 30,
              "watch stopped passing after the restart")
    blind = [p for p in _passes(watcher) if f"not read (nothing concluded from them): {host_a}"
             in p]
    assert blind, "no pass ran while host A's libvirtd was down"
    history = _history(ctx)
    assert history[: len(history) - history_before] == []  # no drift at all: no vm-gone
    host, status, provider, bindings = reconcile._record(ctx)  # every record still there
    assert (host, status, bindings) == (lab["LAB_NOVA_HOST_A"], "ACTIVE",
                                        [lab["LAB_NOVA_HOST_A"]])
    assert provider == reconcile._provider(ctx, lab["LAB_HOST_A_HOSTNAME"])
    assert _drift_rows(ctx) == []


def test_migration_while_nova_api_is_down_is_queued_then_applied(ctx, tmp_path):
    lab = ctx["lab"]
    with _watching(ctx, tmp_path, interval=PERIOD) as watcher, HeartbeatMonitor(
            reconcile._console(ctx)) as beats:
        _lab("os-service", "stop", "nova-api")
        try:
            reconcile._migrate(ctx, "b")  # plain virsh migrate --live, out of band
            queued = _wait(watcher, lambda: [r for r in _drift_rows(ctx)
                                             if r["Action"] == "queued"], 60,
                           "the migration was not queued")
            assert [(r["Kind"], r["Actual"]) for r in queued] == [
                ("host-changed", f"{lab['LAB_NOVA_HOST_B']}/{lab['LAB_HOST_B_HOSTNAME']}")]
            _wait(watcher, lambda: len(_retry_delays(watcher)) >= 3, 60, "no retries")
        finally:
            _lab("os-service", "start", "nova-api")
        delays = _retry_delays(watcher)
        assert delays[:3] == [2, 4, 8], delays  # backoff, not a hot loop
        assert all(d <= PERIOD for d in delays), delays
        assert "OpenStack unreachable" in watcher["err"].read_text()
        # no hypervisor event now: the retry timer must bring it in, within a period
        _wait(watcher, lambda: reconcile._server_host(ctx) == lab["LAB_NOVA_HOST_B"],
              PERIOD + 30, "the queued migration was not applied after nova-api came back")
        _wait(watcher, lambda: _follows(ctx, lab["LAB_NOVA_HOST_B"]), 60,
              "allocation and port binding did not follow")
        assert _drift_rows(ctx) == []  # queue empty, records true
    beats.assert_no_gap(max_interval=5.0)
    actions = [(e["Kind"], e["Action"]) for e in reversed(_history(ctx))]
    queued_at = actions.index(("host-changed", "queued"))
    assert ("host-changed", "tolerated") in actions[queued_at:]


def test_half_done_move_is_finished_after_kill_9_when_placement_is_back(ctx, tmp_path):
    """Migrated back with Placement down: the instance moves, the allocation
    cannot. The watcher is killed -9 with that drift queued; a new one, started
    once Placement is back, finishes the move from the state store alone
    (Nova's host already matches: the comparison by itself sees nothing)."""
    lab = ctx["lab"]
    where = reconcile._where_is(ctx)
    to, host = ("a", lab["LAB_NOVA_HOST_A"]) if where == "LAB_HOST_B_URI" else (
        "b", lab["LAB_NOVA_HOST_B"])
    with HeartbeatMonitor(reconcile._console(ctx)) as beats:
        with _watching(ctx, tmp_path / "first", interval=PERIOD) as watcher:
            _lab("os-service", "stop", "placement")
            try:
                reconcile._migrate(ctx, to)
                _wait(watcher, lambda: reconcile._server_host(ctx) == host, 60,
                      "the instance did not move")
                [row] = _wait(watcher, lambda: [r for r in _drift_rows(ctx)
                                                if r["Action"] == "queued"], 60,
                              "the failed toleration was not queued")
                assert row["Kind"] == "host-changed", row
                assert "placement" in row["Detail"].lower(), row
                assert reconcile._reconcile(ctx, "report") == []  # the comparison alone
                watcher["proc"].kill()  # kill -9 with the drift queued
                watcher["proc"].wait()
            finally:
                _lab("os-service", "start", "placement")
        with _watching(ctx, tmp_path / "second", interval=PERIOD) as watcher:
            _wait(watcher, lambda: _follows(ctx, host), PERIOD + 60,
                  "the restarted watch did not finish the half-done move")
            assert _drift_rows(ctx) == []
    beats.assert_no_gap(max_interval=5.0)
