"""python-openstackclient plugin: the same commands as ``openstack onboard …``.

os-onboard talks to hypervisors, not to a new OpenStack API, so the plugin
needs no client object; it exists so operators find the commands where they
already work.
"""

from __future__ import annotations

from typing import Any

API_NAME = "onboard"
API_VERSION_OPTION = "os_onboard_api_version"
API_VERSIONS = {"1": "os_onboard.cli.osc_plugin"}
DEFAULT_API_VERSION = "1"


def make_client(instance: Any) -> None:
    return None


def build_option_parser(parser: Any) -> Any:
    return parser
