"""The adopt helper's owner context, default-group check and failure reports (extras/nova).

Pure logic: the rows a cell database would return, a stand-in for Nova's
``security_group_ensure_default``, and the batch loop's failure results.
"""

import sys
import threading
import time
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "extras" / "nova"))

from os_onboard_nova import _common, default_group
from os_onboard_nova.default_group import PoisonedCell, Row

P = "3f1c0c0e5a6b4c5d9e8f7a6b5c4d3e2f"
WHERE = "127.0.0.1/nova (cell cell1)"


def row(id_, project=None, user=None):
    return Row(id_, project, user, f"2025-01-0{id_ % 9 + 1} 10:00:00")


# -- problem(): what the operator is told --------------------------------------------------

@pytest.mark.parametrize("rows", [[], [row(1)], [row(1), row(2, P, "u")], [row(2, P, "u")]])
def test_one_group_each_is_healthy(rows):
    assert default_group.problem(rows, P, WHERE) is None


def test_duplicate_project_less_groups_are_named_with_their_repair():
    message = default_group.problem([row(7), row(3), row(5, P, "u")], P, WHERE)
    assert message is not None
    assert message.startswith(f"cell database {WHERE} holds 2 'default' security groups "
                              "without a project: id 3 (user None, created ")
    assert "id 7 (user None" in message and "id 5" not in message
    assert "'NoneType' object is not subscriptable" in message
    assert ("UPDATE security_groups SET deleted = id, deleted_at = NOW() WHERE name = "
            "'default' AND project_id IS NULL AND deleted = 0 AND id <> 3;") in message
    assert "'lab up'" in message


def test_duplicates_of_the_owner_s_project_are_named_too():
    message = default_group.problem([row(1), row(4, P, "u"), row(9, P, "v")], P, WHERE)
    assert message is not None and f"holds 2 'default' security groups of project {P}" in message
    assert f"project_id = '{P}' AND deleted = 0 AND id <> 4;" in message


def test_where_names_server_and_database_never_the_password():
    cell = types.SimpleNamespace(name="cell1", database_connection=(
        "mysql+pymysql://nova:s3cret@db.example/nova_cell1?charset=utf8"))
    assert default_group.where(cell) == "db.example/nova_cell1 (cell cell1)"
    assert default_group.where(types.SimpleNamespace(name="c", database_connection="::")) \
        == "of cell c"


# -- ensure(): one check-and-create per cell and project ------------------------------------

@pytest.fixture
def nova_db(monkeypatch):
    """A cell's security_groups table behind stand-ins for rows() and Nova's ensure,
    slow enough that unserialised threads would all see "no group" and create one."""
    table: list[Row] = [row(1)]
    created = []

    def rows(_cctxt, project_id):
        time.sleep(0.02)
        return [r for r in table if r.project_id in (None, project_id)]

    def ensure_default(cctxt):
        time.sleep(0.02)
        created.append(cctxt.project_id)
        table.append(row(len(table) + 1, cctxt.project_id, "u"))

    api = types.ModuleType("nova.db.main.api")
    api.security_group_ensure_default = ensure_default
    main = types.ModuleType("nova.db.main")
    main.api = api
    for name, module in (("nova", types.ModuleType("nova")), ("nova.db",
                         types.ModuleType("nova.db")), ("nova.db.main", main),
                         ("nova.db.main.api", api)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(default_group, "rows", rows)
    return table, created


def test_racing_threads_create_the_owner_s_group_once(nova_db):
    table, created = nova_db
    cell = types.SimpleNamespace(uuid="cell-1", name="cell1", database_connection="")
    cctxt = types.SimpleNamespace(project_id=P)
    threads = [threading.Thread(target=default_group.ensure, args=(cctxt, cell, P))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert created == [P]
    assert [r.project_id for r in table] == [None, P]


def test_a_poisoned_cell_is_refused_before_anything_is_written(nova_db):
    table, created = nova_db
    table.append(row(2))
    cell = types.SimpleNamespace(uuid="cell-1", name="cell1",
                                 database_connection="mysql+pymysql://n:p@h/nova")
    with pytest.raises(PoisonedCell, match=r"h/nova \(cell cell1\) holds 2 'default'"):
        default_group.ensure(types.SimpleNamespace(project_id=P), cell, P)
    assert created == []


# -- the owner context -----------------------------------------------------------------------

def test_records_are_written_with_the_owner_s_admin_context():
    context = types.SimpleNamespace(RequestContext=lambda **kw: kw)
    ctxt = _common.owner_context(context, {"uuid": "vm", "project_id": P, "user_id": "u"})
    assert ctxt == {"user_id": "u", "project_id": P, "is_admin": True, "read_deleted": "no",
                    "overwrite": False}
    with pytest.raises(ValueError, match="vm has no project_id or user_id"):
        _common.owner_context(context, {"uuid": "vm", "project_id": None, "user_id": "u"})


# -- failures: the traceback reaches the operator ----------------------------------------------

def fail_deep():
    return {}["missing"]  # the frame the traceback must show


def failed(item, exc_factory):
    try:
        exc_factory()
    except Exception as exc:
        return _common.failure(item, exc)
    raise AssertionError("did not fail")


def test_a_failure_logs_its_traceback_and_the_error_line_points_at_it(tmp_path, monkeypatch):
    log = tmp_path / "helper.log"
    monkeypatch.setenv(_common.LOG_ENV, str(log))
    result = failed({"uuid": "vm-1"}, fail_deep)
    assert result["error"] == f"KeyError: 'missing' (traceback in {log})"
    assert "in fail_deep" in result["traceback"]
    text = log.read_text()
    assert "item vm-1:\nTraceback (most recent call last):" in text and "in fail_deep" in text
    assert log.stat().st_mode & 0o777 == 0o600


def test_an_unwritable_log_sends_the_traceback_to_stderr(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(_common.LOG_ENV, str(tmp_path / "file" / "helper.log"))
    result = failed({"uuid": "vm-1"}, fail_deep)
    assert result["error"] == "KeyError: 'missing'" and "in fail_deep" in result["traceback"]
    assert "in fail_deep" in capsys.readouterr().err


def test_a_refusal_says_it_all_without_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv(_common.LOG_ENV, str(tmp_path / "helper.log"))

    def refuse():
        raise PoisonedCell("cell database x holds 2 ...")

    assert failed({"uuid": "vm-1"}, refuse) == {
        "uuid": "vm-1", "error": "PoisonedCell: cell database x holds 2 ..."}
    assert not (tmp_path / "helper.log").exists()


def test_the_default_log_is_beside_os_onboard_s_state(monkeypatch, tmp_path):
    monkeypatch.delenv(_common.LOG_ENV, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert _common.log_path() == tmp_path / "os-onboard" / "nova-helper.log"
