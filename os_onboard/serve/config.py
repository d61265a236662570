"""The service's configuration: an oslo.config file, as OpenStack services have.

::

    [DEFAULT]
    state_url = mysql+pymysql://onboard:...@127.0.0.1/onboard   # or sqlite:///...
    [api]
    bind = 127.0.0.1:8799
    auth_strategy = keystone          # 'keystone' only outside unit tests
    [coordination]
    backend_url = etcd3+http://127.0.0.1:2379
    member_id = host-1                # default: host name and pid
    [openstack]                       # plan and apply jobs
    cloud = lab-admin                 # clouds.yaml
    nova_python = /opt/nova/bin/python
    nova_config = /etc/nova/nova.conf
    [keystone_authtoken]              # keystonemiddleware's own options
    ...
    [oslo_policy]                     # oslo.policy's own options

Secrets (the Keystone service password, a database password in the URL)
live in this file, which should be 0600; they are never logged: the options
holding them are ``secret=True``.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from oslo_config import cfg

DEFAULT_OPTS = [
    cfg.StrOpt("state_url", secret=True,
               help="SQLAlchemy URL of the state store (MariaDB for several replicas)"),
]
API_OPTS = [
    cfg.StrOpt("bind", default="127.0.0.1:8799", help="HOST:PORT to listen on"),
    cfg.StrOpt("auth_strategy", default="keystone", choices=["keystone", "noauth"],
               help="'noauth' trusts X-Roles headers: for tests on loopback only"),
    cfg.IntOpt("threads", default=8, help="request threads of the worker"),
    cfg.IntOpt("max_limit", default=1000, help="largest page a list returns"),
    cfg.IntOpt("job_workers", default=2, help="jobs run at once by this replica"),
    cfg.FloatOpt("job_stale_after", default=20.0,
                 help="seconds without a heartbeat after which another replica "
                      "takes a running job over"),
]
COORD_OPTS = [
    cfg.StrOpt("backend_url", default="",
               help="tooz backend, e.g. etcd3+http://127.0.0.1:2379 ('' = one replica)"),
    cfg.StrOpt("member_id", default="", help="this replica's name in the group"),
    cfg.StrOpt("group", default="os-onboard", help="tooz group of the replicas"),
    cfg.FloatOpt("heartbeat", default=2.0, help="seconds between heartbeats"),
    cfg.IntOpt("lease_ttl", default=10,
               help="seconds after which a silent member is gone (etcd lease)"),
]

WATCH_OPTS = [
    cfg.BoolOpt("enabled", default=False,
                help="watch this replica's share of the hosts (report-only reconcile "
                     "passes; needs [coordination] backend_url)"),
    cfg.FloatOpt("interval", default=60.0, help="full pass every this many seconds"),
]
OPENSTACK_OPTS = [
    cfg.StrOpt("cloud", default="", help="clouds.yaml cloud the service plans and applies "
                                        "with ('' = $OS_CLOUD)"),
    cfg.StrOpt("nova_python", default="", help="Python of Nova's environment (the "
                                              "Nova-side helper of apply)"),
    cfg.ListOpt("nova_config", default=[], help="Nova configuration files"),
    cfg.StrOpt("instances_path", default="", help="nova-compute's instances_path on the "
                                                 "hosts"),
    cfg.ListOpt("libvirt_config_dirs", default=[],
                help="the hosts' libvirt config dirs (rename map of the migrate hook)"),
]


def new_conf(config_files: list[str] | None = None, overrides: dict[str, Any] | None = None
             ) -> cfg.ConfigOpts:
    """A ConfigOpts with our options registered, read from ``config_files``."""
    conf = cfg.ConfigOpts()
    conf.register_opts(DEFAULT_OPTS)
    conf.register_opts(API_OPTS, group="api")
    conf.register_opts(COORD_OPTS, group="coordination")
    conf.register_opts(OPENSTACK_OPTS, group="openstack")
    conf.register_opts(WATCH_OPTS, group="watch")
    conf(args=[], project="os-onboard", default_config_files=config_files or [],
         default_config_dirs=[], validate_default_values=True)
    for key, value in (overrides or {}).items():
        group, _, name = key.rpartition(".")
        conf.set_override(name, value, group=group or None)
    return conf


def member_id(conf: cfg.ConfigOpts) -> str:
    return conf.coordination.member_id or f"{socket.gethostname()}-{os.getpid()}"


def list_opts() -> list[tuple[str | None, list[Any]]]:
    """For oslo-config-generator."""
    return [(None, DEFAULT_OPTS), ("api", API_OPTS), ("coordination", COORD_OPTS),
            ("openstack", OPENSTACK_OPTS), ("watch", WATCH_OPTS)]
