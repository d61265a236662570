"""The onboarding flow through Horizon, in a real browser (issue 16).

A VM made for the test in the lab's vSphere simulator (powered on, one NIC on
the mapped port group, a MAC and name of its own, so no other engineer's test
meets it) is taken through the Onboarding panels: its vCenter registered as
a host, discovered, the VM planned (the per-VM diff), applied (adopted), and
found in Project > Instances; then released (unmanage) through the panel and
destroyed. Every page is screenshotted (build/screenshots/).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.ui.conftest import Ui, playwright_api

PlaywrightTimeout = playwright_api.TimeoutError

NAME = "legacy-ui-adopt"
MAC = "00:50:56:3f:00:c7"
JOB_TIMEOUT_MS = 150_000


@pytest.fixture(scope="module")
def vc_vm(lab: dict[str, str]) -> Iterator[dict[str, Any]]:
    """The VM to adopt, made in the simulator as a vCenter user makes one."""
    if not lab.get("LAB_VC_AZ"):
        pytest.skip("the lab runs no VMware nova-compute (lab/lab env: no LAB_VC_AZ)")
    from pyVim.connect import Disconnect, SmartConnect
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    from tests.functional.vcenter import create_vm, destroy, every, vm_spec

    parts = urlsplit(lab["LAB_VSPHERE_URI"])
    si = SmartConnect(host=parts.hostname, port=parts.port, user=parts.username,
                      pwd=lab["VSPHERE_PASSWORD"], protocol="http")
    for stale in [v for n, v in every(si, vim.VirtualMachine).items() if n == NAME]:
        _release(lab, stale.config.instanceUuid)  # an interrupted run's
        destroy(stale)
    instance_uuid = str(uuid.uuid4())
    vm = create_vm(si, vm_spec(si, NAME, instance_uuid, MAC, lab["LAB_VC_PORT_GROUP"]), "DC0_C0")
    WaitForTask(vm.PowerOnVM_Task())
    try:
        yield {"uuid": instance_uuid, "vm": vm}
    finally:
        _release(lab, instance_uuid)
        destroy(vm)
        Disconnect(si)


def _token(lab: dict[str, str]) -> str:
    import openstack.config

    return str(openstack.config.OpenStackConfig().get_one(
        lab["LAB_OPENSTACK_ADMIN_CLOUD"]).get_session().get_token())


def _api(lab: dict[str, str], method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(
        lab["LAB_ONBOARD_URL"] + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"X-Auth-Token": _token(lab), "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def _release(lab: dict[str, str], instance_uuid: str) -> None:
    """Whatever the browser left adopted: released through the API (a no-op when
    nothing is), so the lab keeps no server of this test."""
    job = _api(lab, "POST", "/v1/unmanages", {"vms": [instance_uuid]})["job"]
    deadline = time.monotonic() + 120
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(1)
        job = _api(lab, "GET", f"/v1/jobs/{job['id']}")["job"]


def _wait_job(ui: Ui, name: str, want: str = "succeeded") -> None:
    """On a job page (it reloads itself every 2 s while the job runs): until it ends."""
    page = ui.page
    page.wait_for_selector("#job-state[data-state]")
    ui.shot(f"{name}-started")
    if page.locator("#job-state").get_attribute("data-state") == "queued":
        # Best effort: the job in progress, as the next reloads show it (a short
        # job may end between two of them).
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_selector("#job-state[data-state=running]", timeout=10_000)
            page.wait_for_load_state("networkidle")
            ui.shot(f"{name}-running")
    page.wait_for_selector("#job-state:not([data-state=queued]):not([data-state=running])",
                           timeout=JOB_TIMEOUT_MS)
    page.wait_for_load_state("networkidle")
    ui.shot(f"{name}-{page.locator('#job-state').get_attribute('data-state')}")
    state = page.locator("#job-state").get_attribute("data-state")
    assert state == want, f"{name}: job {state}: {page.locator('#job-summary').inner_text()}"


def test_a_vcenter_vm_is_onboarded_through_the_panels(ui: Ui, lab: dict[str, str],
                                                        vc_vm: dict[str, Any]) -> None:
    page, uri = ui.page, lab["LAB_VSPHERE_URI"]

    # Hosts: the vCenter registered (afresh: an earlier run's registration removed).
    ui.go("/admin/onboard_hosts/", "hosts-before")
    old = page.locator(f'#hosts-table tr[data-uri="{uri}"]')
    if old.count():
        ui.confirm_danger(old.get_by_role("button", name=re.compile("Remove")))
    page.fill("#host-uri", uri)
    page.fill("#host-name", "ui-vcenter")
    page.fill("#host-groups", "ui-test")
    ui.submit("#register-submit")
    row = page.locator(f'#hosts-table tr[data-uri="{uri}"]')
    assert row.count() == 1, page.locator(".alert").all_inner_texts()
    ui.shot("hosts-registered")
    # Reachability now, without a discovery (a bounded read-only read by the API).
    ui.submit(f'#hosts-table tr[data-uri="{uri}"] button.onboard-check')
    reach = row.locator(".reachability").inner_text()
    assert reach.startswith("reachable") and " ms" in reach, reach
    ui.shot("hosts-checked")

    # Discover it (a job: its page follows the progress).
    row.locator("input[type=checkbox]").check()
    ui.submit("#discover-submit")
    _wait_job(ui, "discovery")
    ui.go("/admin/onboard_hosts/", "hosts-discovered")
    last = page.locator(f'#hosts-table tr[data-uri="{uri}"] .last-discovery').inner_text()
    assert "ok" in last and re.search(r"took \d+ ms", last), last

    # Inventory: search for the VM, tick it, plan it.
    ui.go("/admin/onboard_inventory/", "inventory")
    page.fill("#f-name", NAME)
    ui.submit("#filter-submit")
    vm_row = page.locator(f'#inventory-table tr[data-vm="{NAME}"]')
    assert vm_row.count() == 1
    assert MAC in vm_row.inner_text() and vc_vm["uuid"] in vm_row.inner_text()
    ui.shot("inventory-filtered")
    # The API searches MACs (any case), IPs and disk identifiers, not only names.
    page.fill("#f-name", "")
    page.fill("#f-q", MAC.upper())
    ui.submit("#filter-submit")
    assert page.locator("#inventory-table tbody tr[data-vm]").count() == 1
    assert vm_row.locator("mark").first.inner_text() == MAC
    assert "matched: mac" in vm_row.inner_text()
    ui.shot("inventory-search-mac")
    vm_row.locator("input[type=checkbox]").check()
    ui.submit("#plan-selected-submit")
    ui.shot("plan-form")
    assert vc_vm["uuid"] in page.locator("#plan-vms").input_value()
    assert '"admin"' in page.locator("#plan-mapping").input_value()
    ui.submit("#plan-submit")
    _wait_job(ui, "plan-job")

    # The plan's per-VM diff: to be created, nothing blocked.
    ui.submit("#show-plan")
    ui.shot("plan-diff")
    vm_plan = page.locator(f'.plan-vm[data-vm="{NAME}"]')
    assert "create" in vm_plan.locator(".panel-heading").inner_text()
    assert vm_plan.locator(".blocked").count() == 0
    assert vm_plan.locator(".plan-diff tbody tr").count() >= 2  # port, server, ...

    # Apply: live progress, then the outcome.
    ui.submit("#apply-submit")
    _wait_job(ui, "apply")
    assert "adopted" in page.locator(f'#job-result tr[data-vm="{NAME}"]').inner_text()
    apply_job = page.url

    # The adopted VM, in Horizon's own instance lists.
    ui.go("/project/instances/", "project-instances")
    assert page.get_by_role("link", name=NAME).count() >= 1, "not in Project > Instances"
    # Admin > Instances pages all projects' servers (other tests' too): filter by name.
    ui.go("/admin/instances/", "admin-instances")
    search = page.locator(".table_search").first
    search.locator(".dropdown-toggle").click()
    search.locator('[data-select-value="name"]').click()
    search.locator("input[type=text]").fill(NAME)
    with page.expect_navigation():
        search.locator("input[type=text]").press("Enter")
    page.wait_for_load_state("networkidle")
    ui.shot("admin-instances-filtered")
    assert page.get_by_role("link", name=NAME).count() >= 1, "not in Admin > Instances"

    # Drift & audit, and every job so far.
    ui.go("/admin/onboard_drift/", "drift-audit")
    assert "vm-gone" in page.locator("#drift-policies-table").inner_text()
    assert page.locator("#policy-groups-table, #policy-groups-none").count() >= 1
    ui.go("/admin/onboard_apply/", "jobs")

    # Release it through the panel: the apply job's "Release these VMs" button.
    ui.go(apply_job.removeprefix(ui.base), "apply-job-again")
    ui.submit("#release-adopted")
    assert vc_vm["uuid"] in page.locator("#unmanage-vms").input_value()
    ui.shot("release-form")
    ui.confirm_danger(page.locator("#unmanage-submit"))
    _wait_job(ui, "release")
    assert "released" in page.locator("#job-progress").inner_text()

    # The registration goes too.
    ui.go("/admin/onboard_hosts/", "hosts-end")
    ui.confirm_danger(page.locator(f'#hosts-table tr[data-uri="{uri}"]').get_by_role(
        "button", name=re.compile("Remove")))
    assert page.locator(f'#hosts-table tr[data-uri="{uri}"]').count() == 0


def test_the_panels_on_a_narrow_window(narrow_ui: Ui) -> None:
    """Every panel renders on a phone-sized window, without console errors."""
    for path, name in (("/admin/onboard_hosts/", "hosts"),
                       ("/admin/onboard_inventory/", "inventory"),
                       ("/admin/onboard_plan/", "plan"), ("/admin/onboard_apply/", "jobs"),
                       ("/admin/onboard_drift/", "drift-audit")):
        page = narrow_ui.go(path, name)
        assert page.locator(".alert-danger").count() == 0, page.locator(".alert").all_inner_texts()
        assert page.locator("h1").first.is_visible()
        if name == "plan":  # saved plans, from GET /v1/plans
            assert page.locator("#plans-table").count() == 1
