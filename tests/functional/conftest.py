from pathlib import Path

import pytest

from tests.functional.lab import lab_env


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/functional/" in str(item.fspath):
            item.add_marker(pytest.mark.functional)


@pytest.fixture(scope="session")
def lab():
    return lab_env()


@pytest.fixture(scope="session")
def host_a(lab):
    return lab["LAB_HOST_A_URI"]


@pytest.fixture(scope="session")
def running_guests(lab):
    return lab["LAB_RUNNING_GUESTS"].split()


@pytest.fixture(scope="session")
def console_log(lab):
    return lambda name: Path(lab["LAB_CONSOLE_DIR"]) / f"{name}-console.log"
