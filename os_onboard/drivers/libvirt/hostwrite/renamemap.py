"""The per-host rename map: ``<libvirt config dir>/hooks/os-onboard-renames.json``.

A small JSON document that the qemu hook reads on every incoming live
migration (and restore) to rewrite disk sources::

    {"version": 1, "renames": {"legacy/lab-vm2-data": "legacy/volume-7f0c...",
                               "/dev/vg0/lv-data": "/dev/vg0/volume-1b2e..."}}

Why this write is live-safe: it is a file libvirt itself never reads; only
the hook does, and only while a domain is being *created* from a migration
stream or a save file. It lives next to the hook so that it moves with the
host's libvirt config dir (host B of the lab has its own, bind-mounted over
/etc/libvirt in its namespace).

Every change is atomic (temporary file in the same directory, fsync, rename):
the hook sees the old map or the new one, never half a file. Writers take an
exclusive ``flock`` on the hooks directory, so two os-onboard runs cannot lose
each other's entries. Standard library only (the hook imports it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from os_onboard.drivers.libvirt.hostwrite.renames import RenameError

MAP_NAME = "os-onboard-renames.json"
FORMAT_VERSION = 1


def map_path(config_dir: str | os.PathLike[str] = "/etc/libvirt") -> Path:
    """Where the map of the host whose libvirt config dir is ``config_dir`` lives."""
    return Path(config_dir) / "hooks" / MAP_NAME


def load(path: str | os.PathLike[str]) -> dict[str, str]:
    """The map's ``{old: new}`` entries; empty when the file does not exist.

    Raises :class:`RenameError` when the file exists but is not a map of ours.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise RenameError(f"{path}: cannot read the rename map: {exc}") from exc
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise RenameError(f"{path}: not JSON: {exc}") from exc
    renames = doc.get("renames") if isinstance(doc, dict) else None
    if (not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION
            or not isinstance(renames, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in renames.items())):
        raise RenameError(f"{path}: not an os-onboard rename map "
                          f'(expected {{"version": {FORMAT_VERSION}, "renames": {{old: new}}}})')
    return renames


def load_all(config_dirs: Iterable[str | os.PathLike[str]]) -> dict[str, str]:
    """The entries of every host's map (one libvirt config dir per host), merged."""
    renames: dict[str, str] = {}
    for config_dir in config_dirs:
        renames.update(load(map_path(config_dir)))
    return renames


def add(path: str | os.PathLike[str], renames: Mapping[str, str]) -> dict[str, str]:
    """Add ``{old: new}`` entries (atomically) and return the whole map.

    A chain collapses: after ``a -> b``, adding ``b -> c`` also turns the first
    entry into ``a -> c``, so a domain still naming ``a`` lands on the image
    that exists now.
    """
    for old, new in renames.items():
        if not old or not new or old == new:
            raise RenameError(f"invalid rename {old!r} -> {new!r}")
    with _locked(path):
        current = load(path)
        for old, new in renames.items():
            current = {k: (new if v == old else v) for k, v in current.items()}
            current[old] = new
        _write(path, current)
    return current


def remove(path: str | os.PathLike[str], olds: Iterable[str]) -> dict[str, str]:
    """Drop the entries of these old names (atomically); return what is left."""
    drop = set(olds)
    with _locked(path):
        current = load(path)
        left = {k: v for k, v in current.items() if k not in drop}
        if left != current:
            _write(path, left)
    return left


@contextlib.contextmanager
def _locked(path: str | os.PathLike[str]) -> Iterator[None]:
    directory = Path(path).parent
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write(path: str | os.PathLike[str], renames: Mapping[str, str]) -> None:
    target = Path(path)
    text = json.dumps({"version": FORMAT_VERSION, "renames": dict(sorted(renames.items()))},
                      indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the hook may run as another user
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)
