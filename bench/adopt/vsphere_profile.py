"""py-spy around one mode of bench/adopt/vsphere.py: where the CPU goes, per process.

``--profile DIR`` records (py-spy, ``--nonblocking``: the lab's processes are
never paused; active samples only, so a thread waiting on a socket counts
nothing) the mode's process with its Nova-side helpers (``--subprocesses``)
and each neutron-server API worker, the service that bounds the pipeline.
Raw collapsed stacks go to DIR; ``summary()`` prints the top frames by
self and by inclusive seconds (samples / rate).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

RATE = 50  # samples per second: enough for seconds-level answers, light on 2 CPUs


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def wrap(cmd: list[str], out: Path) -> list[str]:
    """``cmd`` run under py-spy (children included)."""
    spy = py_spy()
    if spy is None:
        return cmd
    return [spy, "record", "--subprocesses", "--nonblocking", "--rate", str(RATE),
            "--format", "raw", "--output", str(out), "--", *cmd]


def attach(pids: dict[str, int], out_dir: Path) -> list[subprocess.Popen]:
    """py-spy on running processes (by name), until stop()."""
    spy = py_spy()
    if spy is None:
        return []
    return [subprocess.Popen([spy, "record", "--nonblocking", "--rate", str(RATE), "--format",
                              "raw", "--output", str(out_dir / f"{name}.txt"), "--pid",
                              str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, pid in pids.items()]


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:  # SIGINT: py-spy writes its file and exits
        proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _frame(frame: str) -> str:
    """'func (path/to/file.py:123)' -> 'file.py:func' with the package's last parts."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-3:]) if "site-packages" in parts or "os_onboard" in parts \
        else "/".join(parts[-2:])
    for marker in ("site-packages/", "/work/main/"):
        short = short.split(marker)[-1]
    return f"{short}:{name}"


def summary(path: Path, top: int = 10, match: str = "") -> list[str]:
    """Top frames of one raw py-spy file: self seconds, and inclusive seconds of frames
    whose text contains ``match`` (e.g. 'os_onboard' or 'neutron')."""
    if not path.exists():
        return [f"{path.name}: no profile"]
    own: Counter = Counter()
    incl: Counter = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";")
                  if not f.startswith(("process ", "thread "))]
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            if match in f:
                incl[f] += n
    lines = [f"{path.stem}: {total / RATE:.1f} s of samples (active threads)"]
    lines += [f"    self {n / RATE:7.2f} s  {f}" for f, n in own.most_common(top)]
    lines += [f"    incl {n / RATE:7.2f} s  {f}" for f, n in incl.most_common(top)]
    return lines
