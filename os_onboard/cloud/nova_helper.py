"""Run os-onboard's service-side helpers with the service's own Python.

Nova has no API for registering an existing hypervisor or instance; those few
records are written through Nova's object layer by ``os_onboard_nova``
(``extras/nova``), which must run where Nova's configuration and databases
are. Likewise one field Cinder's manage path forgets is filled in by
``os_onboard_cinder`` (``extras/cinder``). This module is the boundary: it
runs a helper as a subprocess (optionally with a JSON document on stdin) and
turns its one JSON line (or its one error line) into data or a
:class:`NovaHelperError`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Sequence
from typing import Any

from os_onboard.exceptions import NovaHelperError

PYTHON_ENV = "OS_ONBOARD_NOVA_PYTHON"
CONFIG_ENV = "OS_ONBOARD_NOVA_CONFIG"
CINDER_PYTHON_ENV = "OS_ONBOARD_CINDER_PYTHON"
CINDER_CONFIG_ENV = "OS_ONBOARD_CINDER_CONFIG"


def run_cinder_helper(command: str, stdin: Any, python: str | None = None,
                      config_files: Sequence[str] = (), timeout: float = 120) -> Any:
    """Run ``python -m os_onboard_cinder.<command>`` (env OS_ONBOARD_CINDER_*)."""
    return run_helper(command, [], python or os.environ.get(CINDER_PYTHON_ENV),
                      config_files or [c for c in os.environ.get(CINDER_CONFIG_ENV, "")
                                       .split(":") if c],
                      timeout=timeout, stdin=stdin, package="os_onboard_cinder")


def run_helper(command: str, args: Sequence[str], python: str | None = None,
               config_files: Sequence[str] = (), timeout: float = 120, stdin: Any = None,
               package: str = "os_onboard_nova") -> Any:
    """Run ``python -m os_onboard_nova.<command> --config-file … ARGS``.

    :param python: Nova's interpreter (default ``$OS_ONBOARD_NOVA_PYTHON``).
    :param config_files: Nova's configuration (default ``$OS_ONBOARD_NOVA_CONFIG``,
        colon-separated).
    :raises NovaHelperError: not configured, not installed, or the helper failed.
    """
    cmd = helper_command(command, python, config_files, package)
    try:
        proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout,
                              check=False,
                              input=None if stdin is None else json.dumps(stdin))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NovaHelperError(f"cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        reason = failure_reason(proc.stderr or proc.stdout, package, proc.returncode)
        raise NovaHelperError(f"{package}.{command} failed: {reason}")
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise NovaHelperError(f"{package}.{command} printed no result") from exc


def helper_command(command: str, python: str | None = None, config_files: Sequence[str] = (),
                   package: str = "os_onboard_nova") -> list[str]:
    """``python -m <package>.<command> --config-file …``, defaults from the environment.

    :raises NovaHelperError: the service's Python or configuration is not known.
    """
    nova = package == "os_onboard_nova"
    python = python or (os.environ.get(PYTHON_ENV) if nova else None)
    configs = list(config_files) or ([c for c in os.environ.get(CONFIG_ENV, "").split(":")
                                      if c] if nova else [])
    if not python or not configs:
        what = ("Nova's Python and configuration: pass --nova-python and --nova-config (or "
                f"set {PYTHON_ENV} and {CONFIG_ENV})") if nova else (
                "Cinder's Python and configuration: set "
                f"{CINDER_PYTHON_ENV} and {CINDER_CONFIG_ENV}")
        raise NovaHelperError(f"the {package} helper needs {what}")
    cmd = [python, "-m", f"{package}.{command}"]
    for path in configs:
        cmd += ["--config-file", path]
    return cmd


def failure_reason(output: str, package: str, code: int | None) -> str:
    """One line for a failed helper: the install hint, else its last line of output."""
    # The import system quotes the name ("No module named 'pkg'"), `python -m`
    # does not ("No module named pkg.cmd"): the package itself is missing only
    # when the name ends right after it; a missing command is its own error.
    if re.search(rf"No module named '?{re.escape(package)}'?(?![\w.])", output):
        service = package.removeprefix("os_onboard_")
        return (f"{package} is not installed in {service.capitalize()}'s environment "
                f"(pip install extras/{service} there)")
    lines = output.strip().splitlines()
    return lines[-1] if lines else f"exit status {code}"
