"""Run os-onboard's Nova-side helper (``extras/nova``) with Nova's own Python.

Nova has no API for registering an existing hypervisor or instance; those few
records are written through Nova's object layer by ``os_onboard_nova``, which
must run where Nova's configuration and databases are. This module is the
boundary: it runs the helper as a subprocess and turns its one JSON line (or
its one error line) into a dict or a :class:`NovaHelperError`.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence

from os_onboard.exceptions import NovaHelperError

PYTHON_ENV = "OS_ONBOARD_NOVA_PYTHON"
CONFIG_ENV = "OS_ONBOARD_NOVA_CONFIG"


def run_helper(command: str, args: Sequence[str], python: str | None = None,
               config_files: Sequence[str] = (), timeout: float = 120) -> dict:
    """Run ``python -m os_onboard_nova.<command> --config-file … ARGS``.

    :param python: Nova's interpreter (default ``$OS_ONBOARD_NOVA_PYTHON``).
    :param config_files: Nova's configuration (default ``$OS_ONBOARD_NOVA_CONFIG``,
        colon-separated).
    :raises NovaHelperError: not configured, not installed, or the helper failed.
    """
    python = python or os.environ.get(PYTHON_ENV)
    configs = list(config_files) or [c for c in os.environ.get(CONFIG_ENV, "").split(":") if c]
    if not python or not configs:
        raise NovaHelperError(
            f"the Nova-side helper needs Nova's Python and configuration: pass --nova-python "
            f"and --nova-config (or set {PYTHON_ENV} and {CONFIG_ENV})")
    cmd = [python, "-m", f"os_onboard_nova.{command}"]
    for path in configs:
        cmd += ["--config-file", path]
    try:
        proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NovaHelperError(f"cannot run {python}: {exc}") from exc
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit status {proc.returncode}"
        if "No module named os_onboard_nova" in proc.stderr:
            reason = ("os_onboard_nova is not installed in Nova's environment "
                      "(pip install extras/nova there)")
        raise NovaHelperError(f"Nova-side helper {command} failed: {reason}")
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise NovaHelperError(f"Nova-side helper {command} printed no result") from exc
