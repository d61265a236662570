"""What api.py hands out: managed objects and their changes as plain records.

Kept apart from api.py so that the pure conversion (properties.py, changes.py)
and its unit tests never import pyVmomi.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RawObject:
    """One managed object's properties, as the PropertyCollector returned them."""

    type: str  # WSDL type, e.g. "VirtualMachine"
    moid: str  # e.g. "vm-42"
    props: dict[str, Any]
    missing: dict[str, str] = field(default_factory=dict)  # path -> fault (e.g. NoPermission)


@dataclass
class RawUpdate:
    """One object's change from ``WaitForUpdatesEx``."""

    kind: str  # "enter", "modify" or "leave"
    type: str
    moid: str
    changes: list[tuple[str, str, Any]]  # (property path, op, value)
