"""The lab's vSphere simulator against OpenStack's real VMware clients (issue 13).

Starts a private simulator (the lab's build, ``LAB_VSPHERE_BIN``) on free
ports with ``-https-listen -esx-endpoints`` — the lab's shared one stays
untouched — and drives it with oslo.vmware and Nova's
``nova.virt.vmwareapi.VMwareVCDriver`` from the lab's OpenStack venv
(``lab/vsphere/nova_driver_check.py``). pyVmomi over the plain-http listener
gives the independent view.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tests.functional.lab import lab_env

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "lab" / "vsphere" / "nova_driver_check.py"
MODEL = ["-clusters", "1", "-cluster-hosts", "3", "-standalone", "2", "-vms", "4"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def openstack_python() -> str:
    env = lab_env()
    python = Path(env.get("LAB_OPENSTACK_VENV", "/nonexistent")) / "bin" / "python"
    if not python.exists():
        pytest.skip("the lab's OpenStack venv is missing (run 'make lab-up')")
    probe = subprocess.run([str(python), "-c", "import nova.virt.vmwareapi.driver, oslo_vmware"],
                           capture_output=True, text=True, timeout=120, check=False)
    if probe.returncode != 0:
        pytest.skip(f"nova/oslo.vmware not importable in {python}: {probe.stderr[-300:]}")
    return str(python)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A private simulator: (http port, https port, password, log path)."""
    binary = lab_env().get("LAB_VSPHERE_BIN")
    if not binary or not Path(binary).exists():
        pytest.skip("no simulator build (LAB_VSPHERE_BIN; run 'make lab-up')")
    tmp = tmp_path_factory.mktemp("vcsim")
    http_port, https_port = _free_port(), _free_port()
    password = secrets.token_urlsafe(12)
    log = tmp / "vcsim.log"
    env = dict(os.environ, VCSIM_PASSWORD=password, TMPDIR=str(tmp))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, "-listen", f"127.0.0.1:{http_port}",
             "-https-listen", f"127.0.0.1:{https_port}",
             "-esx-endpoints", "-username", "onboard", *MODEL],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while b"READY " not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"simulator did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield http_port, https_port, password, log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _get(url: str) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with urllib.request.urlopen(url, context=ctx, timeout=30) as r:
        return r.read()


def test_wsdl_on_both_listeners(sim):
    http_port, https_port, _, _ = sim
    for base in (f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{https_port}"):
        service = _get(f"{base}/sdk/vimService.wsdl")
        assert b'<import location="vim.wsdl" namespace="urn:vim25"/>' in service
        vim_wsdl = _get(f"{base}/sdk/vim.wsdl")
        for op in (b"FindAllByUuid", b"FindExtension", b"RegisterExtension",
                   b"RetrievePropertiesEx"):
            assert b'<operation name="' + op + b'">' in vim_wsdl


def _oslo(python: str, https_port: int, password: str, code: str) -> list:
    script = f"""
import json, warnings
warnings.simplefilter('ignore')
from oslo_vmware import api, vim_util
s = api.VMwareAPISession('127.0.0.1', 'onboard', {password!r}, api_retry_count=1,
                         task_poll_interval=0.2, port={https_port}, insecure=True)
out = []
{code}
print(json.dumps(out))
"""
    r = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=180,
                       check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _pyvmomi_vms(http_port: int, password: str) -> list[tuple[str, str, str, str]]:
    """(moref, name, instanceUuid, BIOS uuid) of every VM, read with pyVmomi over http."""
    conn = SmartConnect(host="127.0.0.1", port=http_port, user="onboard", pwd=password,
                        protocol="http")
    try:
        content = conn.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder,
                                                       [vim.VirtualMachine], True)
        try:
            return [(v._moId, v.name, v.config.instanceUuid, v.config.uuid) for v in view.view]
        finally:
            view.DestroyView()
    finally:
        Disconnect(conn)


def test_oslo_vmware_traversal_and_indexed_paths(sim, openstack_python):
    """get_objects (recursive traversal) finds every VM once; indexed paths answer."""
    http_port, https_port, password, _ = sim
    expected = sorted((vm, uuid) for vm, _, uuid, _ in _pyvmomi_vms(http_port, password))
    got = _oslo(openstack_python, https_port, password, """
r = s.invoke_api(vim_util, 'get_objects', s.vim, 'VirtualMachine', 1000,
                 ['config.instanceUuid', 'config.extraConfig["nvp.vm-uuid"]',
                  'config.hardware.device[4000].macAddress'])
for o in r.objects:
    props = {p.name: p.val for p in o.propSet}
    out.append([o.obj.value, props.get('config.instanceUuid'),
                'config.extraConfig["nvp.vm-uuid"]' in props,
                props.get('config.hardware.device[4000].macAddress')])
""")
    assert sorted((vm, uuid) for vm, uuid, _, _ in got) == expected
    assert not any(tagged for _, _, tagged, _ in got)  # no VM carries nvp.vm-uuid
    assert all(mac and mac.count(":") == 5 for _, _, _, mac in got)  # NIC key 4000


def test_find_all_by_uuid(sim, openstack_python):
    http_port, https_port, password, _ = sim
    moref, _, instance_uuid, bios_uuid = min(_pyvmomi_vms(http_port, password),
                                             key=lambda v: v[1])
    ids = moref, instance_uuid, bios_uuid
    got = _oslo(openstack_python, https_port, password, f"""
si = s.vim.service_content.searchIndex
for uuid, instance in (({ids[1]!r}, True), ({ids[2]!r}, False), ({ids[1]!r}, False), ('0-0', True)):
    r = s.invoke_api(s.vim, 'FindAllByUuid', si, uuid=uuid, vmSearch=True, instanceUuid=instance)
    out.append([m.value for m in r or []])
""")
    bios_hits = got[1]
    assert got[0] == [ids[0]]
    assert ids[0] in bios_hits
    assert got[2] == [] and got[3] == []


def test_nova_vmware_driver(sim, openstack_python, tmp_path):
    """Nova's VMwareVCDriver: constructor .. destroy, as nova-compute calls them.

    The spawned VM gets a NIC on the distributed port group DC0_DVPG0 (a 'dvs'
    VIF with dvs_port_group_name, as a port bound for the VMware driver carries).
    """
    _, https_port, password, log = sim
    r = subprocess.run([openstack_python, str(CHECK), "--port", str(https_port)],
                       capture_output=True, text=True, timeout=300, check=False,
                       env=dict(os.environ, VCSIM_PASSWORD=password))
    steps = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    failed = [s for s in steps if not s["ok"]]
    assert r.returncode == 0 and not failed, (failed, r.stderr[-3000:], log.read_text()[-3000:])
    names = [s["step"] for s in steps]
    for name in ("constructor", "init_host", "get_available_resource", "list_instances", "spawn",
                 "NIC on the port group", "get_vm_ref (FindAllByUuid)", "get_vnc_console",
                 "get_volume_connector", "update_provider_tree", "power_off", "power_on",
                 "reboot hard", "reboot soft", "destroy", "list_instances (destroyed)"):
        assert name in names
