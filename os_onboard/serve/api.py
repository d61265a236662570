"""The handlers of ``/v1`` and the route table that names them.

A handler takes the :class:`Service` (what the process holds: the state
store and its holders, the policy, the coordinator) and the request, and
returns ``(status, body)``; :mod:`.app` turns that into JSON. Lists are
paginated with ``limit`` and ``marker`` (the last item of the page before)
and answer ``{"<things>": [...], "next": URL}`` while there is more.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import webob
import webob.exc
from pydantic import ValidationError

from os_onboard import __version__
from os_onboard.exceptions import StateStoreError
from os_onboard.inventory.models import HostInventory, HostStatus, Inventory, Vm
from os_onboard.mapping.model import Mapping, PolicyGroup
from os_onboard.serve.routes import Route, openapi
from os_onboard.serve.web import body_json, next_link, page_args
from os_onboard.state import StateStore
from os_onboard.state.audit import AuditLog
from os_onboard.state.drift_queue import DriftQueue
from os_onboard.state.hosts import HostRegistry, ManagedHost
from os_onboard.state.jobs import JobStore
from os_onboard.state.journal import Journal

#: how many snapshots back a host's last discovery is looked for
DISCOVERY_SCAN = 50
#: host checks at once per process: each holds a request thread up to its timeout
CHECKS_AT_ONCE = 4
CHECK_TIMEOUT = (1.0, 10.0, 30.0)  # min, default, max seconds


@dataclass
class Service:
    store: StateStore
    max_limit: int = 1000
    #: who holds which hosts: {"members": [...], "hosts": {uri: member}} (:mod:`.jobs`)
    workers: Callable[[], dict[str, Any]] = field(default=lambda: {"members": []})
    hosts: HostRegistry = field(init=False)
    jobs: JobStore = field(init=False)
    audit: AuditLog = field(init=False)
    queue: DriftQueue = field(init=False)

    def __post_init__(self) -> None:
        self.hosts = HostRegistry(self.store)
        self.jobs = JobStore(self.store)
        self.audit = AuditLog(self.store)
        self.queue = DriftQueue(self.store)
        self._inventories: OrderedDict[int, Inventory] = OrderedDict()
        self._lock = threading.Lock()
        # per snapshot (immutable, so kept): {uri: that host's discovery summary}
        self._host_summaries: OrderedDict[int, dict[str, dict[str, Any]]] = OrderedDict()
        # per snapshot: the per-VM index of search terms, conflicts and problems
        self._indexes: OrderedDict[int, SnapshotIndex] = OrderedDict()
        self.checks = threading.BoundedSemaphore(CHECKS_AT_ONCE)

    def inventory(self, snapshot_id: int | None) -> tuple[int, Inventory]:
        """A snapshot, parsed once: snapshots are immutable, the last few are kept.

        :raises StateStoreError: no such snapshot.
        """
        if snapshot_id is None:
            newest = self.store.list_snapshots(1)
            if not newest:
                return self.store.load_snapshot(None)  # raises "has no any snapshot"
            snapshot_id = newest[0].id
        with self._lock:
            if snapshot_id in self._inventories:
                self._inventories.move_to_end(snapshot_id)
                return snapshot_id, self._inventories[snapshot_id]
        sid, inventory = self.store.load_snapshot(snapshot_id)
        with self._lock:
            self._inventories[sid] = inventory
            while len(self._inventories) > 4:
                self._inventories.popitem(last=False)
        return sid, inventory

    def index(self, snapshot_id: int, inventory: Inventory) -> SnapshotIndex:
        with self._lock:
            found = self._indexes.get(snapshot_id)
        if found is None:
            found = SnapshotIndex(inventory)
            with self._lock:
                self._indexes[snapshot_id] = found
                while len(self._indexes) > 4:
                    self._indexes.popitem(last=False)
        return found

    def last_discoveries(self, uris: set[str]) -> dict[str, dict[str, Any]]:
        """Each host's newest discovery: from the newest snapshot that holds it,
        which need not be the newest snapshot (a discovery of one host makes a
        snapshot of that host only). Looks back :data:`DISCOVERY_SCAN` snapshots."""
        found: dict[str, dict[str, Any]] = {}
        for info in self.store.list_snapshots(DISCOVERY_SCAN):
            if uris <= found.keys():
                break
            with self._lock:
                summary = self._host_summaries.get(info.id)
            if summary is None:
                with self._lock:
                    cached = self._inventories.get(info.id)
                # older snapshots are read past the LRU of parsed ones: only their
                # summaries are kept, not thousands of VMs each
                inventory = cached or self.store.load_snapshot(info.id)[1]
                summary = {h.host.uri: _discovery(info.id, h) for h in inventory.hosts}
                with self._lock:
                    self._host_summaries[info.id] = summary
                    while len(self._host_summaries) > 4 * DISCOVERY_SCAN:
                        self._host_summaries.popitem(last=False)
            for uri, one in summary.items():
                found.setdefault(uri, one)
        return found


def _discovery(snapshot_id: int, host: HostInventory) -> dict[str, Any]:
    return {"snapshot": snapshot_id, "discovered_at": host.discovered_at.isoformat(),
            "duration_ms": host.duration_ms, "status": host.status.value,
            "vms": len(host.vms), "problems": len(host.problems)}


def _vm_terms(vm: Vm) -> list[tuple[str, str]]:
    """What a search matches, each with the field it came from (lower case)."""
    terms = [("name", vm.name), ("uuid", vm.uuid), ("uuid", vm.bios_uuid)]
    for nic in vm.nics:
        terms.append(("mac", nic.mac))
        terms += [("ip", a.address) for a in nic.addresses]
    for disk in vm.disks:
        ids = disk.identifiers
        terms += [("serial", ids.serial), ("wwn", ids.wwn), ("page83", ids.scsi_page83),
                  ("path", disk.source), ("disk_uuid", disk.disk_uuid)]
        terms += [("by_id", b) for b in ids.by_id]
    return [(field_, value.lower()) for field_, value in terms if value]


class SnapshotIndex:
    """A snapshot's VMs with what the API filters on, built once per snapshot.

    Conflicts name their members ``"<host uri> <vm name>"`` (the inventory
    model); problems name a host URI and a VM's name or UUID.
    """

    def __init__(self, inventory: Inventory) -> None:
        self.conflicts: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for conflict in inventory.conflicts:
            for member in conflict.members:
                self.conflicts[member].append(conflict.model_dump(
                    mode="json", include={"kind", "value", "detail"}))
        self.problems: dict[tuple[str | None, str | None], list[dict[str, Any]]] = (
            defaultdict(list))
        for problem in inventory.problems:
            self.problems[(problem.host, problem.vm)].append(problem.model_dump(
                mode="json", include={"severity", "code", "message"}))
        self.terms = {(h.host.uri, vm.uuid, vm.name): _vm_terms(vm)
                      for h, vm in inventory.iter_vms()}

    def flags(self, uri: str, vm: Vm) -> dict[str, list[dict[str, Any]]]:
        problems = self.problems.get((uri, vm.name), []) + (
            self.problems.get((uri, vm.uuid), []) if vm.uuid != vm.name else [])
        return {"conflicts": self.conflicts.get(f"{uri} {vm.name}", []),
                "problems": problems}

    def matches(self, uri: str, vm: Vm, query: str) -> list[str]:
        """The fields of the VM that contain ``query`` (lower case); [] for none."""
        return sorted({f for f, v in self.terms[(uri, vm.uuid, vm.name)] if query in v})


Result = tuple[int, Any]

_HOST = {"type": "object", "properties": {
    "id": {"type": "integer"}, "uri": {"type": "string"}, "name": {"type": "string"},
    "groups": {"type": "array", "items": {"type": "string"}},
    "credentials_ref": {"type": "string"}, "created_at": {"type": "string"}}}
_JOB = {"type": "object", "properties": {
    "id": {"type": "string"}, "kind": {"type": "string"},
    "state": {"enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
    "progress": {"type": "object"}, "result": {"type": "object"}, "error": {"type": "string"},
    "owner": {"type": "string"}, "attempts": {"type": "integer"}}}

_DISCOVERY = {"type": ["object", "null"], "properties": {
    "snapshot": {"type": "integer"}, "discovered_at": {"type": "string"},
    "duration_ms": {"type": ["integer", "null"]}, "status": {"type": "string"},
    "vms": {"type": "integer"}, "problems": {"type": "integer"}}}
_HOST["properties"]["last_discovery"] = _DISCOVERY
_CHECK = {"type": "object", "properties": {
    "host": {"type": "string"}, "uri": {"type": "string"}, "ok": {"type": "boolean"},
    "status": {"enum": ["ok", "partial", "unreachable"]}, "latency_ms": {"type": "integer"},
    "vms": {"type": "integer"}, "error": {"type": ["string", "null"]},
    "checked_at": {"type": "string"}, "timeout": {"type": "number"}}}
_CONFLICT = {"type": "object", "properties": {
    "kind": {"type": "string"}, "value": {"type": "string"},
    "members": {"type": "array", "items": {"type": "string"}}, "detail": {"type": "string"}}}
_PROBLEM = {"type": "object", "properties": {
    "severity": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"},
    "host": {"type": "string"}, "vm": {"type": "string"}}}
_PLAN = {"type": "object", "properties": {
    "id": {"type": "integer"}, "created_at": {"type": "string"},
    "snapshot_id": {"type": "integer"}, "started": {"type": "boolean"}}}


def _list_of(name: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {name: {"type": "array", "items": item},
                                             "next": {"type": "string"}}}


def versions(svc: Service, req: webob.Request) -> Result:
    return 200, {"versions": [{"id": "v1", "status": "CURRENT",
                               "links": [{"rel": "self", "href": f"{req.host_url}/v1"},
                                         {"rel": "describedby",
                                          "href": f"{req.host_url}/v1/openapi.json"}]}]}


def openapi_document(svc: Service, req: webob.Request) -> Result:
    return 200, openapi(ROUTES, __version__)


def _host_or_404(svc: Service, host: str) -> ManagedHost:
    found = svc.hosts.get(host)
    if found is None:
        raise webob.exc.HTTPNotFound(f"no registered host {host!r}")
    return found


def list_hosts(svc: Service, req: webob.Request) -> Result:
    limit, marker = page_args(req, svc.max_limit)
    hosts = svc.hosts.list(group=req.GET.get("group") or None)
    if req.GET.get("uri"):
        hosts = [h for h in hosts if h.uri == req.GET["uri"]]
    if marker:
        hosts = [h for h in hosts if h.id > int(marker)] if marker.isdigit() else []
    page = hosts[:limit]
    last = svc.last_discoveries({h.uri for h in page}) if page else {}
    return 200, {"hosts": [{**h.as_dict(), "last_discovery": last.get(h.uri)} for h in page],
                 **next_link(req, page, limit, str(page[-1].id) if page else "")}


def add_host(svc: Service, req: webob.Request) -> Result:
    body = body_json(req)
    if not isinstance(body.get("uri"), str):
        raise webob.exc.HTTPBadRequest("'uri' (a string) is required")
    groups = body.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise webob.exc.HTTPBadRequest("'groups' is a list of strings")
    host = svc.hosts.add(body["uri"], body.get("name") or None, groups,
                         body.get("credentials_ref") or "")
    return 201, {"host": host.as_dict()}


def show_host(svc: Service, req: webob.Request, host: str) -> Result:
    found = _host_or_404(svc, host)
    return 200, {"host": {**found.as_dict(),
                          "last_discovery": svc.last_discoveries({found.uri}).get(found.uri)}}


def check_host(svc: Service, req: webob.Request, host: str) -> Result:
    """Can the host be read now? One read-only read through its driver, bounded by
    a timeout, saved nowhere (a discovery job makes snapshots): its status, the
    time it took, and the error when it could not be read."""
    from os_onboard.discovery.runner import RunOptions, discover_hosts
    from os_onboard.drivers.base import DiscoveryOptions
    from os_onboard.state.credentials import export_registered

    found = _host_or_404(svc, host)
    lowest, default, highest = CHECK_TIMEOUT
    timeout = body_json(req).get("timeout", default)
    if not isinstance(timeout, int | float) or not lowest <= timeout <= highest:
        raise webob.exc.HTTPBadRequest(f"'timeout' is {lowest:g}..{highest:g} seconds")
    if not svc.checks.acquire(blocking=False):
        raise webob.exc.HTTPServiceUnavailable(
            f"{CHECKS_AT_ONCE} host checks are running: try again shortly",
            headers={"Retry-After": "5"})
    try:
        export_registered(svc.hosts, [found.uri])
        started = time.monotonic()
        # no addresses, no storage: the VMs' definitions only, the cheapest read
        # every driver has (a driver's discover() is its one public read)
        read = discover_hosts([found.uri], RunOptions(
            workers=1, host_timeout=float(timeout),
            discovery=DiscoveryOptions(address_sources=(), storage=False))).hosts[0]
        latency = round((time.monotonic() - started) * 1000)
    finally:
        svc.checks.release()
    errors = [p.message for p in read.problems if p.severity.value == "error"]
    return 200, {"check": {
        "host": found.name, "uri": found.uri, "ok": read.status is not HostStatus.UNREACHABLE,
        "status": read.status.value, "latency_ms": latency, "vms": len(read.vms),
        "error": "; ".join(errors) if read.status is HostStatus.UNREACHABLE else None,
        "checked_at": read.discovered_at.isoformat(), "timeout": timeout}}


def remove_host(svc: Service, req: webob.Request, host: str) -> Result:
    svc.hosts.remove(_host_or_404(svc, host).uri)
    return 204, None


def list_snapshots(svc: Service, req: webob.Request) -> Result:
    limit, _ = page_args(req, svc.max_limit)
    return 200, {"snapshots": [{**asdict(s), "created_at": s.created_at.isoformat()}
                               for s in svc.store.list_snapshots(limit)]}


def _snapshot(svc: Service, snapshot: str) -> tuple[int, Any]:
    if snapshot != "latest" and not snapshot.isdigit():
        raise webob.exc.HTTPNotFound(f"no snapshot {snapshot!r} (an id or 'latest')")
    try:
        return svc.inventory(None if snapshot == "latest" else int(snapshot))
    except StateStoreError as exc:
        if "has no" in str(exc):
            raise webob.exc.HTTPNotFound(str(exc)) from None
        raise


def show_snapshot(svc: Service, req: webob.Request, snapshot: str) -> Result:
    sid, inv = _snapshot(svc, snapshot)
    return 200, {"snapshot": {
        "id": sid, "created_at": inv.created_at.isoformat(),
        "hosts": [{"uri": h.host.uri, "kind": h.host.kind, "status": h.status.value,
                   "vms": len(h.vms)} for h in inv.hosts],
        "problems": len(inv.problems), "conflicts": len(inv.conflicts)}}


def list_vms(svc: Service, req: webob.Request, snapshot: str) -> Result:
    """VMs of a snapshot, filtered by ``name`` (substring), ``host``
    (URI), ``power_state``, ``q`` (a substring of the name, a UUID, a MAC, an
    IP address or a disk's serial, WWN, page-83 id, by-id name or path; any
    case) and ``flagged`` (only VMs in a conflict or with a problem or a
    caveat), in the snapshot's order; marker = a VM uuid. With ``flags``, each
    VM carries its ``conflicts``, ``problems`` and, with ``q``, the fields it
    ``matched`` (asked for: without it a record is exactly the inventory
    model's VM, which the CLI's ``--url`` reads back into one)."""
    limit, marker = page_args(req, svc.max_limit)
    sid, inv = _snapshot(svc, snapshot)
    index = svc.index(sid, inv)
    name, host, power = (req.GET.get(k) for k in ("name", "host", "power_state"))
    query = (req.GET.get("q") or "").strip().lower()
    flagged, with_flags = (req.GET.get(k, "").lower() in ("1", "true", "yes")
                           for k in ("flagged", "flags"))

    def wanted(uri: str, vm: Vm) -> bool:
        if (host and uri != host) or (name and name not in vm.name) or (
                power and vm.power_state.value != power):
            return False
        if query and not index.matches(uri, vm, query):
            return False
        if flagged:
            flags = index.flags(uri, vm)
            return bool(flags["conflicts"] or flags["problems"] or vm.caveats)
        return True

    rows = [(h.host.uri, vm) for h in inv.hosts for vm in h.vms if wanted(h.host.uri, vm)]
    if marker:
        at = next((i for i, (_, vm) in enumerate(rows) if vm.uuid == marker), None)
        if at is None:
            raise webob.exc.HTTPBadRequest(f"marker {marker!r} is no VM of this listing")
        rows = rows[at + 1:]
    page = rows[:limit]
    return 200, {"snapshot": sid,
                 "vms": [{"host": uri, **vm.model_dump(mode="json"),
                          **(index.flags(uri, vm) if with_flags else {}),
                          **({"matched": index.matches(uri, vm, query)}
                             if query and with_flags else {})}
                         for uri, vm in page],
                 **next_link(req, page, limit, page[-1][1].uuid if page else "")}


def _position_page(req: webob.Request, items: list[Any], limit: int, marker: str | None
                   ) -> tuple[list[Any], dict[str, str]]:
    """A page of an immutable list (a snapshot's): the marker is a position."""
    start = 0
    if marker:
        if not marker.isdigit() or int(marker) > len(items):
            raise webob.exc.HTTPBadRequest(f"marker {marker!r} is no position of this list")
        start = int(marker)
    page = items[start:start + limit]
    return page, next_link(req, page, limit, str(start + len(page)))


def list_conflicts(svc: Service, req: webob.Request, snapshot: str) -> Result:
    """Identifiers held by more than one VM (``kind``: duplicate-mac, duplicate-uuid)."""
    limit, marker = page_args(req, svc.max_limit)
    sid, inv = _snapshot(svc, snapshot)
    kind = req.GET.get("kind")
    items = [c.model_dump(mode="json") for c in inv.conflicts if not kind or c.kind == kind]
    page, more = _position_page(req, items, limit, marker)
    return 200, {"snapshot": sid, "conflicts": page, **more}


def list_problems(svc: Service, req: webob.Request, snapshot: str) -> Result:
    """What discovery could not read or found odd, per host and VM (``severity``,
    ``host``)."""
    limit, marker = page_args(req, svc.max_limit)
    sid, inv = _snapshot(svc, snapshot)
    severity, host = req.GET.get("severity"), req.GET.get("host")
    items = [p.model_dump(mode="json") for p in inv.problems
             if (not severity or p.severity.value == severity) and (not host or p.host == host)]
    page, more = _position_page(req, items, limit, marker)
    return 200, {"snapshot": sid, "problems": page, **more}


def start_discovery(svc: Service, req: webob.Request) -> Result:
    """A discovery job over registered hosts (all of them when none are named)."""
    body = body_json(req)
    named = body.get("hosts")
    if named is not None and (not isinstance(named, list)
                              or not all(isinstance(h, str) for h in named)):
        raise webob.exc.HTTPBadRequest("'hosts' is a list of registered host names or URIs")
    hosts = ([_host_or_404(svc, h) for h in named] if named else svc.hosts.list())
    if not hosts:
        raise webob.exc.HTTPConflict("no registered host to discover: POST /v1/hosts first")
    return _accepted(req, svc.jobs.create("discover", {"hosts": [h.uri for h in hosts]},
                                          created_by=req.environ.get("HTTP_X_USER_NAME", "")))


def _accepted(req: webob.Request, job: Any) -> Result:
    return 202, {"job": job.as_dict(), "links": [{"rel": "self",
                                                  "href": f"{req.host_url}/v1/jobs/{job.id}"}]}


def start_plan(svc: Service, req: webob.Request) -> Result:
    """A plan job: the mapping document, a snapshot (default newest), VMs (default all)."""
    body = body_json(req)
    if not isinstance(body.get("mapping"), dict):
        raise webob.exc.HTTPBadRequest("'mapping' (the mapping document, an object) is "
                                       "required")
    try:
        Mapping.model_validate(body["mapping"])
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
                             for e in exc.errors())
        raise webob.exc.HTTPBadRequest(f"the mapping is invalid: {problems}") from None
    snapshot = body.get("snapshot")
    vms = body.get("vms") or []
    if snapshot is not None and not isinstance(snapshot, int):
        raise webob.exc.HTTPBadRequest("'snapshot' is a snapshot id")
    if not isinstance(vms, list) or not all(isinstance(v, str) for v in vms):
        raise webob.exc.HTTPBadRequest("'vms' is a list of VM names or UUIDs")
    _snapshot(svc, "latest" if snapshot is None else str(snapshot))  # 404 before queuing
    return _accepted(req, svc.jobs.create(
        "plan", {"mapping": body["mapping"], "snapshot": snapshot, "vms": vms},
        created_by=req.environ.get("HTTP_X_USER_NAME", "")))


def list_plans(svc: Service, req: webob.Request) -> Result:
    """Saved plans, newest first, without their documents; marker = a plan id."""
    limit, marker = page_args(req, svc.max_limit)
    if marker is not None and not marker.isdigit():
        raise webob.exc.HTTPBadRequest("marker is a plan id")
    plans = Journal(svc.store).list_plans(limit, int(marker) if marker else None)
    return 200, {"plans": [{**asdict(p), "created_at": p.created_at.isoformat()}
                           for p in plans],
                 **next_link(req, plans, limit, str(plans[-1].id) if plans else "")}


def show_plan(svc: Service, req: webob.Request, plan: str) -> Result:
    """A saved plan (an id or 'latest'): each VM's steps (what would be written)
    and blocked reasons."""
    if not plan.isdigit() and plan != "latest":
        raise webob.exc.HTTPNotFound(f"no plan {plan!r} (an id or 'latest')")
    try:
        plan_id, doc = Journal(svc.store).load_plan(int(plan) if plan.isdigit() else None)
    except StateStoreError as exc:
        if "has no" in str(exc):
            raise webob.exc.HTTPNotFound(str(exc)) from None
        raise
    return 200, {"id": plan_id, "counts": doc.counts(), "plan": doc.model_dump(mode="json")}


def start_apply(svc: Service, req: webob.Request) -> Result:
    """An apply job of a saved plan (journaled: resumable; one at a time per plan)."""
    body = body_json(req)
    plan, parallel = body.get("plan"), body.get("parallel", 4)
    if not isinstance(plan, int) or not isinstance(parallel, int) or not 1 <= parallel <= 64:
        raise webob.exc.HTTPBadRequest("'plan' (a plan id) is required; 'parallel' is 1..64")
    show_plan(svc, req, str(plan))  # 404 before queuing
    return _accepted(req, svc.jobs.create("apply", {"plan": plan, "parallel": parallel},
                                          created_by=req.environ.get("HTTP_X_USER_NAME", "")))


def start_unmanage(svc: Service, req: webob.Request) -> Result:
    """An unmanage job: release VMs from OpenStack, untouched (names or UUIDs)."""
    body = body_json(req)
    vms, host = body.get("vms"), body.get("host")
    if not isinstance(vms, list) or not vms or not all(isinstance(v, str) for v in vms):
        raise webob.exc.HTTPBadRequest("'vms' (a list of VM names or UUIDs) is required")
    if host is not None and not isinstance(host, str):
        raise webob.exc.HTTPBadRequest("'host' is a nova-compute host name")
    return _accepted(req, svc.jobs.create("unmanage", {"vms": vms, "host": host},
                                          created_by=req.environ.get("HTTP_X_USER_NAME", "")))


def start_drift_check(svc: Service, req: webob.Request) -> Result:
    """A drift job: one report-only reconcile pass over registered hosts (all by default)."""
    body = body_json(req)
    named = body.get("hosts")
    if named is not None and (not isinstance(named, list)
                              or not all(isinstance(h, str) for h in named)):
        raise webob.exc.HTTPBadRequest("'hosts' is a list of registered host names or URIs")
    hosts = [_host_or_404(svc, h) for h in named] if named else svc.hosts.list()
    if not hosts:
        raise webob.exc.HTTPConflict("no registered host: POST /v1/hosts first")
    return _accepted(req, svc.jobs.create("drift", {"hosts": [h.uri for h in hosts]},
                                          created_by=req.environ.get("HTTP_X_USER_NAME", "")))


def list_policies(svc: Service, req: webob.Request) -> Result:
    """The API's policy rules: each route's rule and its default check."""
    from os_onboard.serve.policy import rules

    return 200, {"rules": [{"name": r.name, "default": r.check_str,
                            "description": r.description} for r in rules(ROUTES)]}


def drift_policies(svc: Service, req: webob.Request) -> Result:
    """The reconciler's drift policies: those this server's passes use (its
    watcher and drift jobs compare and report: no option sets another), and
    the policy groups of the mapping given with the newest plan job, which
    ``os-onboard watch|reconcile --mapping`` would apply, with the group each
    registered host falls in."""
    from os_onboard.reconcile.policy import parse_policies

    in_force = parse_policies("report", [])
    mapping_groups: list[PolicyGroup] | None = None
    source = None
    for job in svc.jobs.list(200):  # newest first; the mapping came with a plan job
        if job.kind == "plan" and isinstance(job.params.get("mapping"), dict):
            try:  # only its policy groups matter here (the job validated the whole)
                mapping_groups = [PolicyGroup.model_validate(g)
                                  for g in job.params["mapping"].get("policies") or []]
            except ValidationError:
                continue
            source = f"plan job {job.id}"
            break
    groups = []
    if mapping_groups:
        parsed = parse_policies("report", [], mapping_groups)
        hosts = svc.hosts.list()
        for group, rule in zip(mapping_groups, parsed.groups, strict=True):
            groups.append({
                "hosts": group.hosts, "policy": group.policy,
                "kinds": {k.value: v for k, v in rule.kinds.items()},
                # first match wins: a host an earlier group took is not this one's
                "registered_hosts": [h.name for h in hosts
                                     if next((g for g in parsed.groups
                                              if g.matches(h.uri, None)), None) is rule]})
    return 200, {
        "server": {"kinds": {k.value: v for k, v in in_force.default.items()},
                   "note": "this server's watcher and drift jobs compare and report only "
                           "(audit log and drift queue); tolerate and adopt run in "
                           "'os-onboard watch|reconcile'"},
        "mapping": None if mapping_groups is None else {"source": source, "groups": groups},
        "note": None if mapping_groups else (
            "no mapping known to this server (none came with a plan job)"
            if mapping_groups is None else f"the mapping of {source} has no policy groups")
        + ": every host takes the command line's --policy/--kind-policy"}


def list_jobs(svc: Service, req: webob.Request) -> Result:
    limit, marker = page_args(req, svc.max_limit)
    jobs = svc.jobs.list(limit, marker, req.GET.get("state") or None)
    return 200, {"jobs": [j.as_dict() for j in jobs],
                 **next_link(req, jobs, limit, jobs[-1].id if jobs else "")}


def show_job(svc: Service, req: webob.Request, job: str) -> Result:
    found = svc.jobs.get(job)
    if found is None:
        raise webob.exc.HTTPNotFound(f"no job {job!r}")
    return 200, {"job": found.as_dict()}


def cancel_job(svc: Service, req: webob.Request, job: str) -> Result:
    found = svc.jobs.cancel(job)
    if found is None:
        raise webob.exc.HTTPNotFound(f"no job {job!r}")
    return 202, {"job": found.as_dict()}


def list_workers(svc: Service, req: webob.Request) -> Result:
    return 200, svc.workers()


def list_audit(svc: Service, req: webob.Request) -> Result:
    limit, _ = page_args(req, svc.max_limit)
    entries = svc.audit.entries(vm=req.GET.get("vm") or None, limit=limit)
    return 200, {"audit": [{**e.__dict__, "at": e.at.isoformat()} for e in entries]}


def list_drift_queue(svc: Service, req: webob.Request) -> Result:
    items = svc.queue.items()
    return 200, {"queue": [{**i.__dict__, "first_seen": i.first_seen.isoformat(),
                            "last_tried": i.last_tried.isoformat()} for i in items]}


def _r(method: str, path: str, handler: Callable[..., Any], rule: str | None, summary: str,
       **kw: Any) -> Route:
    return Route(method, path, handler, rule, summary, **kw)


ROUTES: list[Route] = [
    _r("GET", "/", versions, None, "API versions"),
    _r("GET", "/v1", versions, None, "API versions"),
    _r("GET", "/v1/openapi.json", openapi_document, None, "this OpenAPI 3 document"),
    _r("GET", "/v1/hosts", list_hosts, "os_onboard:hosts:list", "list managed hosts",
       response=_list_of("hosts", _HOST), query=("group", "uri", "limit", "marker")),
    _r("POST", "/v1/hosts", add_host, "os_onboard:hosts:create", "register a managed host",
       status=201, response={"type": "object", "properties": {"host": _HOST}},
       request={"type": "object", "required": ["uri"], "properties": {
           "uri": {"type": "string"}, "name": {"type": "string"},
           "groups": {"type": "array", "items": {"type": "string"}},
           "credentials_ref": {"type": "string",
                               "description": "env:NAME, file:/PATH or config:KEY"}}}),
    _r("GET", "/v1/hosts/{host}", show_host, "os_onboard:hosts:get",
       "show a managed host (id or name)"),
    _r("POST", "/v1/hosts/{host}/check", check_host, "os_onboard:hosts:check",
       "can the host be read now: one read-only read through its driver within "
       "'timeout' seconds (1-30, default 10), saved nowhere", reads=True,
       request={"type": "object", "properties": {"timeout": {"type": "number"}}},
       response={"type": "object", "properties": {"check": _CHECK}}),
    _r("DELETE", "/v1/hosts/{host}", remove_host, "os_onboard:hosts:delete",
       "forget a managed host (its VMs are not touched)", status=204),
    _r("GET", "/v1/snapshots", list_snapshots, "os_onboard:snapshots:list",
       "list inventory snapshots, newest first", query=("limit",)),
    _r("GET", "/v1/snapshots/{snapshot}", show_snapshot, "os_onboard:snapshots:get",
       "one snapshot's summary (an id or 'latest')"),
    _r("GET", "/v1/snapshots/{snapshot}/vms", list_vms, "os_onboard:vms:list",
       "the VMs of a snapshot", response=_list_of("vms", {"type": "object"}),
       query=("name", "host", "power_state", "q", "flagged", "flags", "limit",
              "marker")),
    _r("GET", "/v1/snapshots/{snapshot}/conflicts", list_conflicts,
       "os_onboard:snapshots:conflicts", "identifiers more than one VM holds",
       response=_list_of("conflicts", _CONFLICT), query=("kind", "limit", "marker")),
    _r("GET", "/v1/snapshots/{snapshot}/problems", list_problems,
       "os_onboard:snapshots:problems", "what discovery could not read or found odd",
       response=_list_of("problems", _PROBLEM),
       query=("severity", "host", "limit", "marker")),
    _r("POST", "/v1/discoveries", start_discovery, "os_onboard:discoveries:create",
       "start a discovery job over registered hosts", status=202,
       request={"type": "object", "properties": {
           "hosts": {"type": "array", "items": {"type": "string"}}}},
       response={"type": "object", "properties": {"job": _JOB}}),
    _r("POST", "/v1/plans", start_plan, "os_onboard:plans:create",
       "start a plan job (mapping document, snapshot, VMs); nothing is written",
       status=202, request={"type": "object", "required": ["mapping"], "properties": {
           "mapping": {"type": "object"}, "snapshot": {"type": "integer"},
           "vms": {"type": "array", "items": {"type": "string"}}}},
       response={"type": "object", "properties": {"job": _JOB}}),
    _r("GET", "/v1/plans", list_plans, "os_onboard:plans:list",
       "saved plans, newest first (without their documents)",
       response=_list_of("plans", _PLAN), query=("limit", "marker")),
    _r("GET", "/v1/plans/{plan}", show_plan, "os_onboard:plans:get",
       "a saved plan (an id or 'latest'): per-VM steps and blocked reasons"),
    _r("POST", "/v1/applies", start_apply, "os_onboard:applies:create",
       "start an apply job of a saved plan", status=202,
       request={"type": "object", "required": ["plan"], "properties": {
           "plan": {"type": "integer"}, "parallel": {"type": "integer"}}},
       response={"type": "object", "properties": {"job": _JOB}}),
    _r("POST", "/v1/unmanages", start_unmanage, "os_onboard:unmanages:create",
       "start an unmanage job (release VMs from OpenStack, untouched)", status=202,
       request={"type": "object", "required": ["vms"], "properties": {
           "vms": {"type": "array", "items": {"type": "string"}}, "host": {"type": "string"}}},
       response={"type": "object", "properties": {"job": _JOB}}),
    _r("POST", "/v1/drift-checks", start_drift_check, "os_onboard:drift:create",
       "start a drift job: how the hosts differ from OpenStack's records (report only)",
       status=202, request={"type": "object", "properties": {
           "hosts": {"type": "array", "items": {"type": "string"}}}},
       response={"type": "object", "properties": {"job": _JOB}}),
    _r("GET", "/v1/policies", list_policies, "os_onboard:policies:list",
       "the API's policy rules and their defaults"),
    _r("GET", "/v1/drift-policies", drift_policies, "os_onboard:drift_policies:list",
       "the reconciler's drift policies: this server's, and the policy groups of the "
       "newest plan job's mapping"),
    _r("GET", "/v1/jobs", list_jobs, "os_onboard:jobs:list", "list jobs, newest first",
       response=_list_of("jobs", _JOB), query=("state", "limit", "marker")),
    _r("GET", "/v1/jobs/{job}", show_job, "os_onboard:jobs:get",
       "a job with its per-item progress",
       response={"type": "object", "properties": {"job": _JOB}}),
    _r("POST", "/v1/jobs/{job}/cancel", cancel_job, "os_onboard:jobs:cancel",
       "cancel a job: a queued one at once; a running discovery after its batch of "
       "hosts, an apply between VMs (those started finish; the job ends cancelled with "
       "each VM's progress), an unmanage between two VMs", status=202),
    _r("GET", "/v1/workers", list_workers, "os_onboard:workers:list",
       "the live replicas and the hosts each holds"),
    _r("GET", "/v1/audit", list_audit, "os_onboard:audit:list",
       "the reconciler's audit history", query=("vm", "limit")),
    _r("GET", "/v1/drift-queue", list_drift_queue, "os_onboard:drift_queue:list",
       "drift waiting for OpenStack"),
]
