"""Secrets: the lab's passwords, keys and tokens appear nowhere os-onboard writes.

The module's name sorts last on purpose: pytest runs the modules of
tests/functional in alphabetical order, so in a full run (``make test``) every
other functional test has written its state store, outputs and the Nova-side
helper's log by the time this one scans. Run alone it scans what exists
(pytest keeps the temp directories of its last three runs).

**Secrets checked**: from the lab's state (``lab/lab env``, ``$LAB_STATE_DIR``):
the vSphere simulator's password, every password of the OpenStack secrets file
(admin, service users, demo, MariaDB, RabbitMQ), each password in clouds.yaml,
the cephx keys of the keyrings; one Keystone token issued here with
``openstack token issue`` and then given to os-onboard to authenticate with;
canaries typed into this test's failing commands (a wrong vSphere password,
a wrong cloud password, a password inside a libvirt URI); and any string
shaped like a Keystone Fernet token (``gAAAAA`` + 100 or more base64url
characters), whoever issued it.

**What counts as os-onboard's** (scanned byte for byte, SQLite files also
row by row, every hit fails the test):

* os-onboard's state directory (``$XDG_STATE_HOME/os-onboard``, default
  ``~/.local/state/os-onboard``): the default state store, its WAL files, the
  apply lock, the Nova-side helper's ``nova-helper.log``;
* in pytest's temp directories (the functional tests keep their stores
  there): SQLite files and their ``-wal``/``-shm``/``-journal`` files, apply
  locks, ``--output-file`` documents (``*.json``), os-onboard's captured output
  (``*.out``, ``*.err``), the helpers' logs (``*helper*.log``), the
  ``disk.info`` files and qemu hooks tests had it write. Not scanned there:
  the tests' own inputs (mapping files, domain XML, a test's copy of
  nova.conf) and other programs' logs (a private simulator's, a test
  nova-compute's);
* os-onboard's files on the hypervisor hosts: the rename maps and qemu hooks
  under each host's libvirt config directory, ``disk.info`` files it wrote
  into Nova's instance directories;
* the stdout and stderr of the commands this test runs: discovery of every
  lab host (libvirt and vSphere) and ``drift`` with ``--debug -vv`` (which logs
  keystoneauth's requests), ``drift`` authenticated by the issued token, and
  errors: a vSphere URI with the real password typed into it, a wrong vSphere
  password, a libvirt URI with a password, a wrong cloud password;
* ``ps -eo pid,ppid,args`` sampled every 50 ms while the discovery and the
  ``drift`` commands run: the lines of os-onboard's process and its children.

**Not os-onboard's, reported and not asserted**: the lab services' own logs
(``$LAB_LOG_DIR``: Keystone, Nova, Cinder, Neutron, Glance, Placement, Ceph,
libvirtd, the simulator) and ``ps`` lines of other processes.

The figure goes to ``build/secret-scan.md`` (README, "Secrets").
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

from tests.functional.lab import REPO

CLI = str(Path(sys.executable).parent / "os-onboard")
FIGURE = REPO / "build" / "secret-scan.md"
FERNET = re.compile(rb"gAAAAA[A-Za-z0-9_-]{100,}={0,2}")
SQLITE_MAGIC = b"SQLite format 3\0"
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
MIN_SECRET = 8  # shorter strings would hit by chance; every lab secret is 24+ characters


@dataclass
class Hit:
    where: str
    secret: str  # the secret's name, never its value
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.where}: {self.secret}{f' ({self.detail})' if self.detail else ''}"


@dataclass
class Tally:
    """What one category of sources held: items, bytes, hits."""

    label: str
    items: int = 0
    bytes: int = 0
    hits: list[Hit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Scanner:
    def __init__(self, secrets_by_name: dict[str, str]) -> None:
        self.secrets = {name: value.encode() for name, value in secrets_by_name.items()}

    def find(self, data: bytes, where: str) -> list[Hit]:
        hits = [Hit(where, name) for name, value in self.secrets.items() if value in data]
        hits += [Hit(where, "a Keystone Fernet token", f"at byte {m.start()}")
                 for m in FERNET.finditer(data)]
        return hits

    def scan_text(self, tally: Tally, text: str | bytes, where: str) -> None:
        data = text.encode() if isinstance(text, str) else text
        tally.items += 1
        tally.bytes += len(data)
        tally.hits += self.find(data, where)

    def scan_file(self, tally: Tally, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:  # vanished, or a socket/fifo
            tally.notes.append(f"{path}: not read ({exc.strerror})")
            return
        self.scan_text(tally, data, str(path))


# -- the lab's secrets ------------------------------------------------------------------------


def _lab_env() -> dict[str, str]:
    from tests.functional.lab import lab_env
    return lab_env()


def _keyring_keys(path: Path) -> list[str]:
    try:
        return re.findall(r"^\s*key\s*=\s*(\S+)", path.read_text(), re.M)
    except OSError:
        return []


def _clouds(lab: dict[str, str]) -> dict:
    path = Path(lab.get("OS_CLIENT_CONFIG_FILE") or "/etc/openstack/clouds.yaml")
    return (yaml.safe_load(path.read_text()) or {}).get("clouds", {})


def _issue_token(lab: dict[str, str]) -> str:
    openstack = Path(lab["LAB_OPENSTACK_BIN"]) / "openstack"
    env = dict(os.environ, OS_CLOUD=lab["LAB_OPENSTACK_ADMIN_CLOUD"],
               OS_CLIENT_CONFIG_FILE=lab["OS_CLIENT_CONFIG_FILE"])
    result = subprocess.run([str(openstack), "token", "issue", "-f", "value", "-c", "id"],
                            capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, f"openstack token issue failed: {result.stderr[-500:]}"
    return result.stdout.strip()


def lab_secrets(lab: dict[str, str]) -> dict[str, str]:
    """Name -> value of every password and key the lab holds."""
    state = Path(lab["LAB_STATE_DIR"])
    found: dict[str, str] = {}
    if lab.get("VSPHERE_PASSWORD"):
        found["vSphere password (lab env)"] = lab["VSPHERE_PASSWORD"]
    vsphere_file = state / "vsphere" / "password"
    if vsphere_file.exists():
        found["vSphere password (file)"] = vsphere_file.read_text().strip()
    secrets_file = state / "openstack" / "secrets"
    for line in secrets_file.read_text().splitlines():
        key, _, value = line.partition("=")
        if value:
            found[f"OpenStack {key} password"] = value.strip()
    for cloud, conf in _clouds(lab).items():
        password = (conf.get("auth") or {}).get("password")
        if password:
            found[f"clouds.yaml {cloud} password"] = str(password)
    for var in ("LAB_CEPH_KEYRING", "LAB_CEPH_ADMIN_KEYRING"):
        for n, key in enumerate(_keyring_keys(Path(lab.get(var, "")))):
            found[f"cephx key of {Path(lab[var]).name}{f' #{n}' if n else ''}"] = key
    short = [name for name, value in found.items() if len(value) < MIN_SECRET]
    assert not short, f"secrets too short to scan for without false hits: {short}"
    return found


# -- what counts as os-onboard's files --------------------------------------------------------


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def _ours_in_test_tmp(path: Path) -> bool:
    """A file os-onboard wrote into a functional test's temp directory."""
    name = path.name
    if name.endswith(SQLITE_COMPANIONS) or name.endswith(".apply.lock"):
        return True
    if name.endswith((".json", ".out", ".err")):
        return True
    if name.endswith(".log") and ("helper" in name or name.startswith("os-onboard")):
        return True  # OS_ONBOARD_NOVA_LOG of a test, e.g. nova-helper.log
    if name == "disk.info":  # written by apply into an instance directory
        return True
    if name == "qemu" and path.parent.name == "hooks":  # the hook install-hook writes
        return True
    return path.suffix in (".db", ".sqlite") or _is_sqlite(path)


def _files(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink():
                yield path


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "os-onboard"


def host_files(lab: dict[str, str]) -> Iterator[Path]:
    """os-onboard's files on the hypervisor hosts."""
    for config_dir in filter(None, lab.get("OS_ONBOARD_LIBVIRT_CONFIG_DIRS", "").split(":")):
        hooks = Path(config_dir) / "hooks"
        renames = hooks / "os-onboard-renames.json"
        if renames.is_file():
            yield renames
        hook = hooks / "qemu"
        if hook.is_file() and b"os-onboard-managed-hook" in hook.read_bytes():
            yield hook
    instances = Path(lab.get("LAB_NOVA_INSTANCES_PATH", "/nonexistent"))
    if instances.is_dir():
        yield from sorted(instances.glob("*/disk.info"))


def sqlite_rows(path: Path) -> tuple[str, int, int]:
    """The database as SQL text (WAL content included) and its row counts (all, audit)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        dump = "\n".join(db.iterdump())
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = sum(db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)
        audit = (db.execute("SELECT count(*) FROM audit_log").fetchone()[0]
                 if "audit_log" in tables else 0)
    finally:
        db.close()
    return dump, rows, audit


# -- running commands while watching ps -------------------------------------------------------


class PsWatch:
    """``ps -eo pid,ppid,args`` every 50 ms while a command runs."""

    def __init__(self) -> None:
        self.samples = 0
        self.ours: set[str] = set()
        self.others: set[str] = set()

    def run(self, argv: list[str], env: dict[str, str], timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        done = threading.Event()
        outputs: list[str] = []

        def communicate() -> None:
            outputs.extend(proc.communicate(timeout=timeout))
            done.set()

        reader = threading.Thread(target=communicate, daemon=True)
        reader.start()
        while not done.is_set():
            self._sample(proc.pid)
            done.wait(0.05)
        reader.join()
        return subprocess.CompletedProcess(argv, proc.returncode, *outputs)

    def _sample(self, root: int) -> None:
        out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True,
                             check=False).stdout
        self.samples += 1
        parent: dict[int, int] = {}
        lines: dict[int, str] = {}
        for line in out.splitlines()[1:]:
            parts = line.split(None, 2)
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                parent[int(parts[0])] = int(parts[1])
                lines[int(parts[0])] = parts[2] if len(parts) > 2 else ""
        for pid, args in lines.items():
            p, seen = pid, set()
            while p not in (root, 0, 1) and p in parent and p not in seen:
                seen.add(p)
                p = parent[p]
            (self.ours if p == root else self.others).add(f"{pid} {args}")


# -- the test ---------------------------------------------------------------------------------


def _with_password(uri: str, password: str) -> str:
    parts = urlsplit(uri)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _token_clouds(lab: dict[str, str], token: str, wrong_password: str, path: Path) -> None:
    """A clouds.yaml with the admin cloud authenticated by ``token``, and one with a
    wrong password (0600: it holds a token)."""
    admin = _clouds(lab)[lab["LAB_OPENSTACK_ADMIN_CLOUD"]]
    auth = admin["auth"]
    scope = {k: v for k, v in auth.items() if k.startswith(("project_", "auth_url"))}
    token_cloud = {k: v for k, v in admin.items() if k not in ("auth", "auth_type")}
    token_cloud.update(auth_type="v3token", auth={**scope, "token": token})
    wrong = {**admin, "auth": {**auth, "password": wrong_password}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump({"clouds": {"scan-token": token_cloud, "scan-wrong": wrong}}, fh)


def _figure(tallies: list[Tally], others: list[Tally], checked: dict[str, str],
            alone: bool, store_modes: dict[str, str]) -> str:
    kinds: dict[str, int] = {}
    for name in checked:
        kind = ("canaries" if name.startswith("canary") else "Keystone token" if "token" in name
                else "cephx keys" if "cephx" in name else "passwords")
        kinds[kind] = kinds.get(kind, 0) + 1
    rows = "\n".join(f"| {t.label} | {t.items} | {t.bytes:,} | {len(t.hits)} |" for t in tallies)
    total = (sum(t.items for t in tallies), sum(t.bytes for t in tallies),
             sum(len(t.hits) for t in tallies))
    other_rows = "\n".join(
        f"| {t.label} | {t.items} | {t.bytes:,} | {len(t.hits)}"
        f"{' (' + ', '.join(sorted({h.secret for h in t.hits})) + ')' if t.hits else ''} |"
        for t in others)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    run = ("alone (scanning what earlier runs left)" if alone
           else "after the other functional tests of the same session")
    secret_list = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    modes = ", ".join(f"`{name}` {mode}" for name, mode in store_modes.items())
    return f"""# Secret scan

`tests/functional/test_zz_secret_scan.py`, {when}, run {run}.

Secrets checked: {len(checked)} ({secret_list}), plus any Keystone Fernet token
by its shape. Hits name the secret, never its value.

| os-onboard's (asserted: zero hits) | items | bytes | hits |
|---|---|---|---|
{rows}
| **total** | **{total[0]}** | **{total[1]:,}** | **{total[2]}** |

| not os-onboard's (reported) | items | bytes | hits |
|---|---|---|---|
{other_rows}

This test's own state store: {modes}.
"""


def test_no_secret_anywhere_os_onboard_writes(tmp_path_factory, request):
    lab = _lab_env()
    checked = lab_secrets(lab)
    token = _issue_token(lab)
    checked["Keystone token (issued here, used by os-onboard)"] = token
    canaries = {f"canary: {what}": f"canary{secrets.token_hex(12)}"
                for what in ("wrong vSphere password", "password in a libvirt URI",
                             "password in a URI no driver takes", "wrong cloud password")}
    checked.update(canaries)
    scanner = Scanner(checked)

    work = tmp_path_factory.mktemp("secret-scan")
    env = dict(os.environ, **{k: v for k, v in lab.items() if k.isupper()})
    env.update(OS_ONBOARD_STATE_URL=f"sqlite:///{work}/state.db",
               OS_ONBOARD_CONFIG=str(work / "no-config.yaml"))
    clouds = work / "clouds.yaml"
    _token_clouds(lab, token, canaries["canary: wrong cloud password"], clouds)
    token_env = dict(env, OS_CLIENT_CONFIG_FILE=str(clouds))
    token_env.pop("OS_CLOUD", None)
    hosts = [lab["LAB_HOST_A_URI"], lab["LAB_HOST_B_URI"]]
    vsphere_uri = lab["LAB_VSPHERE_URI"]
    ps = PsWatch()

    outputs = Tally("stdout and stderr of os-onboard commands (errors included)")
    commands: list[tuple[str, subprocess.CompletedProcess[str]]] = []

    def check(label: str, result: subprocess.CompletedProcess[str], ok: bool = True) -> None:
        commands.append((label, result))
        if ok:
            assert result.returncode == 0, f"{label}: {result.stderr[-2000:]}"
        scanner.scan_text(outputs, result.stdout, f"{label}: stdout")
        scanner.scan_text(outputs, result.stderr, f"{label}: stderr")

    # Normal work, at the highest verbosity, ps watched.
    check("discover (libvirt hosts and vSphere, --debug -vv)",
          ps.run([CLI, "--debug", "-vv", "discover", *hosts, vsphere_uri], env))
    check("drift (--debug -vv, password auth)",
          ps.run([CLI, "--debug", "-vv", "drift", *hosts], env))
    check("drift (--debug -vv, authenticated by the issued token)",
          ps.run([CLI, "--debug", "-vv", "--os-cloud", "scan-token", "drift", *hosts],
                 token_env))
    # Errors: what was typed must not come back.
    typed = _with_password(vsphere_uri, checked["vSphere password (file)"])
    refused = subprocess.run([CLI, "--debug", "discover", typed], env=env, capture_output=True,
                             text=True, timeout=120, check=False)
    check("discover, the real vSphere password typed into the URI", refused, ok=False)
    assert "password in the URI is refused" in refused.stderr + refused.stdout
    wrong = subprocess.run([CLI, "--debug", "discover", vsphere_uri, "--no-save"],
                           env=dict(env, VSPHERE_PASSWORD=canaries[
                               "canary: wrong vSphere password"]),
                           capture_output=True, text=True, timeout=120, check=False)
    check("discover, a wrong vSphere password", wrong, ok=False)
    assert "incorrect user name or password" in wrong.stderr
    libvirt_uri = f"qemu+tcp://root:{canaries['canary: password in a libvirt URI']}" \
                  "@127.0.0.1:1/system"
    unreachable = subprocess.run([CLI, "--debug", "discover", libvirt_uri, "--timeout", "20"],
                                 env=env, capture_output=True, text=True, timeout=120,
                                 check=False)
    check("discover, a libvirt URI with a password (unreachable)", unreachable, ok=False)
    assert "127.0.0.1:1" in unreachable.stderr + unreachable.stdout
    unknown = subprocess.run(
        [CLI, "--debug", "discover",
         f"nodriver://root:{canaries['canary: password in a URI no driver takes']}@hv1/"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    check("discover, a URI no driver takes, with a password", unknown, ok=False)
    assert "no hypervisor driver understands" in unknown.stderr
    bad_cloud = subprocess.run([CLI, "--debug", "-vv", "--os-cloud", "scan-wrong", "drift",
                                *hosts], env=token_env, capture_output=True, text=True,
                               timeout=300, check=False)
    check("drift, a wrong cloud password", bad_cloud, ok=False)
    clouds.unlink()  # it held the token; not a file of os-onboard's

    # The scanner sees what it looks for: each canary in the argv it was typed
    # into, and the issued token (Keystone's Fernet format) by its shape alone.
    typed_in = {"vSphere password (file)": refused,
                "canary: password in a libvirt URI": unreachable,
                "canary: password in a URI no driver takes": unknown}
    for name, result in typed_in.items():
        argv = " ".join(map(str, result.args)).encode()
        assert name in {h.secret for h in scanner.find(argv, "argv")}, name
    assert FERNET.fullmatch(token.encode()), "the lab's tokens are not Fernet tokens"

    # This test's own store is private, WAL files included.
    store_modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode))
                   for p in sorted(work.glob("state.db*"))}
    assert set(store_modes.values()) == {"0o600"}, store_modes

    # Files.
    state = Tally(f"os-onboard's state directory ({state_dir()}): files")
    for path in _files(state_dir()):
        scanner.scan_file(state, path)
    tests_tmp = Tally("functional tests' stores, locks, outputs and helper logs (pytest "
                      "temp directories): files")
    skipped = 0
    pytest_root = tmp_path_factory.getbasetemp().parent
    seen: set[Path] = set()
    databases: list[Path] = [p for p in _files(state_dir()) if _is_sqlite(p)]
    for run_dir in sorted(pytest_root.glob("pytest-*")):
        if run_dir.is_symlink():
            continue
        for path in _files(run_dir):
            if path in seen or path.resolve() == clouds.resolve():
                continue
            seen.add(path)
            if _ours_in_test_tmp(path):
                scanner.scan_file(tests_tmp, path)
                if _is_sqlite(path):
                    databases.append(path)
            else:
                skipped += 1
    hosts_tally = Tally("os-onboard's files on the hosts (rename maps, qemu hooks, "
                        "disk.info): files")
    for path in host_files(lab):
        scanner.scan_file(hosts_tally, path)
    rows = Tally("SQLite stores read row by row (WAL included): databases")
    total_rows = audit_rows = 0
    for path in databases:
        try:
            dump, n, audit = sqlite_rows(path)
        except sqlite3.Error as exc:
            rows.notes.append(f"{path}: {exc}")
            continue
        total_rows += n
        audit_rows += audit
        scanner.scan_text(rows, dump, f"{path} (rows)")
    rows.label += f" ({total_rows:,} rows, {audit_rows:,} of them audit log entries)"
    ps_tally = Tally(f"`ps -eo pid,ppid,args` lines of os-onboard's processes "
                     f"({ps.samples} samples while discover and drift ran)")
    for line in sorted(ps.ours):
        scanner.scan_text(ps_tally, line, f"ps: {line.split()[0]} {line.split()[1][:40]}")
    outputs.label = f"stdout and stderr of {len(commands)} os-onboard commands (errors included)"

    # Not ours: the services' own logs and other processes.
    services = Tally("the lab services' own logs ($LAB_LOG_DIR): files")
    for path in _files(Path(lab["LAB_LOG_DIR"])):
        scanner.scan_file(services, path)
    other_ps = Tally("`ps` lines of other processes (same samples)")
    for line in sorted(ps.others):
        scanner.scan_text(other_ps, line, "ps (other)")

    ours = [state, tests_tmp, rows, hosts_tally, outputs, ps_tally]
    alone = not any("test_" in item.nodeid and "test_zz_secret_scan" not in item.nodeid
                    for item in request.session.items)
    figure = _figure(ours, [services, other_ps], checked, alone, store_modes)
    figure += (f"\nNot scanned in pytest's temp directories: {skipped} files of the tests' "
               "own (inputs, other programs' logs).\n")
    FIGURE.parent.mkdir(exist_ok=True)
    FIGURE.write_text(figure)
    print(figure)

    hits = [h for t in ours for h in t.hits]
    assert not hits, "secrets found:\n" + "\n".join(map(str, hits))
    assert tests_tmp.items or state.items, "nothing of os-onboard's to scan"
    assert ps.ours, "ps never saw os-onboard run"

