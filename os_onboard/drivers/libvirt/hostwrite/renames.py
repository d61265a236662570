"""Rewrite the disk sources of a libvirt domain XML after a backend rename (pure).

Only the one attribute that names a disk's image changes, in place; every
other byte of the document stays as it was (quotes, whitespace, namespace
prefixes of ``<metadata>``, comments). A round trip through ElementTree would
rewrite namespace prefixes and quoting of parts we have no business touching,
so the document is parsed with expat only to *find* the byte offsets of the
``<disk><source>`` start tags, and the text is edited there.

Which attribute names the image depends on the disk type:

========  ======================  ==========================================
type      attribute               map key / value
========  ======================  ==========================================
network   ``name`` (protocol rbd)  ``pool/image`` (RBD after Cinder manage)
file      ``file``                 absolute path (e.g. a renamed image file)
block     ``dev``                  absolute path (LVM: ``/dev/vg/volume-<id>``)
========  ======================  ==========================================

Only ``<disk>/<source>`` is rewritten: backing chains, ``<mirror>`` and
anything outside ``<devices>`` keep their names. A hostile document is
refused (:class:`RenameError`, so the hook leaves it unchanged): a DTD (entity
expansion, external entities) by expat's handlers, and more than
:data:`~os_onboard.drivers.safexml.MAX_DOCUMENT_CHARS` unparsed. Standard
library only: the libvirt hook imports this module with the system python3.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from xml.parsers import expat

from os_onboard.drivers import safexml
from os_onboard.exceptions import RenameError

#: disk type -> the <source> attribute that names the image
SOURCE_ATTRIBUTE = {"network": "name", "file": "file", "block": "dev"}

# One start tag: <name attr='v' attr="v" ...> (attribute values may hold '>').
_START_TAG = re.compile(rb"""<[^\s/>]+(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*/?>""")


@dataclass(frozen=True)
class DiskSource:
    """One ``<disk><source>`` of a domain: where it is and what it names."""

    disk_type: str
    attribute: str  # "name", "file" or "dev"
    value: str  # as libvirt means it (XML entities decoded)
    offset: int  # byte offset of the <source ...> start tag in the UTF-8 document


def disk_sources(xml: str) -> list[DiskSource]:
    """Every renameable disk source of the domain XML, in document order.

    Raises :class:`RenameError` when the XML is not well-formed, has a DTD or
    is oversized.
    """
    safexml.check_size(xml, "domain XML", RenameError)
    found: list[DiskSource] = []
    stack: list[tuple[str, dict[str, str]]] = []
    root: list[str] = []
    parser = expat.ParserCreate()
    safexml.refuse_dtd(parser, "domain XML", RenameError)

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag == "source" and stack and stack[-1][0] == "disk" and len(stack) >= 2 \
                and stack[-2][0] == "devices":
            disk_type = stack[-1][1].get("type", "file")
            attribute = SOURCE_ATTRIBUTE.get(disk_type)
            # network disks: only RBD names are "pool/image" (not iSCSI IQNs, NBD exports...)
            if disk_type == "network" and attrs.get("protocol") != "rbd":
                attribute = None
            if attribute and attribute in attrs:
                found.append(DiskSource(disk_type, attribute, attrs[attribute],
                                        parser.CurrentByteIndex))
        if not root:
            root.append(tag)
        stack.append((tag, attrs))

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda _tag: stack.pop()
    try:
        parser.Parse(xml.encode("utf-8"), True)
    except (expat.ExpatError, ValueError, LookupError) as exc:  # unencodable; encoding="?"
        raise RenameError(f"domain XML is not well-formed: {exc}") from exc
    if root and root[0] != "domain":
        # well-formed, but not a domain: a caller passing the wrong document should hear it
        raise RenameError(f"not a libvirt domain XML (root element <{root[0]}>)")
    return found


def rewrite_disk_sources(xml: str, renames: Mapping[str, str]) -> str:
    """The domain XML with each disk source found in ``renames`` replaced by its new name.

    ``renames`` maps old source to new source (``"legacy/lab-vm2-data" ->
    "legacy/volume-<id>"``, or old path -> new path). Sources not in the map,
    and domains without any, come back unchanged (the very same string).
    Raises :class:`RenameError` when the XML is not well-formed.
    """
    sources = disk_sources(xml)
    todo = [s for s in sources if s.value in renames and renames[s.value] != s.value]
    if not todo:
        return xml
    data = xml.encode("utf-8")
    out: list[bytes] = []
    pos = 0
    for source in todo:
        tag = _START_TAG.match(data, source.offset)
        if tag is None:  # cannot happen for a document expat accepted
            raise RenameError(f"cannot find the <source> tag at byte {source.offset}")
        new_tag = _replace_attribute(tag.group(0), source.attribute, renames[source.value])
        out += [data[pos:tag.start()], new_tag]
        pos = tag.end()
    out.append(data[pos:])
    return b"".join(out).decode("utf-8")


def _replace_attribute(tag: bytes, attribute: str, value: str) -> bytes:
    name = re.escape(attribute.encode())
    pattern = re.compile(rb"(\s" + name + rb"""\s*=\s*)("[^"]*"|'[^']*')""")
    match = pattern.search(tag)
    if match is None:
        raise RenameError(f"no {attribute}= in {tag!r}")
    quote = match.group(2)[:1].decode()
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(
        quote, "&quot;" if quote == '"' else "&apos;")
    return tag[:match.start(2)] + (quote + escaped + quote).encode("utf-8") + tag[match.end(2):]

