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
