"""One Nova-side helper process fed batch after batch (``apply``'s pipeline).

``run_helper`` starts a helper per call, and each start costs Nova's imports
and configuration (about two seconds of CPU). ``apply`` starts the ``adopt``
helper once, *before* it creates the first port - so those seconds overlap
with Neutron's work - and then sends it each chunk of VMs as soon as that
chunk's ports and disks are ready: one JSON list per line in, one per line
out (``os_onboard_nova._common.run_batch``).
"""

from __future__ import annotations

import json
import queue
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from typing import IO, Any

from os_onboard.cloud.nova_helper import failure_reason, helper_command
from os_onboard.exceptions import NovaHelperError


class HelperStream:
    """``python -m os_onboard_nova.<command> --config-file …`` kept running."""

    def __init__(self, command: str, python: str | None = None,
                 config_files: Sequence[str] = ()) -> None:
        cmd = helper_command(command, python, config_files)
        self.what = f"os_onboard_nova.{command}"
        # stderr to a file: a pipe nobody reads could fill up and stall the helper.
        self._stderr: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in close())
        self._lines: queue.Queue[str | None] = queue.Queue()
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=self._stderr, text=True, bufsize=1)
        except OSError as exc:
            raise NovaHelperError(f"cannot run {cmd[0]}: {exc}") from exc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)  # EOF

    def run(self, items: list[dict], timeout: float) -> list[dict]:
        """Send one batch; its results (one per item, in any order)."""
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(items) + "\n")
            self._proc.stdin.flush()
        except OSError as exc:  # the helper died
            raise NovaHelperError(f"{self.what} failed: {self._reason()}") from exc
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                self.close()
                raise NovaHelperError(f"{self.what}: no answer after {timeout:.0f} s") from None
            if line is None:
                raise NovaHelperError(f"{self.what} failed: {self._reason()}")
            try:
                results = json.loads(line)
            except json.JSONDecodeError:
                continue  # something printed by Nova's libraries, not the answer
            if isinstance(results, list):
                return results

    def _reason(self) -> str:
        try:  # its stdout is closed: it is exiting
            code: int | None = self._proc.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        self._stderr.seek(0)
        return failure_reason(self._stderr.read(), self.what.split(".")[0], code)

    def close(self) -> None:
        """EOF to the helper, then wait for it (killed after 30 s)."""
        try:
            if self._proc.stdin and not self._proc.stdin.closed:
                self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stderr.close()

    def __enter__(self) -> HelperStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
