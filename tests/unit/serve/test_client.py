"""``os-onboard host ... --url``: the command line through the API (wsgiref on
loopback; a token maps to roles as Keystone would)."""

import json
import logging
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from os_onboard.cli.main import main
from os_onboard.serve.api import ROUTES, Service
from os_onboard.serve.app import Api
from os_onboard.serve.config import new_conf
from os_onboard.serve.policy import Policy
from os_onboard.serve.web import RequestIds
from os_onboard.state import StateStore

ROLES = {"admin-token": "admin,member,reader", "member-token": "member,reader"}


def fake_keystone(app):
    def call(environ, start_response):
        roles = ROLES.get(environ.get("HTTP_X_AUTH_TOKEN", ""))
        environ["HTTP_X_IDENTITY_STATUS"] = "Confirmed" if roles else "Invalid"
        environ["HTTP_X_ROLES"] = roles or ""
        return app(environ, start_response)
    return call


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    svc = Service(StateStore(f"sqlite:///{tmp_path}/server.db"))
    app = RequestIds(Api(svc, Policy(new_conf(), ROUTES), fake_keystone, "Keystone"))
    httpd = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", svc
    httpd.shutdown()


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


def test_host_commands_through_the_api(server, capsys, monkeypatch, tmp_path):
    url, svc = server
    monkeypatch.setenv("OS_ONBOARD_STATE_URL", f"sqlite:///{tmp_path}/local.db")
    monkeypatch.setenv("OS_TOKEN", "member-token")
    code, _, err = _run(capsys, "host", "add", "qemu+ssh://hv1/system", "--url", url)
    assert code != 0 and "os_onboard:hosts:create" in err and "403" in err
    monkeypatch.setenv("OS_TOKEN", "admin-token")
    code, out, _ = _run(capsys, "host", "add", "qemu+ssh://hv1/system", "--group", "g",
                        "--url", url, "-f", "json")
    assert code == 0 and json.loads(out)["Name"] == "hv1"
    assert [h.uri for h in svc.hosts.list()] == ["qemu+ssh://hv1/system"]  # on the server
    monkeypatch.setenv("OS_ONBOARD_URL", url)
    code, out, _ = _run(capsys, "host", "list", "-f", "json")
    assert [(h["Name"], h["Groups"]) for h in json.loads(out)] == [("hv1", "g")]
    code, out, _ = _run(capsys, "host", "show", "qemu+ssh://hv1/system", "-f", "value",
                        "-c", "Name")
    assert out.strip() == "hv1"
    code, out, _ = _run(capsys, "host", "remove", "hv1")
    assert code == 0 and "removed host hv1" in out and svc.hosts.list() == []
    monkeypatch.setenv("OS_TOKEN", "nonsense")
    code, _, err = _run(capsys, "host", "list")
    assert code != 0 and "401" in err and "nonsense" not in err
    monkeypatch.delenv("OS_ONBOARD_URL")
    code, out, _ = _run(capsys, "host", "list", "-f", "json")  # the local store: untouched
    assert json.loads(out) == []


@pytest.fixture
def runner_for(server):
    """Start a job runner on the server's store with these job kinds."""
    from os_onboard.serve.jobs import KINDS, JobRunner

    started = []

    def start(kinds=None):
        runner = JobRunner(server[1].store, "r1", poll=0.05,
                           kinds={**KINDS, **(kinds or {})}).start()
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.stop()


def test_discover_inventory_and_jobs_through_the_api(server, runner_for, capsys, monkeypatch,
                                                     tmp_path):
    url, svc = server
    runner_for()
    monkeypatch.setenv("OS_ONBOARD_STATE_URL", f"sqlite:///{tmp_path}/local.db")
    monkeypatch.setenv("OS_TOKEN", "admin-token")
    monkeypatch.setenv("OS_ONBOARD_URL", url)
    assert _run(capsys, "host", "add", "test:///default", "--name", "t1")[0] == 0
    code, out, err = _run(capsys, "discover", "-f", "json", "-c", "Name", "-c", "Host")
    assert code == 0, err
    assert json.loads(out) == [{"Name": "test", "Host": "test:///default"}]
    assert "discovery: job" in err and "inventory snapshot 1 (on the server)" in err
    code, _, err = _run(capsys, "discover", "--no-save")
    assert code != 0 and "local only" in err
    code, out, _ = _run(capsys, "inventory", "list", "-f", "json")
    assert [(s["ID"], s["Hosts"], s["VMs"]) for s in json.loads(out)] == [(1, 1, 1)]
    code, out, _ = _run(capsys, "inventory", "show", "-f", "json", "-c", "Name", "-c", "State")
    assert json.loads(out) == [{"Name": "test", "State": "running"}]
    code, _, err = _run(capsys, "inventory", "show", "--by", "problem")
    assert code != 0 and "only --by vm" in err
    code, out, _ = _run(capsys, "job", "list", "-f", "json")
    [job] = json.loads(out)
    assert (job["Kind"], job["State"], job["Progress"]) == ("discover", "succeeded", "1/1")
    code, out, _ = _run(capsys, "job", "show", job["ID"], "-f", "json")
    shown = json.loads(out)
    assert shown["Per item"] == "test:///default: ok" and '"snapshot": 1' in shown["Result"]
    # the same jobs read from the server's store directly (no --url)
    monkeypatch.delenv("OS_ONBOARD_URL")
    code, out, _ = _run(capsys, "--state-url", svc.store.url, "job", "list", "-f", "json")
    assert [j["ID"] for j in json.loads(out)] == [job["ID"]]
    code, out, _ = _run(capsys, "inventory", "list", "-f", "json")  # local store: untouched
    assert json.loads(out) == []


def test_a_member_token_reads_but_starts_no_job(server, capsys, monkeypatch):
    url, _ = server
    monkeypatch.setenv("OS_TOKEN", "member-token")
    code, _, err = _run(capsys, "discover", "test:///default", "--url", url)
    assert code != 0 and "os_onboard:discoveries:create" in err and "403" in err
    code, out, _ = _run(capsys, "job", "list", "--url", url, "-f", "json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = _run(capsys, "workers", "--url", url, "-f", "json")
    assert code == 0 and json.loads(out) == []  # one replica, no coordination group


def test_the_token_comes_from_os_token_else_the_users_cloud(monkeypatch, tmp_path):
    from os_onboard.exceptions import ConfigError
    from os_onboard.serve.client import keystone_token

    monkeypatch.setenv("OS_TOKEN", "tok-1")
    assert keystone_token("whatever") == "tok-1"
    monkeypatch.delenv("OS_TOKEN")
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  c1:\n    auth:\n      auth_url: http://127.0.0.1:9/v3\n"
                      "      username: u\n      password: s3cret-pw\n"
                      "      project_name: p\n      user_domain_name: Default\n"
                      "      project_domain_name: Default\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    with pytest.raises(ConfigError) as err:
        keystone_token("c1")  # nothing listens on port 9: Keystone unreachable
    assert "cloud c1" in str(err.value) and "s3cret-pw" not in str(err.value)


def test_plan_apply_drift_unmanage_through_the_api(server, runner_for, capsys, monkeypatch,
                                                    tmp_path):
    """The adoption commands with --url against the fake cloud (the apply harness of
    tests/unit/apply/test_runner.py): the server plans, applies, checks drift and
    releases; the command prints what the local one would."""
    import yaml

    from os_onboard.inventory.models import PowerState
    from os_onboard.serve import adoption
    from os_onboard.serve.adoption import AdoptionSettings, run_apply, run_plan, run_unmanage
    from os_onboard.serve.watcher import run_drift
    from tests.unit.apply.test_runner import MAC1, MAPPING, UUID1, World, inventory, vm1

    url, svc = server
    world = World(tmp_path, monkeypatch)  # its journal is tmp_path/s.db
    assert svc.store.url.endswith("/server.db")
    monkeypatch.setattr(world, "journal", adoption.Journal(svc.store))
    world.planned = inventory(vm1())
    svc.store.save_snapshot(world.planned)
    settings = AdoptionSettings(
        cloud=lambda: world.cloud, nova_python="nova-python", nova_config=["nova.conf"],
        host_options={"instances_path": str(tmp_path / "instances"),
                      "libvirt_config_dirs": [str(tmp_path / "libvirt")]})
    stopped = inventory(vm1(power=PowerState.SHUTOFF))
    runner_for({"plan": lambda s, c: run_plan(s, c, settings),
                "apply": lambda s, c: run_apply(s, c, settings),
                "unmanage": lambda s, c: run_unmanage(s, c, settings),
                "drift": lambda s, c: run_drift(s, c, lambda: world.cloud,
                                                discover=lambda hosts: stopped)})
    monkeypatch.setattr(adoption, "discover_hosts", lambda uris: world.planned)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(yaml.safe_dump(MAPPING.model_dump(mode="json")))
    monkeypatch.setenv("OS_ONBOARD_STATE_URL", f"sqlite:///{tmp_path}/local.db")
    monkeypatch.setenv("OS_TOKEN", "admin-token")
    monkeypatch.setenv("OS_ONBOARD_URL", url)

    code, out, err = _run(capsys, "plan", "--mapping", str(mapping), "--vm", "lab-vm1")
    assert code == 0, err
    assert "lab-vm1" in out and "saved as plan 1 on the server" in err
    code, out, err = _run(capsys, "apply", "-f", "json")  # the server's newest plan: 1
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["VM"], row["UUID"], row["Status"]) == ("lab-vm1", UUID1, "adopted")
    [port] = world.ports_of(MAC1)
    assert port["device_id"] == UUID1

    svc.hosts.add("qemu+ssh://root@hv1/system", groups=["wave1"])
    world.cloud.calls.clear()
    code, out, err = _run(capsys, "drift", "--group", "wave1", "-f", "json")
    assert code == 0, err
    [drift] = json.loads(out)
    assert (drift["VM"], drift["Kind"], drift["Action"]) == ("lab-vm1", "power-changed",
                                                             "reported")
    assert world.cloud.writes() == []
    code, out, err = _run(capsys, "history", "lab-vm1", "-f", "json")
    assert code == 0, err
    assert [(e["VM"], e["Kind"], e["Action"]) for e in json.loads(out)] == [
        ("lab-vm1", "power-changed", "reported")]

    code, out, err = _run(capsys, "unmanage", "lab-vm1", "-f", "json")
    assert code == 0, err
    assert [(r["VM"], r["Status"]) for r in json.loads(out)] == [("lab-vm1", "released")]
    assert world.ports_of(MAC1) == []
