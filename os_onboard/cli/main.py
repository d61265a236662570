"""The ``os-onboard`` command (a cliff application)."""

from __future__ import annotations

import sys
from typing import Any

from cliff.app import App
from cliff.commandmanager import CommandManager

from os_onboard import __version__
from os_onboard.state import default_url

DESCRIPTION = """\
Bring virtual machines that are already running under OpenStack management
without restarting or changing them.

The work is a pipeline: 'discover' reads the hypervisors over read-only
connections and saves an inventory snapshot; later stages plan and apply the
OpenStack records for it. Every command accepts -f table|json|yaml|csv|value.
"""


class OnboardApp(App):
    def __init__(self) -> None:
        commands = CommandManager("os_onboard.cli")
        super().__init__(
            description=DESCRIPTION,
            version=__version__,
            command_manager=commands,
            deferred_help=True,
        )

    def build_option_parser(self, description: str, version: str,
                            argparse_kwargs: dict[str, Any] | None = None) -> Any:
        parser = super().build_option_parser(description, version, argparse_kwargs)
        parser.add_argument(
            "--state-url", default=None, metavar="URL",
            help="SQLAlchemy URL of os-onboard's state store "
                 f"(env OS_ONBOARD_STATE_URL; default {default_url()})",
        )
        parser.add_argument(
            "--os-cloud", dest="cloud", default=None, metavar="NAME",
            help="cloud in clouds.yaml for plan/apply/unmanage (env OS_CLOUD)",
        )
        return parser


def main(argv: list[str] | None = None) -> int:
    return OnboardApp().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
