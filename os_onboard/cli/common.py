"""Pieces shared by the commands: the state store, the view option, help text."""

from __future__ import annotations

import argparse
from typing import Any

from os_onboard.cli.views import VIEWS
from os_onboard.state import StateStore


def state_store(app: Any) -> StateStore:
    """The state store named by ``--state-url`` (absent under ``openstack``)."""
    return StateStore(getattr(app.options, "state_url", None))


def add_view_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--by", choices=sorted(VIEWS), default="vm",
        help="what one output row is: a VM (default), a host, a storage volume with the "
             "VMs using it, a problem found during discovery, or a conflict (an identifier "
             "such as a MAC or UUID held by more than one VM)",
    )


def with_epilog(parser: argparse.ArgumentParser, epilog: str) -> argparse.ArgumentParser:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = epilog
    return parser
