"""``os-onboard serve``: the REST API (see os_onboard/serve and docs/serve.md)."""

from __future__ import annotations

from typing import Any

from cliff.command import Command

from os_onboard.exceptions import ConfigError


class Serve(Command):
    """Serve the REST API (/v1) with Keystone auth; runs jobs and, with a
    coordination backend, this replica's share of the managed hosts."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("--config", required=True, metavar="FILE", action="append",
                            help="oslo.config file ([DEFAULT] state_url, [api], "
                                 "[coordination], [keystone_authtoken], [oslo_policy]); "
                                 "repeat it: a later file overrides an earlier one")
        parser.add_argument("--bind", metavar="HOST:PORT",
                            help="listen here (default: [api] bind)")
        return parser

    def take_action(self, parsed_args: Any) -> int:
        from pathlib import Path

        from os_onboard.serve.config import new_conf
        from os_onboard.serve.server import Server

        for path in parsed_args.config:
            if not Path(path).is_file():
                raise ConfigError(f"no config file {path}")
        conf = new_conf(parsed_args.config)
        if not conf.state_url and getattr(self.app.options, "state_url", None):
            conf.set_override("state_url", self.app.options.state_url)
        background = None
        if conf.coordination.backend_url:
            from os_onboard.coordination.service import start_coordination
            from os_onboard.serve.server import watcher_for

            def background(svc: Any, conf: Any, member: str) -> list[Any]:
                return start_coordination(svc, conf, member, watcher_for(svc, conf))
        elif conf.watch.enabled:
            raise ConfigError("[watch] enabled needs [coordination] backend_url (the share "
                              "of the hosts to watch)")
        Server(conf, parsed_args.bind or conf.api.bind, background).run()
        return 0
