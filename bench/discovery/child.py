"""Run one benchmark mode in a fresh interpreter and read back its RESULT line.

Each mode runs in its own process so that its peak RSS (ru_maxrss) is its own.
"""

from __future__ import annotations

import json
import subprocess


def run_child(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> dict:
    """The child's ``RESULT {json}`` line as a dict, or ``{"error": …}``."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"exited {proc.returncode}: " + " | ".join(tail)}
