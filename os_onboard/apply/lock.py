"""One apply (or unmanage) at a time per state store: an exclusive file lock.

The lock file is private like the store it guards: 0600 in a directory
created 0700, whatever the umask (:func:`os_onboard.state.store.private_file`).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from os_onboard.exceptions import StateStoreError
from os_onboard.state.store import private_file, sqlite_path


@contextmanager
def apply_lock(state_url: str) -> Iterator[None]:
    """An exclusive lock beside the state store; the kernel drops it on kill -9."""
    store = sqlite_path(state_url)
    if store is not None:
        path = store.with_name(store.name + ".apply.lock")
    else:
        path = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) \
            / "os-onboard" / "apply.lock"
    try:
        fd = private_file(path, os.O_RDWR | os.O_APPEND)
    except OSError as exc:
        raise StateStoreError(f"cannot open the apply lock {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise StateStoreError(f"another apply or unmanage is running ({path}: "
                                  f"{fh.read().strip() or 'pid unknown'})") from None
        fh.truncate(0)
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
