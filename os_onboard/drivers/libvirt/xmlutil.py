"""Small ElementTree readers shared by the domain, disk and NIC XML parsers.

Each one is lenient: a missing element or attribute is ``None``, and an
unreadable number is ``None`` plus a warning appended to the caller's list.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET


def text(el: ET.Element | None, path: str) -> str | None:
    """The stripped text of ``el``'s child at ``path``; ``None`` if absent or blank."""
    if el is None:
        return None
    found = el.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def has(el: ET.Element | None, path: str) -> bool:
    return el is not None and el.find(path) is not None


def to_int(value: str | None, what: str, warnings: list[str]) -> int | None:
    """``value`` as an int; a non-number is ``None`` and a warning naming ``what``."""
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        warnings.append(f"ignored non-numeric {what}: {value!r}")
        return None


def describe(el: ET.Element, limit: int = 300) -> str:
    """``el`` as one line of XML, cut to ``limit`` characters (for caveats and warnings)."""
    flat = " ".join(ET.tostring(el, encoding="unicode").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
