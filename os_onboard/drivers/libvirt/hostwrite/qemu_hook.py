"""libvirt's ``qemu`` hook: rewrite renamed disk sources of incoming domains.

libvirt runs ``/etc/libvirt/hooks/qemu <domain> <operation> <sub-op> <extra>``
with the domain XML on stdin, synchronously, for every QEMU domain event
(https://libvirt.org/hooks.html). Two operations are *filters*, where libvirt
reads the new domain XML from the hook's stdout:

* ``migrate begin -`` on the **destination** host of an incoming live
  migration, before the destination QEMU is started: the XML is the source's
  live (migratable) definition, still naming the image by its old name.
* ``restore begin -`` when a domain is restored from a save file
  (``virsh restore``, managed save): the XML saved in the file.

For these, disk sources found in the rename map (``renamemap.py``, next to the
hook) are replaced by their new names, so the destination QEMU opens
``legacy/volume-<id>`` instead of the name Cinder renamed away. Empty stdout
means "use the original XML unchanged" (libvirt's documented rule, see
qemuMigrationDstPrepareAny), so a domain the map does not concern gets no
output at all: libvirt proceeds exactly as without the hook.

Every other operation (prepare, start, started, stopped, release, reconnect,
attach) exits 0 and prints nothing. This matters beyond politeness: on a
libvirtd restart the hook runs ``reconnect begin`` for each running domain and
libvirt *kills the QEMU* when the hook fails. So this hook never exits
non-zero: a missing or unreadable map, malformed XML or any bug means
"no output, exit 0", i.e. libvirt behaves as if the hook were not there.

Standard library only: it runs under the host's system python3, through the
wrapper that ``install.py`` writes.
"""

from __future__ import annotations

import contextlib
import sys
import syslog
from pathlib import Path
from typing import BinaryIO

#: operations whose stdout libvirt uses as the new domain XML
FILTER_OPERATIONS = frozenset({"migrate", "restore"})


def main(argv: list[str], hooks_dir: str | Path, stdin: BinaryIO | None = None,
         stdout: BinaryIO | None = None) -> int:
    """Run the hook for ``argv`` (libvirt's arguments without the program name); always 0."""
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout.buffer
    try:
        # Always drain stdin: libvirt writes the XML for every operation.
        data = stdin.read()
        if len(argv) < 3 or argv[1] not in FILTER_OPERATIONS or argv[2] != "begin":
            return 0
        new = filter_xml(data.decode("utf-8"), Path(hooks_dir))
        if new is not None:
            stdout.write(new.encode("utf-8"))
            stdout.flush()
            _log(f"{argv[0]}: {argv[1]}: disk sources rewritten from the rename map")
    except BaseException as exc:  # a hook failure would fail (or even kill) the guest
        _log(f"{argv[:3]}: ignored error, XML left unchanged: {exc!r}")
    return 0


def filter_xml(xml: str, hooks_dir: Path) -> str | None:
    """The rewritten XML, or None when nothing is to change (or the map is unusable)."""
    # Imported here so that an import problem is caught by main's guard too.
    from os_onboard.drivers.libvirt.hostwrite import renamemap
    from os_onboard.drivers.libvirt.hostwrite.renames import RenameError, rewrite_disk_sources

    try:
        renames = renamemap.load(hooks_dir / renamemap.MAP_NAME)
    except RenameError as exc:
        _log(f"rename map unusable, XML left unchanged: {exc}")
        return None
    if not renames:
        return None
    new = rewrite_disk_sources(xml, renames)
    return new if new != xml else None


def _log(message: str) -> None:
    # syslog, not a file of ours: nothing else is written on the host; without
    # a syslog daemon the message is dropped silently.
    with contextlib.suppress(Exception):  # logging must not be the reason a hook fails
        syslog.syslog(syslog.LOG_INFO, f"os-onboard qemu hook: {message}")
