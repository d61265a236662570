"""``os-onboard workers``: the live ``serve`` replicas and the hosts each holds."""

from __future__ import annotations

from typing import Any

from cliff.lister import Lister

from os_onboard.cli.remote import add_url_option, api
from os_onboard.exceptions import ConfigError
from os_onboard.state import StateStore


class Workers(Lister):
    """Show the replicas in the coordination group and the managed hosts each holds."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("--config", metavar="FILE", action="append", default=[],
                            help="the serve config file (its state_url and [coordination]); "
                                 "repeatable, a later file overrides an earlier one")
        parser.add_argument("--backend-url", metavar="URL",
                            help="tooz backend, e.g. etcd3+http://127.0.0.1:2379 "
                                 "(default: the config's [coordination] backend_url)")
        parser.add_argument("--group", help="tooz group (default: the config's, os-onboard)")
        add_url_option(parser)
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        from os_onboard.coordination.service import workers_of
        from os_onboard.serve.config import new_conf

        remote = api(self.app, parsed_args)
        if remote is not None:  # the group of that server's replicas
            return _rows(remote.call("GET", "/v1/workers"))
        conf = new_conf(parsed_args.config)
        url = parsed_args.backend_url or conf.coordination.backend_url
        if not url:
            raise ConfigError("no coordination backend: --backend-url or --config")
        state_url = getattr(self.app.options, "state_url", None) or conf.state_url or None
        return _rows(workers_of(url, parsed_args.group or conf.coordination.group,
                                StateStore(state_url), conf.coordination.lease_ttl))


def _rows(view: dict[str, Any]) -> tuple[Any, Any]:
    rows = [(m["member"], len(m["held"]), " ".join(m["held"]))
            for m in view.get("members", [])]
    if view.get("unheld"):
        rows.append(("(nobody)", len(view["unheld"]), " ".join(view["unheld"])))
    return ("Member", "Hosts", "Held"), rows
