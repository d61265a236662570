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


def tostring(el: ET.Element) -> str:
    """``ET.tostring(el, encoding="unicode")``, written directly for the common
    case of a leaf element without attributes (domain metadata such as
    ``<app:role xmlns:app="…">web</app:role>``): ElementTree's writer sets up a
    serialiser per call, ten times the cost of the string itself. Anything else
    goes to ElementTree, and a unit test holds the two equal.
    """
    tag = el.tag
    if len(el) or el.attrib or not isinstance(tag, str):
        return ET.tostring(el, encoding="unicode")
    if tag[:1] == "{":
        uri, local = tag[1:].rsplit("}", 1)
        prefix = ET._namespace_map.get(uri) or "ns0"  # type: ignore[attr-defined]
        if prefix == "xml":
            return ET.tostring(el, encoding="unicode")
        name = f"{prefix}:{local}"
        head = f'<{name} xmlns:{prefix}="{ET._escape_attrib(uri)}"'  # type: ignore[attr-defined]
    else:
        name = tag
        head = f"<{tag}"
    text = el.text
    out = (f"{head}>{ET._escape_cdata(text)}</{name}>" if text  # type: ignore[attr-defined]
           else f"{head} />")
    if el.tail:
        out += ET._escape_cdata(el.tail)  # type: ignore[attr-defined]
    return out
