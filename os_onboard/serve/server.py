"""gunicorn, run in-process: one ``gthread`` worker per replica.

One worker process holds the app, the job runner and (with a coordination
backend) this replica's group membership: a replica is one member, and
more capacity is more replicas, each a member that takes its share of the
hosts. gunicorn's master restarts the worker if it dies; a worker whose
master is gone (kill -9) exits by itself, and its member then expires.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from gunicorn.app.base import BaseApplication

from os_onboard.exceptions import ConfigError
from os_onboard.serve.adoption import AdoptionSettings, run_apply, run_plan, run_unmanage
from os_onboard.serve.api import Service
from os_onboard.serve.app import make_app
from os_onboard.serve.config import member_id
from os_onboard.serve.jobs import KINDS, JobRunner, Kind
from os_onboard.serve.web import RequestIdFilter
from os_onboard.state import StateStore

LOG = logging.getLogger(__name__)
LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s [%(request_id)s] %(message)s"


def check_bind(bind: str, auth_strategy: str) -> None:
    """'noauth' trusts headers any client can send: loopback only."""
    host = bind.rsplit(":", 1)[0].strip("[]")
    if auth_strategy == "keystone":
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(f"auth_strategy=noauth may only bind to loopback, not {bind}")


def setup_logging(debug: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("alembic", "keystonemiddleware", "urllib3", "stevedore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, conf: Any, bind: str, background: Any = None) -> None:
        self.conf, self.bind = conf, bind
        #: (svc, conf, member) -> list of objects with stop(): started in the worker
        self.background = background
        check_bind(bind, conf.api.auth_strategy)
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", [self.bind])
        self.cfg.set("workers", 1)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", self.conf.api.threads)
        self.cfg.set("timeout", 60)
        self.cfg.set("graceful_timeout", 10)
        self.cfg.set("proc_name", "os-onboard-serve")
        self.cfg.set("worker_exit", _stop_background)

    def load(self) -> Any:
        setup_logging()
        member = member_id(self.conf)
        store = StateStore(self.conf.state_url or None)
        svc = Service(store, max_limit=self.conf.api.max_limit)
        started = []
        if self.background is not None:
            started += self.background(svc, self.conf, member)
        locks = [t.lock for t in started if hasattr(t, "lock")]
        kinds = job_kinds(self.conf, locks[0] if locks else None)
        started.insert(0, JobRunner(store, member, self.conf.api.job_workers,
                                    self.conf.api.job_stale_after, kinds=kinds).start())
        _BACKGROUND[:] = started
        LOG.info("serving on %s as %s (state store %s)", self.bind, member,
                 store.url.split("@")[-1])
        return make_app(svc, self.conf)


_BACKGROUND: list[Any] = []


def _cloud(conf: Any) -> Any:
    import os

    from os_onboard.cloud.openstack import OpenStackCloud
    return OpenStackCloud(conf.openstack.cloud or os.environ.get("OS_CLOUD"))


def watcher_for(svc: Any, conf: Any) -> Any:
    """The replica's watcher when [watch] enabled, else None."""
    if not conf.watch.enabled:
        return None
    from os_onboard.serve.watcher import HostWatcher
    return HostWatcher(svc.store, lambda: _cloud(conf), conf.watch.interval)


def job_kinds(conf: Any, lock: Any = None) -> dict[str, Kind]:
    """discover, and plan/apply/unmanage/drift with the [openstack] settings."""
    from os_onboard.serve.watcher import run_drift

    settings = AdoptionSettings(
        cloud=lambda: _cloud(conf), nova_python=conf.openstack.nova_python or None,
        nova_config=list(conf.openstack.nova_config),
        host_options={"instances_path": conf.openstack.instances_path or None,
                      "libvirt_config_dirs": list(conf.openstack.libvirt_config_dirs)},
        lock=lock)
    return {**KINDS,
            "plan": lambda store, ctx: run_plan(store, ctx, settings),
            "apply": lambda store, ctx: run_apply(store, ctx, settings),
            "unmanage": lambda store, ctx: run_unmanage(store, ctx, settings),
            "drift": lambda store, ctx: run_drift(store, ctx, lambda: _cloud(conf))}


def _stop_background(_server: Any, _worker: Any) -> None:
    for thing in reversed(_BACKGROUND):
        try:
            thing.stop()
        except Exception:
            LOG.exception("stopping %s", thing)
