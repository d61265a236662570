"""Parse XML a hypervisor sent without trusting it (standard library only).

What a hostile or broken hypervisor could send, and how each is refused,
with the caller's own error type (``MalformedXml``, ``DiscoveryError``,
``RenameError``), before any tree is built:

* **entity expansion** ("billion laughs", quadratic blow-up) and **external
  entities** (``SYSTEM "file:///etc/shadow"``, ``http://…``) both need a DTD:
  a document with a ``<!DOCTYPE …>`` is refused outright, as defusedxml does
  (``StartDoctypeDeclHandler``, ``EntityDeclHandler`` and
  ``ExternalEntityRefHandler`` raise; parameter entities are never parsed).
  Neither libvirt nor vSphere ever sends a DTD, so nothing legitimate is lost;
* **oversized documents**: refused by length before parsing
  (:data:`MAX_DOCUMENT_CHARS`; the vSphere reply has its own page limit);
* **deep nesting**: ElementTree's serialiser and readers recurse per level,
  so a tree deeper than ``max_depth`` is refused instead of hitting Python's
  recursion limit somewhere later.

ElementTree's C parser has no switch to refuse a DTD, so :func:`fromstring`
first runs expat over the *prolog only* (it stops at the root element's start
tag: microseconds, whatever the document's size) with the refusing handlers,
then lets ElementTree's C parser build the tree of a document that can now
hold only the five predefined entities and character references. The parse
itself stays at C speed (the vSphere reader depends on it).

The libvirt qemu hook imports this module (through ``hostwrite.renames``)
with the system python3: standard library only.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from xml.parsers import expat

#: Longest XML document from libvirt read here, in characters (bytes for bytes input).
#: libvirt's RPC carries at most 4 MiB in one string (VIR_NET_MESSAGE_STRING_MAX),
#: so a remote domain/network/pool XML is never larger; 16 MiB is four times that,
#: room for local drivers, and bounds the tree ElementTree builds (~10x the text).
MAX_DOCUMENT_CHARS = 16 * 1024 * 1024

#: Deepest element nesting accepted by default. A libvirt domain is ~6 levels
#: deep plus one per backing-chain image; 256 leaves room for long snapshot
#: chains and stays well under Python's recursion limit (1,000 frames).
MAX_DEPTH = 256

#: How much of the document the prolog check feeds expat at a time.
_CHUNK = 64 * 1024

ErrorType = Callable[[str], Exception]


def refuse_dtd(parser: Any, what: str, error: ErrorType) -> None:
    """Make the expat ``parser`` raise ``error`` on any DTD, entity declaration or
    external entity reference (the handlers defusedxml sets)."""

    def doctype(name: str, *_: Any) -> None:
        raise error(f"{what} has a DTD (<!DOCTYPE {name}>): refused, a DTD can declare "
                    "entities that expand without bound or read local files and URLs")

    def entity(name: str, *_: Any) -> None:
        raise error(f"{what} declares the entity {name!r}: refused")

    def external(_context: str, _base: str, system_id: str, _public_id: str) -> int:
        raise error(f"{what} refers to the external entity {system_id!r}: refused")

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.UnparsedEntityDeclHandler = entity
    parser.ExternalEntityRefHandler = external
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)


def check_size(data: str | bytes, what: str, error: ErrorType,
               limit: int = MAX_DOCUMENT_CHARS) -> None:
    """Raise ``error`` when ``data`` is longer than ``limit`` (characters, or bytes)."""
    if len(data) > limit:
        unit = "bytes" if isinstance(data, bytes) else "characters"
        raise error(f"{what} is {len(data):,} {unit}, over the limit of {limit:,}: refused "
                    "unparsed")


def fromstring(data: str | bytes, what: str, error: ErrorType,
               limit: int = MAX_DOCUMENT_CHARS, max_depth: int | None = MAX_DEPTH) -> ET.Element:
    """``ET.fromstring(data)`` for an untrusted document; every refusal is ``error``.

    ``what`` names the document in messages ("domain XML"). ``max_depth`` None
    skips the depth walk (a large document whose readers do not recurse).
    """
    check_size(data, what, error, limit)
    # Fast paths for text (libvirt's XML), the common case: a DTD starts with the
    # literal "<!DOCTYPE" (XML is case-sensitive), and a document cannot nest
    # more elements than it has "<". Bytes may be in any encoding (UTF-16):
    # they always take the full checks.
    text = isinstance(data, str)
    if not text or "<!DOCTYPE" in data:
        _check_prolog(data, what, error)
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError, LookupError) as exc:  # text not encodable, encoding="?"
        raise error(f"{what} is not well-formed: {exc}") from exc
    if max_depth is not None and not (text and data.count("<") <= max_depth):
        _check_depth(root, what, error, max_depth)
    return root


def _check_prolog(data: str | bytes, what: str, error: ErrorType) -> None:
    """Refuse a DTD: run expat up to the root element's start tag only."""
    parser = expat.ParserCreate()
    refuse_dtd(parser, what, error)
    root_reached = StopIteration()

    def start(_name: str, _attrs: Any) -> None:
        raise root_reached

    parser.StartElementHandler = start
    try:
        for offset in range(0, len(data), _CHUNK):
            parser.Parse(data[offset:offset + _CHUNK], False)
        parser.Parse(data[:0], True)
    except StopIteration as exc:
        if exc is not root_reached:
            raise
    except (expat.ExpatError, ValueError, LookupError) as exc:  # LookupError: encoding="?"
        raise error(f"{what} is not well-formed: {exc}") from exc
    finally:
        # The traceback holds this frame, whose locals hold the exception: a
        # cycle that kept every document checked alive until the cyclic GC ran.
        root_reached.__traceback__ = None


def _check_depth(root: ET.Element, what: str, error: ErrorType, max_depth: int) -> None:
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > max_depth:
            raise error(f"{what} nests elements more than {max_depth} deep: refused")
        stack.extend((child, depth + 1) for child in element)
