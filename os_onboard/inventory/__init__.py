"""Inventory: typed, versioned data about hosts, VMs, disks and NICs (no I/O)."""

from __future__ import annotations

import json

from pydantic import ValidationError

from os_onboard.exceptions import InventoryError
from os_onboard.inventory.models import SCHEMA_VERSION, HostInventory, Inventory, Vm

__all__ = ["SCHEMA_VERSION", "HostInventory", "Inventory", "Vm", "dump_inventory", "load_inventory"]


def dump_inventory(inventory: Inventory) -> str:
    """Serialise an inventory to its versioned JSON document."""
    return inventory.model_dump_json(indent=None, exclude_none=False)


def load_inventory(text: str | bytes) -> Inventory:
    """Parse an inventory document, refusing other major schema versions.

    :raises InventoryError: malformed JSON, schema mismatch, or wrong version.
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InventoryError(f"inventory is not valid JSON: {exc}") from exc
    version = str(raw.get("schema_version", "")) if isinstance(raw, dict) else ""
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise InventoryError(
            f"inventory schema version {version or '(none)'} is not supported "
            f"(this os-onboard reads {SCHEMA_VERSION.split('.')[0]}.x)"
        )
    try:
        return Inventory.model_validate(raw)
    except ValidationError as exc:
        raise InventoryError(f"inventory does not match the schema: {exc}") from exc
