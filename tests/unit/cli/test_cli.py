import csv
import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from os_onboard.cli.main import main
from os_onboard.drivers.libvirt.testnode import write_estate


@pytest.fixture(autouse=True)
def _restore_logging():
    # cliff's App attaches a console handler to the root logger on every run;
    # drop them so one test's handler does not write to the next test's stderr.
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    root.handlers[:] = before
    root.setLevel(level)


@pytest.fixture
def state_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/state.db"
    monkeypatch.setenv("OS_ONBOARD_STATE_URL", url)
    return url


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_discover_json_has_full_nested_records(capsys, state_url):
    code, out, err = _run(capsys, "discover", "test:///default", "-f", "json")
    assert code == 0
    (vm,) = json.loads(out)
    assert vm["Name"] == "test" and vm["State"] == "running"
    assert vm["Disks"][0]["source"] == "/guest/diskimage1"
    assert vm["NICs"][0]["mac"] == "aa:bb:cc:dd:ee:ff"
    assert vm["NICs"][0]["addresses"][0]["address"] == "192.168.122.3"
    assert "inventory snapshot 1: 1 host(s), 1 VM(s), 0 problem(s)" in err


@pytest.mark.parametrize("fmt", ["yaml", "csv", "table", "value"])
def test_every_output_format(capsys, state_url, fmt, tmp_path):
    hosts = tmp_path / "hosts.yaml"
    paths = write_estate(tmp_path, 2, 2)
    hosts.write_text(yaml.safe_dump({"hosts": [f"test://{p}" for p in paths]}))
    code, out, _ = _run(capsys, "discover", "--hosts", str(hosts), "-f", fmt, "--by", "host")
    assert code == 0
    if fmt == "yaml":
        assert [row["VMs"] for row in yaml.safe_load(out)] == [2, 2]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [r["URI"] for r in rows] == [f"test://{p}" for p in paths]
    else:
        assert out.count(str(paths[0])) == 1


def test_saved_snapshots_can_be_shown_again(capsys, state_url):
    _run(capsys, "discover", "test:///default")
    _run(capsys, "discover", "test:///default", "--no-save")
    _, out, _ = _run(capsys, "inventory", "list", "-f", "json")
    assert [s["ID"] for s in json.loads(out)] == [1]
    _, out, _ = _run(capsys, "inventory", "show", "--by", "storage", "-f", "json")
    assert json.loads(out)[0]["Used by"][0]["vm"] == "test"


def test_bad_input_gives_one_clear_line(capsys, state_url, tmp_path):
    bad = tmp_path / "hosts.yaml"
    bad.write_text("hosts: [ {name: nouri} ]")
    code, _, err = _run(capsys, "discover", "--hosts", str(bad))
    assert code != 0
    assert "entry 1: expected a URI" in err
    assert "Traceback" not in err
    code, _, err = _run(capsys, "discover")
    assert code != 0 and "name at least one host URI" in err


def test_unreachable_host_is_reported_not_fatal(capsys, state_url):
    code, out, err = _run(capsys, "discover", "test:///default",
                          "qemu+tcp://127.0.0.1:1/system", "--by", "problem", "-f", "json")
    assert code == 0
    (problem,) = json.loads(out)
    assert problem["Code"] == "host-unreachable"
    assert "qemu+tcp://127.0.0.1:1/system" in err


def test_schema_command_prints_the_json_schema(capsys):
    code, out, _ = _run(capsys, "schema")
    schema = json.loads(out)
    assert code == 0 and "HostInventory" in schema["$defs"]


def test_installed_console_script_works_without_a_lab(tmp_path):
    exe = Path(sys.executable).parent / "os-onboard"
    assert exe.exists(), "the os-onboard console script is not installed"
    result = subprocess.run(
        [exe, "--state-url", f"sqlite:///{tmp_path}/s.db", "discover", "test:///default",
         "-f", "value", "-c", "Name", "-c", "UUID"],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["test", "6695eb01-f6a4-8304-79aa-97f2502e193f"]


def test_the_adopt_policy_without_a_mapping_is_refused_at_start(capsys, state_url):
    code, _, err = _run(capsys, "reconcile", "test:///default",
                        "--kind-policy", "not-adopted=adopt")
    assert code != 0
    assert "the policy not-adopted=adopt needs --mapping" in err and "Traceback" not in err
    code, _, err = _run(capsys, "reconcile", "test:///default",
                        "--kind-policy", "vm-gone=adopt")
    assert code != 0 and "'adopt' is for not-adopted only" in err
