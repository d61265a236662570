"""One apply (or unmanage) at a time per state store: an exclusive file lock."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from os_onboard.exceptions import StateStoreError


@contextmanager
def apply_lock(state_url: str) -> Iterator[None]:
    """An exclusive lock beside the state store; the kernel drops it on kill -9."""
    if state_url.startswith("sqlite:///") and state_url != "sqlite:///:memory:":
        path = Path(state_url.removeprefix("sqlite:///") + ".apply.lock")
    else:
        path = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) \
            / "os-onboard" / "apply.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
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
