"""Hostile domain XML in the rename path (hostwrite/renames.py, run by the qemu hook):
RenameError or a correct rewrite, never another exception; and the hook, given
XML it cannot read, writes nothing (libvirt keeps the XML as it was)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings

from os_onboard.drivers.libvirt.hostwrite import qemu_hook, renamemap
from os_onboard.drivers.libvirt.hostwrite.renames import disk_sources, rewrite_disk_sources
from os_onboard.exceptions import RenameError
from tests.unit.drivers.libvirt.hostwrite.test_renames import DOMAIN
from tests.unit.fuzz.counts import ran
from tests.unit.fuzz.strategies import mutated

SEEDS = [DOMAIN, DOMAIN.replace("'", '"'), (Path(__file__).parents[2] / "data" / "domains"
                                            / "lab-style.xml").read_text()]
RENAMES = {"/var/lib/images/legacy-db-root.qcow2": "/var/lib/images/volume-1",
           "legacy/legacy-db-data": "legacy/volume-2", "/dev/vg0/legacy-db-logs": "/dev/vg0/v3"}
KIND = "domain XML in the qemu hook's rename path"


@pytest.mark.fuzz(KIND)
@settings(max_examples=400)
@given(mutated(SEEDS))
def test_rename_path_rewrites_or_refuses(text):
    ran(KIND)
    try:
        sources = disk_sources(text)
        new = rewrite_disk_sources(text, RENAMES)
    except RenameError as exc:
        assert str(exc)
        return
    # a rewrite changes exactly the sources named in the map, and keeps the rest
    expected = [RENAMES.get(s.value, s.value) for s in sources]
    assert [s.value for s in disk_sources(new)] == expected
    assert rewrite_disk_sources(text, {}) is text


@pytest.fixture(scope="module")
def hooks_dir(tmp_path_factory):
    hooks = tmp_path_factory.mktemp("etc-libvirt") / "hooks"
    renamemap.add(hooks / renamemap.MAP_NAME, RENAMES)
    return hooks


@pytest.mark.fuzz(KIND)
@settings(max_examples=100)
@given(text=mutated(SEEDS))
def test_the_hook_writes_nothing_for_xml_it_cannot_read(hooks_dir, text):
    ran(KIND)
    stdout = io.BytesIO()
    code = qemu_hook.main(["vm", "migrate", "begin", "-"], hooks_dir,
                          stdin=io.BytesIO(text.encode("utf-8", "surrogatepass")), stdout=stdout)
    assert code == 0
    try:
        rewrite_disk_sources(text, RENAMES)
    except RenameError:
        assert stdout.getvalue() == b""  # nothing written: libvirt keeps its XML
