"""HelperStream with a real process: the helpers' own batch loop (_common.run_batch)
served by this interpreter, with a stand-in ``os_onboard_nova.adopt`` that answers
from its items (no Nova here)."""

import os
import sys
from pathlib import Path

import pytest

from os_onboard.cloud.helper_stream import HelperStream
from os_onboard.exceptions import NovaHelperError

EXTRAS = Path(__file__).resolve().parents[3] / "extras" / "nova"

STAND_IN = '''
import os, sys
from os_onboard_nova import _common

def handle(item):
    if item.get("die"):
        os._exit(3)
    if item.get("fail"):
        raise RuntimeError("no such thing")
    return {"uuid": item["uuid"], "pid": os.getpid()}

print("a line some library printed")
sys.exit(_common.run_batch(handle, None))
'''


@pytest.fixture
def helper(tmp_path, monkeypatch):
    """A package dir whose os_onboard_nova is the real one plus a stand-in adopt."""
    pkg = tmp_path / "os_onboard_nova"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_common.py").write_text((EXTRAS / "os_onboard_nova" / "_common.py").read_text())
    (pkg / "adopt.py").write_text(STAND_IN)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("OS_ONBOARD_NOVA_LOG", str(tmp_path / "helper.log"))
    return lambda: HelperStream("adopt", sys.executable, ["unused.conf"])


def test_one_process_answers_batch_after_batch(helper):
    with helper() as stream:
        first = stream.run([{"uuid": "a"}, {"uuid": "b", "fail": True}], timeout=30)
        second = stream.run([{"uuid": "c"}], timeout=30)
    assert [r["uuid"] for r in first] == ["a", "b"]
    # One line for the journal, pointing at the whole traceback (which the result has too).
    log = Path(os.environ["OS_ONBOARD_NOVA_LOG"])
    assert first[1]["error"] == f"RuntimeError: no such thing (traceback in {log})"
    assert 'raise RuntimeError("no such thing")' in first[1]["traceback"]
    assert 'raise RuntimeError("no such thing")' in log.read_text()
    assert second[0]["pid"] == first[0]["pid"] != os.getpid()


def test_a_helper_that_dies_says_so(helper):
    stream = helper()
    assert stream.run([{"uuid": "a"}], timeout=30)[0]["uuid"] == "a"
    with pytest.raises(NovaHelperError, match=r"os_onboard_nova\.adopt failed: exit status 3"):
        stream.run([{"uuid": "b", "die": True}], timeout=30)
    stream.close()


def test_a_helper_that_is_not_installed_says_where_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # no os_onboard_nova there
    with HelperStream("adopt", sys.executable, ["unused.conf"]) as stream, \
            pytest.raises(NovaHelperError, match="not installed in Nova's environment"):
        stream.run([{"uuid": "a"}], timeout=30)


def test_without_nova_python_nothing_starts(monkeypatch):
    monkeypatch.delenv("OS_ONBOARD_NOVA_PYTHON", raising=False)
    with pytest.raises(NovaHelperError, match="--nova-python"):
        HelperStream("adopt", None, ["nova.conf"])


def test_resident_helpers_reuse_one_process_and_replace_a_dead_one(helper, monkeypatch):
    from os_onboard.reconcile.resident import ResidentHelpers

    helper()  # writes the stand-in package and sets PYTHONPATH
    helpers = ResidentHelpers(sys.executable, ["unused.conf"], timeout=30)
    try:
        [first] = helpers.run("adopt", [{"uuid": "a"}])
        [second] = helpers.run("adopt", [{"uuid": "b"}])
        assert first["pid"] == second["pid"]  # Nova's imports paid once
        with pytest.raises(NovaHelperError):
            helpers.run("adopt", [{"uuid": "c", "die": True}])
        [third] = helpers.run("adopt", [{"uuid": "d"}])
        assert third["pid"] != first["pid"]
    finally:
        helpers.close()


def test_reused_object_is_made_once_until_reset():
    from os_onboard.reconcile.resident import Reused

    made = []
    reused = Reused(lambda: made.append(object()) or made[-1])
    assert reused.get() is reused.get() is made[0]
    reused.reset()
    assert reused.get() is made[1]


# What Python 3.11 prints for `python -m os_onboard_nova.<command>`:
@pytest.mark.parametrize(("output", "hint"), [
    ("/usr/bin/python3: Error while finding module specification for 'os_onboard_nova.adopt' "
     "(ModuleNotFoundError: No module named 'os_onboard_nova')", True),  # no package
    ("/usr/bin/python3: No module named os_onboard_nova.nope", False),  # no such command
    ("ModuleNotFoundError: No module named 'os_onboard_nova_extra'", False),
])
def test_the_install_hint_is_for_a_missing_package_only(output, hint):
    from os_onboard.cloud.nova_helper import failure_reason

    reason = failure_reason(output, "os_onboard_nova", 1)
    assert ("not installed in Nova's environment" in reason) is hint, reason
    if not hint:
        assert reason == output.splitlines()[-1]
