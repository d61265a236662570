"""Credentials references resolved at use time, never echoed (os_onboard/state/credentials.py)."""

import json
import logging
import os

import pytest

from os_onboard.cli.main import main
from os_onboard.exceptions import ConfigError
from os_onboard.serve.jobs import JobContext, run_discover
from os_onboard.state import StateStore, credentials
from os_onboard.state.credentials import export_for_drivers, resolve
from os_onboard.state.hosts import HostRegistry
from os_onboard.state.jobs import JobStore

SECRET = "s3cret-Value-42"


@pytest.fixture(autouse=True)
def _clean(monkeypatch, tmp_path):
    monkeypatch.setattr(credentials, "_EXPORTED", {})
    monkeypatch.delenv("VSPHERE_PASSWORD", raising=False)
    monkeypatch.setenv("OS_ONBOARD_CONFIG", str(tmp_path / "config.yaml"))
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    root.handlers[:] = before
    root.setLevel(level)
    os.environ.pop("VSPHERE_PASSWORD", None)  # set by the code under test, not monkeypatch


def test_each_kind_of_reference_resolves_and_no_message_shows_the_secret(monkeypatch,
                                                                         tmp_path):
    monkeypatch.setenv("HV_PW", SECRET)
    assert resolve("env:HV_PW") == SECRET
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    assert resolve(f"file:{secret_file}") == SECRET
    (tmp_path / "config.yaml").write_text(f"credentials:\n  vc1: {SECRET}\n")
    assert resolve("config:vc1") == SECRET

    secret_file.chmod(0o644)
    failures = []
    for ref in ("env:UNSET_VAR", f"file:{secret_file}", f"file:{tmp_path}/none",
                "config:nope", SECRET):
        with pytest.raises(ConfigError) as err:
            resolve(ref)
        failures.append(str(err.value))
    assert "not set" in failures[0] and "chmod 600" in failures[1]
    assert "No such file" in failures[2] and "no key 'nope'" in failures[3]
    assert all(SECRET not in f for f in failures)


def test_a_vsphere_hosts_secret_is_given_to_its_driver_and_conflicts_are_refused(
        monkeypatch, tmp_path):
    store = StateStore(f"sqlite:///{tmp_path}/s.db")
    reg = HostRegistry(store)
    monkeypatch.setenv("VC1_PW", SECRET)
    monkeypatch.setenv("VC2_PW", "another")
    vc1 = reg.add("vsphere://admin@vc1/", credentials_ref="env:VC1_PW")
    vc2 = reg.add("vsphere://admin@vc2/", credentials_ref="env:VC2_PW")
    kvm = reg.add("qemu+ssh://root@hv1/system", credentials_ref="env:UNSET_KEY")
    assert export_for_drivers([vc1, kvm]) == ["VSPHERE_PASSWORD"]  # ssh: not handed over
    assert os.environ["VSPHERE_PASSWORD"] == SECRET
    with pytest.raises(ConfigError) as err:
        export_for_drivers([vc1, vc2])
    assert "separate processes" in str(err.value) and SECRET not in str(err.value)
    with pytest.raises(ConfigError) as err:
        export_for_drivers([vc2])  # this process holds vc1's already
    assert "env:VC1_PW" in str(err.value) and "another" not in str(err.value)


def test_a_discovery_job_resolves_the_reference_when_it_reads_the_host(monkeypatch,
                                                                       tmp_path):
    store = StateStore(f"sqlite:///{tmp_path}/s.db")
    HostRegistry(store).add("vsphere://admin@vc1/", credentials_ref="env:VC1_PW")
    jobs = JobStore(store)
    jobs.create("discover", {"hosts": ["vsphere://admin@vc1/"]})
    job = jobs.claim("r1", 20)
    seen = []

    def discover(uris, options=None):
        seen.append(os.environ.get("VSPHERE_PASSWORD"))
        raise ConfigError("stop here")

    monkeypatch.setattr("os_onboard.serve.jobs.discover_hosts", discover)
    with pytest.raises(ConfigError, match="the variable is not set"):
        run_discover(store, JobContext(jobs, job, "r1"))  # nothing to resolve it with
    monkeypatch.setenv("VC1_PW", SECRET)  # set later: read at use time, not at add
    with pytest.raises(ConfigError, match="stop here"):
        run_discover(store, JobContext(jobs, job, "r1"))
    assert seen == [SECRET]


def test_host_check_says_whether_each_reference_resolves_here(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("OS_ONBOARD_STATE_URL", f"sqlite:///{tmp_path}/s.db")
    monkeypatch.setenv("VC1_PW", SECRET)
    for argv in (["vsphere://admin@vc1/", "--credentials", "env:VC1_PW"],
                 ["qemu+ssh://root@hv1/system", "--credentials", "env:HV1_KEY"],
                 ["qemu+ssh://root@hv2/system"]):
        assert main(["host", "add", *argv]) == 0
    capsys.readouterr()
    code = main(["host", "check", "-f", "json"])
    out, err = capsys.readouterr()
    here = {r["Name"]: r["Here"] for r in json.loads(out)}
    assert here["vc1"] == "resolves (given to the driver as VSPHERE_PASSWORD)"
    assert "not set" in here["hv1"] and here["hv2"] == "none"
    assert code == 1 and SECRET not in out + err
    assert main(["host", "check", "vc1", "-f", "value", "-c", "Here"]) == 0
