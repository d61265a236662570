"""Hypothesis settings for the fuzz tests, and the counts behind the README's figure.

The profile is derandomized (a fixed seed derived from each test) and keeps no
example database, so ``make test`` runs the same examples on every machine and
writes nothing beside ``build/fuzz-counts.md``; ``deadline=None`` because a
shared CI machine's pauses are not our bug. Each fuzz test carries
``@pytest.mark.fuzz("<input kind>")``; its examples are counted by the test
body (:func:`tests.unit.fuzz.counts.ran`) and its failures by the hook below.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from tests.unit.fuzz.counts import FAILED

settings.register_profile(
    "os-onboard-fuzz",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.large_base_example],
)
settings.load_profile("os-onboard-fuzz")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fuzz(kind): a hostile-input test of one input kind")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("fuzz")
    if marker is not None and report.when == "call" and report.failed:
        FAILED[marker.args[0]] += 1
