"""The adopt helper's instance creates racing on the lab's real Nova (issue 17).

Nova's ``instance_create`` ensures a ``default`` security group for the
context's project; a project-less admin context makes project-less ones, and
creates racing in two helper processes (threads each) left two such rows,
after which every such create fails with ``TypeError: 'NoneType' object is not
subscriptable``. Here two adopt helpers (``HelperStream``, os-onboard's own
client) create many instances of one fresh project at once, and a planted
duplicate must be refused with its ids and repair, then repaired by the lab.

The instances are records only, on a compute host of this module's own: a
nova-compute with Nova's fake driver (as bench/adopt does), disabled for the
scheduler, stopped and deleted at the end with every record the test wrote.
The helper is this checkout's ``extras/nova`` (PYTHONPATH), not the copy the
lab installed, so the test checks the code beside it.
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from os_onboard.cloud.helper_stream import HelperStream
from tests.functional.lab import REPO

EXTRAS = REPO / "extras" / "nova"
HOST = "os-onboard-race"
MARKER = "os-onboard:adopted"
SOCKET = os.environ.get("LAB_OPENSTACK_MYSQL_SOCKET", "/run/mysqld/mysqld.sock")
HELPERS, PER_HELPER = 2, 16  # two processes of four threads each, 32 instances


def sql(query: str) -> list[list[str]]:
    out = subprocess.run(["mariadb", "--protocol=socket", "-S", SOCKET, "-u", "root", "-N",
                          "-B", "-e", query], capture_output=True, text=True, check=True)
    return [line.split("\t") for line in out.stdout.splitlines()]


def cell_db() -> str:
    """The database of the lab's cell1 (where the fake host's instances live)."""
    [[url]] = sql("SELECT database_connection FROM nova_api.cell_mappings "
                  "WHERE name = 'cell1'")
    return url.rsplit("/", 1)[1].split("?")[0]


def null_groups(db: str) -> list[int]:
    """Live project-less default security groups of the cell, by id."""
    return [int(r[0]) for r in sql(
        f"SELECT id FROM `{db}`.security_groups WHERE name = 'default' AND "
        "project_id IS NULL AND deleted = 0 ORDER BY id")]


def project_groups(db: str, project: str) -> int:
    [[count]] = sql(f"SELECT COUNT(*) FROM `{db}`.security_groups WHERE name = 'default' "
                    f"AND project_id = '{project}' AND deleted = 0")
    return int(count)


# -- the fake compute host -------------------------------------------------------------


class FakeCompute:
    """nova-compute with the fake driver, host = node = HOST (bench/adopt's recipe)."""

    def __init__(self, lab: dict[str, str], tmp: Path) -> None:
        import openstack

        self.lab, self.tmp = lab, tmp
        self.conn = openstack.connect(cloud=lab["LAB_OPENSTACK_ADMIN_CLOUD"])
        self.log = tmp / "nova-compute-race.log"
        self.proc: subprocess.Popen | None = None
        self.flavor_id = ""

    def start(self, timeout: float = 240) -> None:
        src = configparser.ConfigParser(interpolation=None)
        src.read(self.lab["LAB_NOVA_COMPUTE_CONF_B"])
        state = self.tmp / "nova-state"
        (state / "lock").mkdir(parents=True, exist_ok=True)
        src.remove_section("libvirt")
        src["DEFAULT"].update({"host": HOST, "my_ip": "127.0.0.1", "state_path": str(state),
                               "instances_path": str(self.tmp / "instances"),
                               "compute_driver": "fake.FakeDriver"})
        src["oslo_concurrency"]["lock_path"] = str(state / "lock")
        conf = self.tmp / "nova-compute-race.conf"
        with open(conf, "w") as fh:
            src.write(fh)
        conf.chmod(0o600)
        venv = Path(self.lab["LAB_OPENSTACK_BIN"])
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(venv / "nova-compute"), "--config-file", str(conf)],
                env={"PATH": f"{venv}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                     "LANG": "C.UTF-8"},
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        # Mapped (discover_hosts finds its compute node): the helper's cell_for_host.
        while not sql(f"SELECT id FROM nova_api.host_mappings WHERE host = '{HOST}'"):
            assert self.proc.poll() is None, f"nova-compute (fake) exited; see {self.log}"
            assert time.monotonic() < deadline, f"nova-compute (fake) not up; see {self.log}"
            time.sleep(3)
            subprocess.run([*shlex.split(self.lab["LAB_NOVA_MANAGE"]), "cell_v2",
                            "discover_hosts"], capture_output=True, check=False)
        for service in self.conn.compute.services(host=HOST, binary="nova-compute"):
            self.conn.compute.disable_service(service, HOST, "nova-compute",
                                              "os-onboard test_nova_helper_race: fake driver")
        self.flavor_id = self.conn.compute.create_flavor(
            name="os-onboard-race", ram=64, vcpus=1, disk=1).id

    def teardown(self) -> None:
        if self.flavor_id:
            self.conn.compute.delete_flavor(self.flavor_id, ignore_missing=True)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        # Deleting the service deletes its compute node, host mapping and provider.
        for service in self.conn.compute.services(host=HOST, binary="nova-compute"):
            self.conn.compute.delete_service(service)
        for rp in self.conn.placement.get("/resource_providers", params={"name": HOST},
                                          microversion="1.38").json()["resource_providers"]:
            self.conn.placement.delete(f"/resource_providers/{rp['uuid']}",
                                       microversion="1.38")

    def leftovers(self) -> list[str]:
        services = list(self.conn.compute.services(host=HOST))
        servers = list(self.conn.compute.servers(all_projects=True, host=HOST))
        rps = self.conn.placement.get("/resource_providers", params={"name": HOST},
                                      microversion="1.38").json()["resource_providers"]
        return ([f"service {s.id}" for s in services] + [f"server {s.id}" for s in servers]
                + [f"provider {r['uuid']}" for r in rps])


@pytest.fixture(scope="module")
def compute(lab: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        FakeCompute]:
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", lab["OS_CLIENT_CONFIG_FILE"])
    fake = FakeCompute(lab, tmp_path_factory.mktemp("race"))
    try:
        fake.start()
        yield fake
    finally:
        fake.teardown()
    assert fake.leftovers() == []


@pytest.fixture
def helper_env(lab: dict[str, str], tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Path:
    """This checkout's helper, its failures logged under tmp_path."""
    monkeypatch.setenv("PYTHONPATH", str(EXTRAS))
    monkeypatch.setenv("OS_ONBOARD_NOVA_PYTHON", lab["OS_ONBOARD_NOVA_PYTHON"])
    monkeypatch.setenv("OS_ONBOARD_NOVA_CONFIG", lab["OS_ONBOARD_NOVA_CONFIG"])
    log = tmp_path / "nova-helper.log"
    monkeypatch.setenv("OS_ONBOARD_NOVA_LOG", str(log))
    return log


def item(compute: FakeCompute, project: str, user: str, n: int) -> dict:
    """What apply sends for a VM (steps._server_item), without disks and NICs."""
    return {"uuid": str(uuid.uuid4()), "name": f"race-{n:02d}", "host": HOST, "node": HOST,
            "project_id": project, "user_id": user, "flavor_id": compute.flavor_id,
            "image_ref": "", "kernel_id": None, "ramdisk_id": None,
            # Shut off: the fake driver has no such guest, and power sync leaves
            # a stopped instance without one alone.
            "vm_state": "stopped", "power_state": 4, "system_metadata": {},
            "root_device_name": "/dev/vda", "root_kind": "image", "availability_zone": None,
            "metadata": {MARKER: json.dumps({"by": "tests/functional/test_nova_helper_race"})},
            "bdms": [], "ports": []}


def helper(command: str, items: list[dict]) -> list[dict]:
    """One batch through a helper process of its own."""
    with HelperStream(command) as stream:
        return stream.run(items, timeout=300)


def release(items: list[dict]) -> None:
    results = helper("release", [{"uuid": i["uuid"], "host": HOST} for i in items])
    assert [r for r in results if "error" in r] == []


def test_racing_helpers_create_one_default_group_per_project(compute, helper_env):
    db = cell_db()
    project, user = uuid.uuid4().hex, uuid.uuid4().hex  # a project Nova has no group of
    before = null_groups(db)
    [[top]] = sql(f"SELECT COALESCE(MAX(id), 0) FROM `{db}`.security_groups")
    batches = [[item(compute, project, user, h * PER_HELPER + n) for n in range(PER_HELPER)]
               for h in range(HELPERS)]
    streams = [HelperStream("adopt") for _ in range(HELPERS)]
    try:
        for stream in streams:  # Nova imported in both before either writes
            assert stream.run([], timeout=120) == []
        start = threading.Barrier(HELPERS)

        def adopt(stream: HelperStream, batch: list[dict]) -> list[dict]:
            start.wait()
            return stream.run(batch, timeout=300)

        with ThreadPoolExecutor(HELPERS) as pool:
            results = [r for rs in pool.map(adopt, streams, batches) for r in rs]
        errors = [r["error"] for r in results if "error" in r]
        assert errors == [], f"{len(errors)} of {len(results)} failed: {errors[0]}\n" + (
            helper_env.read_text() if helper_env.exists() else "")
        assert sorted(r["created"] for r in results) == [True] * HELPERS * PER_HELPER
        assert project_groups(db, project) == 1
        assert null_groups(db) == before  # none made, none duplicated
    finally:
        for stream in streams:
            stream.close()
        release([i for batch in batches for i in batch])
        # What the creates added to the cell: this project's group and, from a
        # project-less helper, project-less ones (no instance uses either now).
        sql(f"DELETE FROM `{db}`.security_groups WHERE project_id = '{project}' OR "
            f"(name = 'default' AND project_id IS NULL AND id > {int(top)})")


def plant(db: str) -> int:
    """A project-less default group, as a racing project-less create leaves one."""
    [[gid]] = sql(f"INSERT INTO `{db}`.security_groups (created_at, name, description, "
                  "user_id, project_id, deleted) VALUES (NOW(), 'default', 'default', "
                  "NULL, NULL, 0); SELECT LAST_INSERT_ID();")
    return int(gid)


def lab_repair() -> None:
    """The step of `lab up` that repairs the cell databases, alone."""
    subprocess.run(["bash", "-c", "set -euo pipefail; LAB_DIR=$1; . \"$1/lib/common.sh\"; "
                    ". \"$1/lib/openstack.sh\"; os_repair_default_groups", "-",
                    str(REPO / "lab")], check=True, capture_output=True, text=True)


def instance_rows(db: str, instance: str) -> int:
    [[count]] = sql(f"SELECT COUNT(*) FROM `{db}`.instances WHERE uuid = '{instance}'")
    return int(count)


def test_duplicate_project_less_groups_are_refused_then_repaired(compute, helper_env):
    db = cell_db()
    project, user = uuid.uuid4().hex, uuid.uuid4().hex
    before = null_groups(db)
    planted = [plant(db), plant(db)]
    poisoned = before + planted
    first, second = item(compute, project, user, 1), item(compute, project, user, 2)
    try:
        [refused] = helper("adopt", [first])
        error = refused.get("error", "")
        assert error.startswith(
            f"PoisonedCell: cell database 127.0.0.1/{db} (cell cell1) holds {len(poisoned)} "
            "'default' security groups without a project: "), refused
        assert all(f"id {gid} (user None, created " in error for gid in poisoned), error
        assert (f"UPDATE security_groups SET deleted = id, deleted_at = NOW() WHERE name = "
                f"'default' AND project_id IS NULL AND deleted = 0 AND id <> {poisoned[0]};"
                in error), error
        assert "traceback" not in refused and not helper_env.exists()  # the message says it all
        assert instance_rows(db, first["uuid"]) == 0 and project_groups(db, project) == 0

        lab_repair()
        assert null_groups(db) == [poisoned[0]]  # the oldest kept, the others soft-deleted
        lab_repair()  # idempotent
        assert null_groups(db) == [poisoned[0]]

        results = helper("adopt", [first, second])
        assert [r.get("error") for r in results] == [None, None]
        assert project_groups(db, project) == 1
    finally:
        release([first, second])
        ids = ", ".join(map(str, planted))
        sql(f"DELETE FROM `{db}`.security_groups WHERE project_id = '{project}' OR id IN "
            f"({ids})")
        # The rows that were there before, live again if the repair soft-deleted one.
        if before:
            sql(f"UPDATE `{db}`.security_groups SET deleted = 0, deleted_at = NULL WHERE id IN "
                f"({', '.join(map(str, before))})")
