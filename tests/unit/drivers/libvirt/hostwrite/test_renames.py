"""The host-side pieces of the rename trap: XML rewrite, rename map, hook, installer."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys

import pytest

from os_onboard.drivers.libvirt.hostwrite import install, qemu_hook, renamemap
from os_onboard.drivers.libvirt.hostwrite.renames import (
    RenameError,
    disk_sources,
    rewrite_disk_sources,
)

DOMAIN = """<domain type='qemu'>
  <name>legacy-db</name>
  <uuid>2f0e5c3a-6a3e-4f7b-9b1e-5d7f1c2a9e01</uuid>
  <metadata>
    <inv:app xmlns:inv="http://os-onboard.example/xmlns/legacy-inventory/1.0">
      <inv:owner>team-db &amp; ops</inv:owner>
    </inv:app>
  </metadata>
  <!-- hand-written, keep the comments -->
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/images/legacy-db-root.qcow2' index='3'/>
      <backingStore type='file'>
        <source file='/var/lib/images/base.qcow2'/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type="network" device="disk">
      <auth username="cinder"><secret type="ceph" usage="client.cinder"/></auth>
      <source protocol="rbd" name="legacy/legacy-db-data">
        <host name="127.0.0.1" port="6789"/>
      </source>
      <target dev="vdb" bus="virtio"/>
    </disk>
    <disk type='block' device='disk'>
      <source dev='/dev/vg0/legacy-db-logs'/>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='network' device='disk'>
      <source protocol='iscsi' name='iqn.2013-06.com.example:legacy/1'/>
      <target dev='vdd' bus='virtio'/>
    </disk>
  </devices>
</domain>
"""

RBD_NEW = "legacy/volume-6a1f3f3e-8d8e-4f55-9a55-0c6f1c1e2b10"
# The hook runs under the host's system python3, which does not have os-onboard installed.
SYSTEM_PYTHON = install.SYSTEM_PYTHON if os.access(install.SYSTEM_PYTHON, os.X_OK) else None
needs_system_python = pytest.mark.skipif(SYSTEM_PYTHON is None, reason="no /usr/bin/python3")


def _changed_lines(old: str, new: str) -> list[tuple[str, str]]:
    a, b = old.splitlines(), new.splitlines()
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


def test_rbd_source_is_renamed_and_nothing_else_changes():
    new = rewrite_disk_sources(DOMAIN, {"legacy/legacy-db-data": RBD_NEW})
    assert _changed_lines(DOMAIN, new) == [
        ('      <source protocol="rbd" name="legacy/legacy-db-data">',
         f'      <source protocol="rbd" name="{RBD_NEW}">')]


def test_file_and_block_sources_are_renamed_in_place():
    renames = {"/var/lib/images/legacy-db-root.qcow2": "/var/lib/images/volume-1.qcow2",
               "/dev/vg0/legacy-db-logs": "/dev/vg0/volume-2"}
    new = rewrite_disk_sources(DOMAIN, renames)
    assert _changed_lines(DOMAIN, new) == [
        ("      <source file='/var/lib/images/legacy-db-root.qcow2' index='3'/>",
         "      <source file='/var/lib/images/volume-1.qcow2' index='3'/>"),
        ("      <source dev='/dev/vg0/legacy-db-logs'/>",
         "      <source dev='/dev/vg0/volume-2'/>")]


def test_backing_chain_and_non_rbd_network_names_are_left_alone():
    renames = {"/var/lib/images/base.qcow2": "/x", "iqn.2013-06.com.example:legacy/1": "y"}
    assert rewrite_disk_sources(DOMAIN, renames) is DOMAIN
    assert [(s.disk_type, s.attribute, s.value) for s in disk_sources(DOMAIN)] == [
        ("file", "file", "/var/lib/images/legacy-db-root.qcow2"),
        ("network", "name", "legacy/legacy-db-data"),
        ("block", "dev", "/dev/vg0/legacy-db-logs")]


def test_unrelated_domain_comes_back_unchanged():
    assert rewrite_disk_sources(DOMAIN, {"legacy/other-vm-data": RBD_NEW}) is DOMAIN
    assert rewrite_disk_sources(DOMAIN, {}) is DOMAIN


def test_new_name_is_escaped_for_its_quotes():
    new = rewrite_disk_sources(DOMAIN, {"/dev/vg0/legacy-db-logs": "/dev/vg0/it's&<"})
    assert "<source dev='/dev/vg0/it&apos;s&amp;&lt;'/>" in new
    assert [s.value for s in disk_sources(new)][2] == "/dev/vg0/it's&<"


def test_non_ascii_before_the_disk_keeps_byte_offsets_right():
    xml = DOMAIN.replace("team-db", "équipe-bd ✓")
    new = rewrite_disk_sources(xml, {"legacy/legacy-db-data": RBD_NEW})
    assert f'name="{RBD_NEW}"' in new and "équipe-bd ✓" in new


@pytest.mark.parametrize("bad", ["<domain><devices><disk>", "", "not xml at all"])
def test_malformed_xml_is_a_clear_error(bad):
    with pytest.raises(RenameError, match="not well-formed"):
        rewrite_disk_sources(bad, {"a": "b"})


def test_a_document_that_is_not_a_domain_is_refused():
    with pytest.raises(RenameError, match=r"root element <network>"):
        rewrite_disk_sources("<network><name>x</name></network>", {"a": "b"})


# -- rename map ------------------------------------------------------------------------------

def test_map_add_remove_roundtrip(tmp_path):
    path = renamemap.map_path(tmp_path)
    assert path == tmp_path / "hooks" / "os-onboard-renames.json"
    assert renamemap.load(path) == {}
    renamemap.add(path, {"legacy/a": "legacy/volume-1"})
    renamemap.add(path, {"/dev/vg0/b": "/dev/vg0/volume-2"})
    assert renamemap.load(path) == {"legacy/a": "legacy/volume-1",
                                    "/dev/vg0/b": "/dev/vg0/volume-2"}
    assert json.loads(path.read_text())["version"] == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert renamemap.remove(path, iter(["legacy/a", "unknown"])) == {
        "/dev/vg0/b": "/dev/vg0/volume-2"}
    assert renamemap.load(path) == {"/dev/vg0/b": "/dev/vg0/volume-2"}
    # no temporary files left behind
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_map_chain_collapses_to_the_newest_name(tmp_path):
    path = renamemap.map_path(tmp_path)
    renamemap.add(path, {"legacy/a": "legacy/b"})
    renamemap.add(path, {"legacy/b": "legacy/c"})
    assert renamemap.load(path) == {"legacy/a": "legacy/c", "legacy/b": "legacy/c"}


@pytest.mark.parametrize("renames", [{"a": "a"}, {"": "b"}, {"a": ""}])
def test_map_refuses_empty_or_identity_renames(tmp_path, renames):
    with pytest.raises(RenameError, match="invalid rename"):
        renamemap.add(renamemap.map_path(tmp_path), renames)


@pytest.mark.parametrize("text", ["{", "[]", '{"renames": {"a": "b"}}', '{"version": 1}',
                                  '{"version": 1, "renames": {"a": 1}}'])
def test_map_that_is_not_ours_is_a_clear_error(tmp_path, text):
    path = renamemap.map_path(tmp_path)
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(RenameError, match=str(path)):
        renamemap.load(path)


# -- the hook --------------------------------------------------------------------------------

def _hook(tmp_path, *argv: str, stdin: str = DOMAIN) -> str:
    out = io.BytesIO()
    assert qemu_hook.main(list(argv), tmp_path, io.BytesIO(stdin.encode()), out) == 0
    return out.getvalue().decode()


def test_hook_rewrites_incoming_migration_and_restore(tmp_path):
    renamemap.add(tmp_path / renamemap.MAP_NAME, {"legacy/legacy-db-data": RBD_NEW})
    for op in ("migrate", "restore"):
        out = _hook(tmp_path, "legacy-db", op, "begin", "-")
        assert _changed_lines(DOMAIN, out) == [
            ('      <source protocol="rbd" name="legacy/legacy-db-data">',
             f'      <source protocol="rbd" name="{RBD_NEW}">')]


def test_hook_is_silent_for_other_operations_and_unrelated_domains(tmp_path):
    renamemap.add(tmp_path / renamemap.MAP_NAME, {"legacy/legacy-db-data": RBD_NEW})
    for argv in (("legacy-db", "prepare", "begin", "-"), ("legacy-db", "reconnect", "begin", "-"),
                 ("legacy-db", "started", "begin", "-"), ("legacy-db", "migrate", "end", "-"),
                 ("legacy-db",), ()):
        assert _hook(tmp_path, *argv) == ""
    other = DOMAIN.replace("legacy/legacy-db-data", "legacy/other")
    assert _hook(tmp_path, "other", "migrate", "begin", "-", stdin=other) == ""


def test_hook_without_usable_map_or_xml_prints_nothing_and_succeeds(tmp_path):
    # no map at all: empty output = libvirt keeps the original XML
    assert _hook(tmp_path, "legacy-db", "migrate", "begin", "-") == ""
    (tmp_path / renamemap.MAP_NAME).write_text("{broken")
    assert _hook(tmp_path, "legacy-db", "migrate", "begin", "-") == ""
    renamemap.add(tmp_path / "ok" / renamemap.MAP_NAME, {"legacy/legacy-db-data": RBD_NEW})
    assert _hook(tmp_path / "ok", "x", "migrate", "begin", "-", stdin="<domain><oops>") == ""


# -- installer and the installed wrapper -----------------------------------------------------

def test_install_writes_an_executable_wrapper_once(tmp_path):
    assert install.install_migrate_hook(tmp_path, python=sys.executable) == "installed"
    hook = tmp_path / "hooks" / "qemu"
    assert stat.S_IMODE(hook.stat().st_mode) == 0o755
    assert hook.read_text().startswith(f"#!{sys.executable} -I\n{install.MARKER}")
    assert install.install_migrate_hook(tmp_path, python=sys.executable) == "unchanged"
    assert install.install_migrate_hook(tmp_path, python="/usr/bin/python3") == "updated"
    assert install.uninstall_migrate_hook(tmp_path) is True
    assert not hook.exists()
    assert install.uninstall_migrate_hook(tmp_path) is False


def test_install_refuses_a_foreign_hook(tmp_path):
    hook = tmp_path / "hooks" / "qemu"
    hook.parent.mkdir()
    hook.write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(install.HookConflict, match=f"{hook} exists and was not installed"):
        install.install_migrate_hook(tmp_path)
    with pytest.raises(install.HookConflict):
        install.uninstall_migrate_hook(tmp_path)
    assert hook.read_text() == "#!/bin/sh\nexit 0\n"


@needs_system_python
def test_installed_wrapper_runs_as_libvirt_would_call_it(tmp_path):
    install.install_migrate_hook(tmp_path)
    hooks = tmp_path / "hooks"
    renamemap.add(hooks / renamemap.MAP_NAME, {"legacy/legacy-db-data": RBD_NEW})
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # libvirt passes a minimal env

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([hooks / "qemu", *argv], input=DOMAIN, capture_output=True,
                              text=True, env=env, timeout=30, check=False)

    migrate = run("legacy-db", "migrate", "begin", "-")
    assert (migrate.returncode, migrate.stderr) == (0, "")
    assert f'name="{RBD_NEW}"' in migrate.stdout
    started = run("legacy-db", "started", "begin", "-")
    assert (started.returncode, started.stdout) == (0, "")


@needs_system_python
def test_wrapper_of_a_vanished_install_still_succeeds_silently(tmp_path):
    hook = tmp_path / "hooks" / "qemu"
    hook.parent.mkdir()
    hook.write_text(install.render_hook(SYSTEM_PYTHON, package_root=tmp_path / "gone"))
    hook.chmod(0o755)
    result = subprocess.run([hook, "legacy-db", "reconnect", "begin", "-"], input=DOMAIN,
                            capture_output=True, text=True, timeout=30, check=False)
    assert (result.returncode, result.stdout) == (0, "")
