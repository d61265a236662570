"""Install the qemu hook wrapper: ``<libvirt config dir>/hooks/qemu``.

The wrapper is a few lines of python3 that import ``qemu_hook`` from this
os-onboard installation and run it. Why installing it is live-safe:

* libvirt runs the hook only at domain life-cycle events, never for a running
  QEMU in steady state; for every event but an incoming migration/restore of a
  domain in the rename map it prints nothing and exits 0, exactly like no hook;
* if os-onboard is later moved or broken, the wrapper still exits 0 silently
  (a failing hook would fail migrations, and on a libvirtd restart libvirt
  kills the QEMU of a domain whose ``reconnect`` hook fails);
* a hook that is not ours is never overwritten (:class:`HookConflict`).

Activation: libvirtd looks for hook scripts when it starts and again on
SIGHUP (virHookCall re-runs virHookInitialize for the daemon "reload"
event). Measured on libvirt 9.0 in the lab: after ``kill -HUP <libvirtd>``
the hook runs for the next domain event, with the same libvirtd pid, and
libvirtd answers again within ~40 ms; without it, the new hook is ignored.
A libvirtd restart works too (it leaves running QEMUs alone: same PID, same
domain id, ``reconnect`` hook called) but is not needed. Removing the hook
needs neither: libvirt checks that the script is executable before each call.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from os_onboard.exceptions import HookConflict

#: a hook file containing this line is ours: we may replace or remove it
MARKER = "# os-onboard-managed-hook"
SYSTEM_PYTHON = "/usr/bin/python3"


def hook_path(config_dir: str | os.PathLike[str] = "/etc/libvirt") -> Path:
    return Path(config_dir) / "hooks" / "qemu"


def render_hook(python: str = SYSTEM_PYTHON, package_root: str | os.PathLike[str] | None = None,
                ) -> str:
    """The wrapper's text: it runs ``qemu_hook.main`` from ``package_root`` (this install)."""
    root = Path(package_root) if package_root else Path(__file__).resolve().parents[4]
    # -I: isolated mode; libvirtd's environment and the user site must not matter.
    return f'''#!{python} -I
{MARKER} v1 (os_onboard.drivers.libvirt.hostwrite.install; see docs/hypervisor-writes.md)
# libvirt qemu hook: on an incoming live migration or restore, rewrites disk
# sources renamed by Cinder "manage existing" (map: os-onboard-renames.json
# next to this file). Every other call: no output, exit 0.
import os
import sys

sys.path.insert(0, {str(root)!r})
try:
    from os_onboard.drivers.libvirt.hostwrite import qemu_hook
except Exception:  # os-onboard moved or broken: never fail (or kill) a guest for it
    sys.exit(0)
sys.exit(qemu_hook.main(sys.argv[1:], os.path.dirname(os.path.abspath(__file__))))
'''


def install_migrate_hook(config_dir: str | os.PathLike[str] = "/etc/libvirt",
                         python: str = SYSTEM_PYTHON) -> str:
    """Write the wrapper (0755) unless an identical one is there.

    Returns "installed", "updated" or "unchanged". Raises :class:`HookConflict`
    when a hook that os-onboard did not write exists. libvirtd must then be
    sent SIGHUP (or restarted) to notice a newly installed hook.
    """
    target = hook_path(config_dir)
    text = render_hook(python)
    state = "installed"
    if target.exists() or target.is_symlink():
        current = _read(target)
        if current is None or MARKER not in current:
            raise HookConflict(
                f"{target} exists and was not installed by os-onboard; refusing to replace it. "
                "Merge the rename filter into it by hand (see docs/hypervisor-writes.md) "
                "or move it away.")
        if current == text:
            return "unchanged"
        state = "updated"
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".qemu.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)  # a concurrent hook run sees the old file or the new one
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return state


def uninstall_migrate_hook(config_dir: str | os.PathLike[str] = "/etc/libvirt") -> bool:
    """Remove the wrapper if it is ours (True when removed). Takes effect at once."""
    target = hook_path(config_dir)
    current = _read(target)
    if current is None:
        return False
    if MARKER not in current:
        raise HookConflict(f"{target} was not installed by os-onboard; leaving it alone")
    target.unlink()
    return True


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HookConflict(f"{path}: cannot read the existing hook: {exc}") from exc
