"""One replica's membership in the group, the hosts it holds, and tooz locks.

A replica joins the tooz group (``[coordination] group``) as its member id
with a lease of ``lease_ttl`` seconds that tooz refreshes every heartbeat;
etcd deletes the member when the lease runs out, so a replica killed with
-9 leaves the group ``lease_ttl`` seconds later at most. Every heartbeat
each replica reads the members and the registered hosts, takes the hosts
the ring (:mod:`.ring`) gives it and publishes them as its capabilities
(JSON: ``{"hosts": [...], "since": ...}``), which is what
``os-onboard workers`` and ``/v1/workers`` show. A replica that finds
itself missing from the group (its lease ran out while it was stalled)
joins again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

from tooz import coordination

from os_onboard.coordination.ring import assign, held_by
from os_onboard.exceptions import OnboardError
from os_onboard.state.hosts import HostRegistry
from os_onboard.state.store import StateStore

LOG = logging.getLogger(__name__)


def backend_url(url: str, lease_ttl: int) -> str:
    """``url`` with tooz's etcd lease options, unless it sets them itself."""
    if not url.startswith("etcd3"):
        return url
    parts = urlsplit(url)
    extra = {k: str(lease_ttl) for k in ("timeout", "membership_timeout", "lock_timeout")
             if f"{k}=" not in parts.query}
    query = "&".join(filter(None, [parts.query, urlencode(extra)]))
    return parts._replace(query=query).geturl()


def _decode(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class Membership:
    """This replica in the group: heartbeats, the hosts it holds, locks."""

    def __init__(self, url: str, member: str, group: str, registry: HostRegistry,
                 heartbeat: float = 2.0, lease_ttl: int = 10,
                 on_change: Callable[[list[str], list[str]], None] | None = None,
                 report: Callable[[], dict[str, Any]] | None = None) -> None:
        """:param on_change: called with (gained, lost) hosts after the share changed
            (``self.hosts`` is the new share).
        :param report: extra fields published with the member (e.g. the last pass).
        """
        self.member, self.group = member, group
        self.registry, self.heartbeat, self.on_change = registry, heartbeat, on_change
        self.report = report
        self._coord = coordination.get_coordinator(backend_url(url, lease_ttl),
                                                   member.encode())
        self._gid = group.encode()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.members: list[str] = []
        self.hosts: list[str] = []
        self.since = time.time()
        self._thread = threading.Thread(target=self._loop, name="membership", daemon=True)

    def start(self) -> Membership:
        self._coord.start(start_heart=True)
        with contextlib.suppress(coordination.GroupAlreadyExist):
            self._coord.create_group(self._gid).get()
        self._join()
        self.refresh()
        self._thread.start()
        return self

    def _join(self) -> None:
        with contextlib.suppress(coordination.MemberAlreadyExist):
            self._coord.join_group(self._gid, self._caps()).get()
        LOG.info("joined group %s as %s", self.group, self.member)

    def _caps(self) -> bytes:
        extra = self.report() if self.report is not None else {}
        return json.dumps({**extra, "hosts": self.hosts, "since": self.since,
                           "at": time.time()}).encode()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with contextlib.suppress(coordination.ToozError):
            self._coord.leave_group(self._gid).get()
        self._coord.stop()

    def refresh(self) -> None:
        """Read the members and the registered hosts; take this member's share."""
        members = sorted(_decode(m) for m in self._coord.get_members(self._gid).get())
        if self.member not in members:  # our lease ran out while we were stalled
            LOG.warning("%s is not in group %s any more: joining again", self.member,
                        self.group)
            self._join()
            members = sorted({*members, self.member})
        hosts = held_by(self.member, members, [h.uri for h in self.registry.list()])
        with self._lock:
            before = self.hosts
            self.members, self.hosts = members, hosts
        if hosts != before:
            gained, lost = sorted(set(hosts) - set(before)), sorted(set(before) - set(hosts))
            LOG.info("%s holds %d host(s) of %d member(s): +%d -%d", self.member, len(hosts),
                     len(members), len(gained), len(lost))
            if self.on_change is not None:
                self.on_change(gained, lost)
        self._coord.update_capabilities(self._gid, self._caps()).get()

    def _loop(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                self.refresh()
            except (coordination.ToozError, OnboardError) as exc:
                LOG.warning("coordination: %s", exc)

    @contextmanager
    def lock(self, name: str, blocking: bool = True) -> Iterator[bool]:
        """A tooz lock (e.g. ``apply/<plan>/<vm>``): True inside when it was taken."""
        lock = self._coord.get_lock(f"os-onboard/{name}".encode())
        taken = lock.acquire(blocking=blocking)
        try:
            yield bool(taken)
        finally:
            if taken:
                lock.release()

    def workers(self) -> dict[str, Any]:
        return read_workers(self._coord, self.group, self.registry)


def read_workers(coord: Any, group: str, registry: HostRegistry) -> dict[str, Any]:
    """The live members, what each says it holds, and what the ring gives it."""
    gid = group.encode()
    try:
        members = sorted(_decode(m) for m in coord.get_members(gid).get())
    except coordination.GroupNotCreated:
        members = []
    hosts = [h.uri for h in registry.list()]
    ring = assign(members, hosts)
    out = []
    for member in members:
        try:
            caps = json.loads(coord.get_member_capabilities(gid, member.encode()).get()
                              or b"{}")
        except (coordination.ToozError, ValueError):
            caps = {}
        out.append({"member": member, "held": caps.get("hosts", []),
                    "ring": sorted(h for h, m in ring.items() if m == member),
                    "since": caps.get("since"), "reported_at": caps.get("at"),
                    "last_pass": caps.get("last_pass")})
    unheld = sorted(set(hosts) - {h for m in out for h in m["held"]})
    return {"group": group, "members": out, "hosts": len(hosts), "unheld": unheld}


def workers_of(url: str, group: str, store: StateStore, lease_ttl: int = 10
               ) -> dict[str, Any]:
    """:func:`read_workers` from outside the group (``os-onboard workers``)."""
    coord = coordination.get_coordinator(backend_url(url, lease_ttl),
                                         f"os-onboard-cli-{time.time_ns()}".encode())
    coord.start()
    try:
        return read_workers(coord, group, HostRegistry(store))
    finally:
        coord.stop()


def start_coordination(svc: Any, conf: Any, member: str,
                       watcher: Any = None) -> list[Any]:
    """For :class:`os_onboard.serve.server.Server`: join and share the hosts;
    ``watcher`` (``set_hosts``, ``last``, ``stop``) follows this member's share."""
    membership = Membership(conf.coordination.backend_url, member, conf.coordination.group,
                            svc.hosts, conf.coordination.heartbeat,
                            conf.coordination.lease_ttl)
    if watcher is not None:
        membership.on_change = lambda _gained, _lost: watcher.set_hosts(membership.hosts)
        membership.report = lambda: {"last_pass": watcher.last or None}
    membership.start()
    svc.workers = membership.workers
    return [membership] if watcher is None else [membership, watcher]
