"""Architecture guardrails: each third-party SDK is imported in one module only."""

import ast
from pathlib import Path

import os_onboard

PACKAGE = Path(os_onboard.__file__).parent

# third-party module -> the only modules allowed to import it
SEAMS = {
    "libvirt": {"os_onboard/drivers/libvirt/api.py"},
    "pyVmomi": {"os_onboard/drivers/vsphere/api.py"},
    "pyVim": {"os_onboard/drivers/vsphere/api.py"},
    "cliff": {"os_onboard/cli/"},
    "sqlalchemy": {"os_onboard/state/"},
    "openstack": {"os_onboard/cloud/openstack/"},
    "keystoneauth1": {"os_onboard/cloud/openstack/"},
}
# no I/O libraries at all: the planner gets a CloudView (plain data), not a connection
PURE = ("os_onboard/inventory/", "os_onboard/mapping/", "os_onboard/plan/")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_each_sdk_is_imported_in_its_seam_only():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        for module in _imports(path):
            allowed = SEAMS.get(module)
            if allowed is not None and not any(rel.startswith(a) for a in allowed):
                offenders.append(f"{rel} imports {module}")
            if rel.startswith(PURE) and module in {"libvirt", "sqlalchemy", "cliff", "socket",
                                                 "openstack", "subprocess"}:
                offenders.append(f"{rel} (pure) imports {module}")
    assert offenders == []
