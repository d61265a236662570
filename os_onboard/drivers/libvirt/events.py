"""The libvirt change feed: domain lifecycle and device events on a read-only connection.

libvirt pushes events (no polling): lifecycle (started, suspended, stopped,
…, each with a detail such as "migrated") and device added/removed. A
daemon thread runs libvirt's default event loop (api.start_event_loop); the
callbacks only put events on a queue that :func:`watch` drains, so slow
consumers never block libvirt. Keepalive closes a connection whose peer went
silent; :func:`watch` then reconnects with backoff and yields RECONNECTED,
because events may have been missed meanwhile.

A live migration is a host change on both ends: ``started/migrated`` (and
``resumed/migrated``) on the destination, ``stopped/migrated`` on the source.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

from os_onboard.drivers.base import ChangeEvent, ChangeKind
from os_onboard.drivers.libvirt import api
from os_onboard.exceptions import HostUnreachable

LOG = logging.getLogger(__name__)

#: (event, detail) pairs that mean "the VM moved to or from this host".
_MIGRATION = {("started", "migrated"): "arrived", ("resumed", "migrated"): "arrived",
              ("stopped", "migrated"): "left"}
_CLOSED = object()  # queue marker: the connection was closed under us


def lifecycle_event(uri: str, name: str, uuid: str, event: int, detail: int) -> ChangeEvent:
    """Map one libvirt lifecycle callback to a ChangeEvent (pure)."""
    event_name = api.LIFECYCLE_EVENTS.get(event, f"event-{event}")
    detail_name = api.LIFECYCLE_DETAILS.get(event_name, {}).get(detail, f"detail-{detail}")
    text = f"{event_name}/{detail_name}"
    direction = _MIGRATION.get((event_name, detail_name))
    data: dict[str, Any] = {"event": event_name, "detail": detail_name}
    if direction:
        data["migration"] = direction  # "arrived" here or "left" this host
        return ChangeEvent(source=uri, kind=ChangeKind.HOST_CHANGED, vm_uuid=uuid.lower(),
                           vm_name=name, detail=text, data=data)
    return ChangeEvent(source=uri, kind=ChangeKind.LIFECYCLE, vm_uuid=uuid.lower(),
                       vm_name=name, detail=text, data=data)


def device_event(uri: str, name: str, uuid: str, added: bool, alias: str) -> ChangeEvent:
    return ChangeEvent(source=uri, kind=ChangeKind.DEVICE, vm_uuid=uuid.lower(), vm_name=name,
                       detail=f"device {'added' if added else 'removed'}: {alias}",
                       data={"alias": alias, "added": added})


def watch(uri: str, stop: threading.Event, poll: float = 0.5,
          max_backoff: float = 30.0) -> Iterator[ChangeEvent]:
    """Yield the host's changes until ``stop`` is set (checked every ``poll`` seconds).

    :raises HostUnreachable: the first connection cannot be opened.
    """
    events: queue.Queue[Any] = queue.Queue()

    def connect() -> api.EventConnection:
        return api.EventConnection(
            uri,
            on_lifecycle=lambda *a: events.put(lifecycle_event(uri, *a)),
            on_device=lambda *a: events.put(device_event(uri, *a)),
            on_close=lambda reason: events.put((_CLOSED, reason)))

    conn: api.EventConnection | None = connect()
    backoff = 1.0
    try:
        while not stop.is_set():
            if conn is None:
                try:
                    conn = connect()
                except HostUnreachable as exc:
                    LOG.warning("watch %s: %s; retrying in %.0f s", uri, exc, backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, max_backoff)
                    continue
                backoff = 1.0
                yield ChangeEvent(source=uri, kind=ChangeKind.RECONNECTED,
                                  detail="libvirt connection re-established")
            try:
                item = events.get(timeout=poll)
            except queue.Empty:
                continue
            if isinstance(item, tuple) and item[0] is _CLOSED:
                LOG.warning("watch %s: connection closed (reason %s); reconnecting", uri,
                            item[1])
                conn.close()
                conn = None
                continue
            yield item
    finally:
        if conn is not None:
            conn.close()
