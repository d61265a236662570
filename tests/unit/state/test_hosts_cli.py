"""``os-onboard host add|list|show|remove`` end to end (cliff app, SQLite store)."""

import json
import logging

import pytest

from os_onboard.cli.main import main


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    root.handlers[:] = before
    root.setLevel(level)


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_host_commands(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OS_ONBOARD_STATE_URL", f"sqlite:///{tmp_path}/s.db")
    code, out, _ = _run(capsys, "host", "add", "qemu+ssh://root@hv1/system", "--group", "g1",
                        "--credentials", "env:HV1_PW", "-f", "json")
    assert code == 0 and json.loads(out)["Name"] == "hv1"
    code, out, _ = _run(capsys, "host", "list", "-f", "json")
    assert [(h["Name"], h["Groups"], h["Credentials"]) for h in json.loads(out)] == [
        ("hv1", "g1", "env:HV1_PW")]
    code, out, _ = _run(capsys, "host", "show", "hv1", "-f", "value", "-c", "URI")
    assert out.strip() == "qemu+ssh://root@hv1/system"
    code, out, err = _run(capsys, "host", "add", "qemu+ssh://root:pw123@hv2/system")
    assert code != 0 and "pw123" not in out + err
    code, out, _ = _run(capsys, "host", "remove", "qemu+ssh://root@hv1/system")
    assert code == 0 and "removed host hv1" in out
    code, out, _ = _run(capsys, "host", "list", "-f", "json")
    assert json.loads(out) == []
    code, _, err = _run(capsys, "host", "show", "hv1")
    assert code != 0 and "no registered host" in err
