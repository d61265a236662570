"""Count the HTTP requests of this process and its children (benchmark only).

Loaded through PYTHONPATH by bench/adopt/run.py for each mode's process and,
by inheritance, for the Nova-side helpers it runs (Nova's own Python). Every
OpenStack client here (openstacksdk, Nova's clients) sends through
``keystoneauth1.session.Session.request``; each call is one HTTP request
(token requests included), counted by service (the endpoint's port). At
exit the counts are appended, one JSON line per process, to
$OS_ONBOARD_BENCH_REQLOG.
"""

import atexit
import json
import os
import sys
import threading

_LOG = os.environ.get("OS_ONBOARD_BENCH_REQLOG")
_PORTS = {"5000": "keystone", "8774": "nova", "9696": "neutron", "8778": "placement",
          "9292": "glance", "8776": "cinder"}
_TYPES = {"identity": "keystone", "compute": "nova", "network": "neutron",
          "placement": "placement", "image": "glance", "block-storage": "cinder",
          "volumev3": "cinder"}

if _LOG:
    try:
        from keystoneauth1 import session as _session
    except ImportError:  # not an OpenStack interpreter
        _session = None
    if _session is not None:
        _counts: dict = {}
        _lock = threading.Lock()
        _orig = _session.Session.request

        def _request(self, url, method, *args, **kwargs):
            service = "other"
            try:
                if "://" in url:
                    hostport = url.split("://", 1)[1].split("/", 1)[0]
                    service = _PORTS.get(hostport.rsplit(":", 1)[-1], hostport)
                else:  # relative: an adapter's endpoint
                    kind = str(kwargs.get("endpoint_filter", {}).get("service_type"))
                    service = _TYPES.get(kind, kind)
            except Exception:  # never break the request over a count
                pass
            with _lock:
                key = f"{service} {method.upper()}"
                _counts[key] = _counts.get(key, 0) + 1
            return _orig(self, url, method, *args, **kwargs)

        _session.Session.request = _request

        def _dump():
            if not _counts:
                return
            line = json.dumps({"pid": os.getpid(), "argv": sys.argv[:2], "counts": _counts})
            fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)

        atexit.register(_dump)
