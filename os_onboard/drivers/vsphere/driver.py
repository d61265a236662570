"""The vSphere driver: one vCenter (or ESXi) endpoint, read-only, in bulk.

``discover`` logs in once and reads every VM, host, cluster, resource pool,
folder, network and datastore with one PropertyCollector over one
ContainerView (``RetrievePropertiesEx``, paged): round trips grow with the
number of pages, not of VMs. The whole endpoint becomes one HostInventory
(``Host.kind`` vsphere); each VM's ESXi host is in ``Vm.location``.

``watch`` follows changes with ``WaitForUpdatesEx`` on its own
PropertyCollector, waking every few seconds to honour ``stop``, and
reconnects by itself (then yields RECONNECTED).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from os_onboard.drivers.base import (
    ChangeEvent,
    ChangeFeed,
    ChangeKind,
    HypervisorDriver,
    Inventory,
)
from os_onboard.drivers.vsphere import api
from os_onboard.drivers.vsphere.adoption import VsphereAdoption
from os_onboard.drivers.vsphere.build import build_inventory
from os_onboard.drivers.vsphere.changes import WATCH_PATHS, ChangeTracker
from os_onboard.drivers.vsphere.endpoint import SCHEME, find_password, parse_uri
from os_onboard.drivers.vsphere.properties import PATHS
from os_onboard.exceptions import HostUnreachable
from os_onboard.inventory.models import HostInventory

LOG = logging.getLogger(__name__)


#: seconds per HTTP request; a page of VMs must come back within it
REQUEST_TIMEOUT = 120.0


class VsphereInventory(Inventory):
    """Reads a vCenter or ESXi endpoint in bulk."""

    request_timeout = REQUEST_TIMEOUT
    #: objects per RetrievePropertiesEx page
    page_size = 1000

    def discover(self) -> HostInventory:
        started = time.monotonic()
        endpoint = parse_uri(self.uri)
        session = api.connect(endpoint, find_password(endpoint), self.request_timeout)
        paths = dict(PATHS)
        vm_paths = {"VirtualMachine": paths.pop("VirtualMachine")}
        if not self.options.storage:
            paths.pop("Datastore")
        try:
            about = {**session.about(), "host": endpoint.host}
            # Two reads, not one: first everything but the VMs (hosts, port groups,
            # datastores, LUNs, folders: a few pages at most), which every VM is
            # joined with, then the VMs, built page by page as they arrive so
            # that one page is in memory at a time, not the endpoint. A VM
            # created between the reads on a host added between them has no
            # host name, as it would had it come in the next discovery.
            catalog = list(session.retrieve(paths, self.page_size))
            # closing: should the build stop early, the stream (and the next page's
            # request on its helper thread) ends before the session is closed
            with contextlib.closing(session.retrieve(vm_paths, self.page_size)) as vms:
                result = build_inventory(self.uri, about, catalog, vms)
        finally:
            session.close()
        if not self.options.storage:
            result.block_devices = []
        result.duration_ms = int((time.monotonic() - started) * 1000)
        return result



class VsphereChangeFeed(ChangeFeed):
    """``WaitForUpdatesEx`` on its own PropertyCollector; reconnects by itself."""

    request_timeout = REQUEST_TIMEOUT
    #: one WaitForUpdatesEx answer carries a task's changes together
    settle = 0.2
    #: WaitForUpdatesEx wait; also how quickly watch() notices ``stop``
    wait_seconds = 1
    #: longest pause between reconnect attempts of watch()
    max_backoff = 30.0

    def watch(self, stop: threading.Event) -> Iterator[ChangeEvent]:
        endpoint = parse_uri(self.uri)
        password = find_password(endpoint)
        # The first connect fails loudly; later ones are retried with backoff.
        session: api.Session | None = api.connect(endpoint, password,
                                                  self.wait_seconds + self.request_timeout)
        backoff = 1.0
        while not stop.is_set():
            if session is None:
                try:
                    session = api.connect(endpoint, password,
                                          self.wait_seconds + self.request_timeout)
                except HostUnreachable as exc:
                    LOG.warning("watch %s: %s; retrying in %.0f s", endpoint.display, exc,
                                backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                backoff = 1.0
                yield ChangeEvent(source=self.uri, kind=ChangeKind.RECONNECTED,
                                  detail="vSphere session re-established")
            tracker = ChangeTracker(self.uri)
            try:
                for updates in session.updates(WATCH_PATHS, self.wait_seconds):
                    yield from tracker.feed(updates)
                    if stop.is_set():
                        break
            except HostUnreachable as exc:
                LOG.warning("watch %s: connection lost (%s); reconnecting", endpoint.display,
                            exc)
            finally:
                session.close()
                session = None


class VsphereDriver(HypervisorDriver):
    """vCenter or ESXi endpoints given ``vsphere://USER@HOST[:PORT]/``."""

    name = "vsphere"
    inventory = VsphereInventory
    change_feed = VsphereChangeFeed
    adoption = VsphereAdoption()

    @classmethod
    def handles(cls, uri: str) -> bool:
        return urlsplit(uri).scheme == SCHEME
