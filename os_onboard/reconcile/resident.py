"""What a watcher keeps between its passes: one cloud connection, Nova's helpers.

A single ``reconcile`` pays for a Keystone authentication and, per Nova-side
write, a helper process that imports Nova (about two seconds of CPU each).
``watch`` runs pass after pass, so it keeps both: measured with
bench/reconcile, these were ~0.7 s and ~2 s of the ~5 s between an
out-of-band migration's event and Nova's record naming the new host.

Either is dropped after a failure and made again on next use, so an OpenStack
restart or a helper that died costs one retry, not a stuck watcher.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from os_onboard.cloud.helper_stream import HelperStream
from os_onboard.exceptions import NovaHelperError

T = TypeVar("T")


class Reused(Generic[T]):
    """A lazily made object, forgotten by :meth:`reset` (after an error)."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None

    def get(self) -> T:
        if self._value is None:
            self._value = self._make()
        return self._value

    def reset(self) -> None:
        self._value = None


class ResidentHelpers:
    """Nova-side helper processes kept running, one per command, fed item lists."""

    def __init__(self, python: str | None = None, config_files: Sequence[str] = (),
                 timeout: float = 120) -> None:
        self.python = python
        self.config_files = list(config_files)
        self.timeout = timeout
        self._streams: dict[str, HelperStream] = {}

    def run(self, command: str, items: list[dict]) -> list[dict]:
        stream = self._streams.get(command)
        if stream is None:
            stream = self._streams[command] = HelperStream(command, self.python,
                                                           self.config_files)
        try:
            return stream.run(items, self.timeout)
        except NovaHelperError:
            # Dead or stuck: the next call starts a fresh process.
            self._streams.pop(command, None)
            stream.close()
            raise

    def close(self) -> None:
        for stream in self._streams.values():
            stream.close()
        self._streams.clear()
