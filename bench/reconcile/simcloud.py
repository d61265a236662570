"""A simulated OpenStack API for the reconcile benchmark: what a pass reads, over HTTP.

    python simcloud.py --hosts 1000 --vms-per-host 10 --hostname vm

prints ``PORT <n>`` once it listens on 127.0.0.1, then serves, with the
records of :mod:`estate`:

* Keystone v3: version discovery, ``POST /identity/v3/auth/tokens`` (any
  password; a catalog of the services below);
* Nova 2.1-2.96: ``/servers/detail`` paged as nova-api pages (``max_limit``
  1,000: a ``servers_links`` next link with a marker), ``/servers/{id}``,
  ``/os-hypervisors/detail``;
* Neutron: ``/v2.0/ports`` with filters, unpaged unless ``limit`` is given
  (neutron-server's defaults), or paged by ``limit``/``marker``;
* Cinder v3 up to 3.71: ``/volumes/detail`` paged as cinder-api pages
  (``osapi_max_limit`` 1,000: a ``volumes_links`` next link);
* ``GET /_stats``: requests and response bytes per route since the previous
  call (for the benchmark, which asks it directly, not through the proxy).

Links name the ``Host`` the client used, so the server works the same behind
the delay proxy. Response bodies are serialized once and cached: the
simulator's own CPU per request is small next to the client's.
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import estate

TOKEN = "gAAAAABbenchtoken"
NOVA_MAX, CINDER_MAX = "2.96", "3.71"


class Sim:
    def __init__(self, records: estate.Records, nova_limit: int, cinder_limit: int) -> None:
        self.records = records
        self.nova_limit, self.cinder_limit = nova_limit, cinder_limit
        self.server_by_id = {s["id"]: s for s in records.servers}
        self.cache: dict[tuple, bytes] = {}
        self.lock = threading.Lock()
        self.stats: collections.Counter = collections.Counter()
        self.bytes: collections.Counter = collections.Counter()


def _versions(base: str, vid: str, version: str = "", min_version: str = "",
              path: str = "") -> dict:
    return {"id": vid, "status": "CURRENT", "version": version, "min_version": min_version,
            "updated": "2025-01-01T00:00:00Z",
            "links": [{"rel": "self", "href": f"{base}/{path or vid}/"}]}


def _token(base: str) -> dict:
    def svc(kind: str, name: str, url: str) -> dict:
        return {"type": kind, "name": name, "id": name, "endpoints": [
            {"id": f"{name}-{i}", "interface": i, "region": "RegionOne",
             "region_id": "RegionOne", "url": url} for i in ("public", "internal", "admin")]}
    return {"token": {
        "methods": ["password"], "expires_at": "2099-01-01T00:00:00.000000Z",
        "issued_at": "2026-01-01T00:00:00.000000Z", "audit_ids": ["bench"],
        "user": {"id": estate.USER, "name": "admin", "password_expires_at": None,
                 "domain": {"id": "default", "name": "Default"}},
        "project": {"id": estate.PROJECT, "name": "admin",
                    "domain": {"id": "default", "name": "Default"}},
        "is_domain": False,
        "roles": [{"id": "r-admin", "name": "admin"}, {"id": "r-member", "name": "member"}],
        "catalog": [svc("identity", "keystone", f"{base}/identity"),
                    svc("compute", "nova", f"{base}/compute/v2.1"),
                    svc("network", "neutron", f"{base}/network"),
                    svc("block-storage", "cinderv3", f"{base}/volume/v3"),
                    svc("volumev3", "cinderv3-legacy", f"{base}/volume/v3")]}}


def _page(items: list[dict], key: str, limit: int, marker: str | None, base_url: str,
          query: dict[str, list[str]]) -> dict:
    start = 0
    if marker:
        ids = [i["id"] for i in items]
        start = ids.index(marker) + 1 if marker in ids else len(items)
    page = items[start:start + limit]
    body: dict = {key: page}
    if len(page) == limit:  # as nova-api and cinder-api: a full page has a next link
        q = {k: v[-1] for k, v in query.items() if k != "marker"}
        q["marker"] = page[-1]["id"]
        body[f"{key}_links"] = [{"rel": "next", "href": f"{base_url}?{urlencode(q)}"}]
    return body


def handler(sim: Sim) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # One write per response (headers and body), no Nagle: otherwise a small
        # body waits for the client's delayed ACK (40 ms), which real API servers
        # do not make their clients pay.
        wbufsize = -1
        disable_nagle_algorithm = True

        def log_message(self, *_: object) -> None:
            pass

        def _send(self, status: int, body: bytes, route: str,
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
            with sim.lock:
                sim.stats[route] += 1
                sim.bytes[route] += len(body)

        def _json(self, obj: dict, route: str, status: int = 200,
                  headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(obj).encode(), route, headers)

        def _cached(self, key: tuple, route: str, make: object) -> None:
            with sim.lock:
                body = sim.cache.get(key)
            if body is None:
                body = json.dumps(make()).encode()  # type: ignore[operator]
                with sim.lock:
                    sim.cache[key] = body
            self._send(200, body, route)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            base = f"http://{self.headers['Host']}"
            if urlsplit(self.path).path.rstrip("/") == "/identity/v3/auth/tokens":
                self._json(_token(base), "keystone token", 201, {"X-Subject-Token": TOKEN})
            else:
                self._json({"itemNotFound": {"code": 404, "message": "no such path"}},
                           "404", 404)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path, query = parts.path.rstrip("/") or "/", parse_qs(parts.query)
            base = f"http://{self.headers['Host']}"
            rec = sim.records
            if path == "/_stats":
                with sim.lock:
                    out = {"requests": dict(sim.stats), "bytes": dict(sim.bytes)}
                    sim.stats.clear()
                    sim.bytes.clear()
                return self._json(out, "_stats")
            if path == "/identity":
                return self._json({"versions": {"values": [{
                    **_versions(f"{base}/identity", "v3.14", path="v3"), "status": "stable",
                    "media-types": [{"base": "application/json",
                                     "type": "application/vnd.openstack.identity-v3+json"}],
                }]}}, "keystone discovery", 300)
            if path == "/identity/v3":
                return self._json({"version": {**_versions(f"{base}/identity", "v3.14", path="v3"),
                                               "status": "stable"}}, "keystone discovery")
            if path == "/compute":
                return self._json({"versions": [_versions(f"{base}/compute", "v2.1", NOVA_MAX,
                                                          "2.1")]}, "nova discovery")
            if path == "/compute/v2.1":
                return self._json({"version": _versions(f"{base}/compute", "v2.1", NOVA_MAX,
                                                        "2.1")}, "nova discovery")
            if path == "/compute/v2.1/servers/detail":
                limit = min(int(query.get("limit", [sim.nova_limit])[-1]), sim.nova_limit)
                marker = query.get("marker", [None])[-1]
                return self._cached(
                    ("servers", base, parts.query), "nova GET /servers/detail",
                    lambda: _page(rec.servers, "servers", limit, marker,
                                  f"{base}/compute/v2.1/servers/detail", query))
            if path.startswith("/compute/v2.1/servers/"):
                server = sim.server_by_id.get(path.rsplit("/", 1)[1])
                if server is None:
                    return self._json({"itemNotFound": {"code": 404, "message":
                                                        "Instance could not be found."}},
                                      "nova GET /servers/{id}", 404)
                return self._json({"server": server}, "nova GET /servers/{id}")
            if path == "/compute/v2.1/os-hypervisors/detail":
                return self._json({"hypervisors": rec.hypervisors},
                                  "nova GET /os-hypervisors/detail")
            if path == "/network":
                return self._json({"versions": [_versions(f"{base}/network", "v2.0")]},
                                  "neutron discovery")
            if path == "/network/v2.0/ports":
                return self._ports(base, query, parts.query)
            if path == "/volume":
                return self._json({"versions": [_versions(f"{base}/volume", "v3.0", CINDER_MAX,
                                                          "3.0", "v3")]}, "cinder discovery")
            if path == "/volume/v3":
                return self._json({"version": _versions(f"{base}/volume", "v3.0", CINDER_MAX,
                                                        "3.0", "v3")}, "cinder discovery")
            if path == "/volume/v3/volumes/detail":
                limit = min(int(query.get("limit", [sim.cinder_limit])[-1]), sim.cinder_limit)
                marker = query.get("marker", [None])[-1]
                return self._cached(
                    ("volumes", base, parts.query), "cinder GET /volumes/detail",
                    lambda: _page(rec.volumes, "volumes", limit, marker,
                                  f"{base}/volume/v3/volumes/detail", query))
            return self._json({"itemNotFound": {"code": 404, "message": f"no {path}"}},
                              "404", 404)

        def _ports(self, base: str, query: dict[str, list[str]], raw: str) -> None:
            filters = {k: v for k, v in query.items()
                       if k in ("device_id", "mac_address", "network_id", "id")}
            if filters:
                found = [p for p in sim.records.ports
                         if all(p.get(k) in v for k, v in filters.items())]
                return self._json({"ports": found}, "neutron GET /ports?filter")
            if "limit" not in query:  # neutron-server's default: no page size
                return self._cached(("ports", base, raw), "neutron GET /ports",
                                    lambda: {"ports": sim.records.ports})
            limit, marker = int(query["limit"][-1]), query.get("marker", [None])[-1]
            return self._cached(("ports", base, raw), "neutron GET /ports",
                                lambda: _page(sim.records.ports, "ports", limit, marker,
                                              f"{base}/network/v2.0/ports", query))

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--vms-per-host", type=int, default=10)
    parser.add_argument("--hostname", required=True,
                        help="the hostname libvirtd reports for the test-driver hosts")
    parser.add_argument("--drift-every", type=int, default=100)
    parser.add_argument("--nova-max-limit", type=int, default=1000)
    parser.add_argument("--cinder-max-limit", type=int, default=1000)
    args = parser.parse_args(argv)
    records = estate.build(args.hosts, args.vms_per_host, args.hostname, args.drift_every)
    sim = Sim(records, args.nova_max_limit, args.cinder_max_limit)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(sim))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
