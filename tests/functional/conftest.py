import configparser
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.functional.lab import REPO, lab_env


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/functional/" in str(item.fspath):
            item.add_marker(pytest.mark.functional)


@pytest.fixture(scope="session")
def lab_reset(request):
    """``lab/lab reset`` once per session, before the first functional test: the lab at
    its baseline whatever a person or an earlier run left (issue 17). Its lines (what it
    cleaned, or "nothing to clean") are printed. OS_ONBOARD_LAB_RESET=0 skips it."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str) -> None:
        if reporter is not None:
            reporter.write_line(line)

    # Held (shared) for the whole session, so that another session's reset does not
    # release what this one adopted; exclusive while this session resets. A session
    # starting while another runs leaves the lab as that one has it.
    state = Path(os.environ.get("LAB_STATE_DIR", "/var/lib/os-onboard-lab"))
    (state / "run").mkdir(parents=True, exist_ok=True)
    lock = open(state / "run" / "functional-session.lock", "a+")  # noqa: SIM115 (session-long)
    request.config.add_cleanup(lock.close)
    say("")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say("lab/lab reset: skipped, another functional test session runs on this lab")
        fcntl.flock(lock, fcntl.LOCK_SH)  # waits for a reset that session may be running
        return
    try:
        if os.environ.get("OS_ONBOARD_LAB_RESET", "1") == "0":
            say("lab/lab reset: skipped (OS_ONBOARD_LAB_RESET=0)")
            return
        started = time.monotonic()
        result = subprocess.run(
            [REPO / "lab" / "lab", "reset"], capture_output=True, text=True, timeout=1800,
            check=False, env={**os.environ, "LAB_RESET_IN_SESSION": "1",
                              "LAB_ONBOARD_BIN": str(Path(sys.executable).parent)})
        for line in (result.stdout + result.stderr).splitlines():
            if line.strip():
                say(line)
        say(f"lab/lab reset: rc {result.returncode} after {time.monotonic() - started:.1f} s")
        assert result.returncode == 0, "lab/lab reset failed:\n" + result.stdout + result.stderr
    finally:
        fcntl.flock(lock, fcntl.LOCK_SH)


@pytest.fixture(scope="session")
def lab(lab_reset):
    return lab_env()


@pytest.fixture(scope="session", autouse=True)
def _lab_at_baseline(request):
    """Every functional test session starts from a reset lab (the fixture above)."""
    if any("tests/functional/" in str(item.fspath) for item in request.session.items):
        request.getfixturevalue("lab_reset")


@pytest.fixture(scope="module")
def empty_serve_registry(lab):
    """The serve tests' host registry (the state store of LAB_ONBOARD_SERVE_CONFIG) starts
    empty: a run killed mid-test leaves its hosts registered, and the tests' replicas
    would share them (a watcher then holds a host the test did not register)."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(lab["LAB_ONBOARD_SERVE_CONFIG"])
    env = {**os.environ, "OS_ONBOARD_STATE_URL": config["DEFAULT"]["state_url"]}
    cli = Path(sys.executable).parent / "os-onboard"
    listed = subprocess.run([cli, "host", "list", "-f", "value", "-c", "ID"], env=env,
                            capture_output=True, text=True, timeout=120, check=True)
    for host_id in listed.stdout.split():
        subprocess.run([cli, "host", "remove", host_id], env=env, capture_output=True,
                       text=True, timeout=120, check=True)


@pytest.fixture(scope="session")
def host_a(lab):
    return lab["LAB_HOST_A_URI"]


@pytest.fixture(scope="session")
def running_guests(lab):
    return lab["LAB_RUNNING_GUESTS"].split()


@pytest.fixture(scope="session")
def console_log(lab):
    return lambda name: Path(lab["LAB_CONSOLE_DIR"]) / f"{name}-console.log"
