"""Read a ``RetrievePropertiesEx`` SOAP answer with ElementTree (no pyVmomi here).

pyVmomi turns every XML element into a Python object through Python-level
expat callbacks: for 10,000 VMs (about 2 million elements) that is most of
discovery's time. This reader lets ElementTree's C parser build the tree, a
slice of the reply at a time (:class:`ReplyReader`: each object is handed out
as its element ends and taken out of the tree, so a reply's whole tree is
never in memory), and wraps data objects in :class:`Lazy`, which converts a
field only when the driver reads it; most fields of most devices are never
read.

What a field is (array or not, primitive, reference or data object) comes
from a ``schema`` callback that api.py answers from pyVmomi's type
information, so the objects behave like pyVmomi's: a declared but unset
field reads as None, an undeclared one raises AttributeError.

A reply is untrusted input (drivers/safexml.py): a page over
:data:`MAX_REPLY_BYTES` is refused unparsed (api.py reads no more than that),
a DTD is refused (no entity expansion, no external entities), either as a
:class:`DiscoveryError` for the endpoint. A property whose value does not
convert to its declared type is left out and named in the object's
``missing`` (fault ``InvalidValue``), so only that VM is reported.
"""

from __future__ import annotations

import gc
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from os_onboard.drivers import safexml
from os_onboard.drivers.vsphere.raw import RawObject
from os_onboard.exceptions import DiscoveryError

#: Largest (Continue)RetrievePropertiesEx answer read, in bytes. A page holds at most
#: ``page_size`` (1,000) objects and a VM with its devices is a few KiB to a few tens
#: of KiB of XML, so a page is well under 64 MiB; 256 MiB is ample room while bounding
#: what one page costs in memory (the tree is several times the text).
MAX_REPLY_BYTES = 256 * 1024 * 1024

#: ``missing`` fault of a property whose value does not convert to its type
INVALID_VALUE = "InvalidValue"

VIM = "{urn:vim25}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

#: field kinds the schema gives: "str", "int", "float", "bool", "ref", "data"
FieldInfo = tuple[bool, str, str]  # (is_array, kind, WSDL type of the field or its items)
Schema = Callable[[str], dict[str, FieldInfo]]

_PRIMITIVES: dict[str, str] = {
    "string": "str", "int": "int", "long": "int", "short": "int", "byte": "int",
    "boolean": "bool", "float": "float", "double": "float", "dateTime": "str",
    "anyURI": "str", "base64Binary": "str", "TypeName": "str", "MethodName": "str",
    "PropertyPath": "str", "ManagedObjectReference": "ref",
}


class Lazy:
    """A vSphere data object backed by its XML element; fields convert on first read.

    Each WSDL type gets a subclass (:func:`_lazy`) with one descriptor per
    declared field, so reading a field is an ordinary attribute lookup; only
    an undeclared name reaches ``__getattr__`` (and raises AttributeError).
    Through ``__getattr__`` alone, every field read first failed the normal
    lookup, an AttributeError built and dropped: a quarter of a 10,000-VM
    discovery's CPU.
    """

    __slots__ = ("_cache", "_children", "_elem", "_fields", "_schema", "_wsdlName")

    def __init__(self, elem: ET.Element, wsdl_name: str, schema: Schema) -> None:
        self._elem = elem
        self._wsdlName = wsdl_name
        self._schema = schema
        self._fields = schema(wsdl_name)
        self._children: dict[str, list[ET.Element]] | None = None
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name not in self._fields:
            raise AttributeError(f"{self._wsdlName} has no field {name!r}")
        return self._read(name)

    def _read(self, name: str) -> Any:
        cache = self._cache
        if name in cache:
            return cache[name]
        if self._children is None:
            children: dict[str, list[ET.Element]] = {}
            for child in self._elem:
                children.setdefault(child.tag.removeprefix(VIM), []).append(child)
            self._children = children
        elems = self._children.get(name, [])
        is_array, kind, type_name = self._fields[name]
        if is_array:
            value: Any = [_value(e, kind, type_name, self._schema) for e in elems]
        else:
            value = _value(elems[0], kind, type_name, self._schema) if elems else None
        cache[name] = value
        return value

    def __repr__(self) -> str:
        return f"<{self._wsdlName} (lazy)>"


class _Field:
    """A declared field of a :class:`Lazy` subclass (non-data descriptor)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Lazy | None, owner: type | None = None) -> Any:
        return self if obj is None else obj._read(self.name)


_CLASSES: dict[tuple[str, Schema], type[Lazy]] = {}


def _lazy(elem: ET.Element, wsdl_name: str, schema: Schema) -> Lazy:
    """A :class:`Lazy` of the subclass for ``wsdl_name`` (made once per type and schema)."""
    cls = _CLASSES.get((wsdl_name, schema))
    if cls is None:
        fields = {name: _Field(name) for name in schema(wsdl_name) if not hasattr(Lazy, name)}
        cls = type(f"Lazy{wsdl_name}", (Lazy,), {"__slots__": (), **fields})
        _CLASSES[(wsdl_name, schema)] = cls
    return cls(elem, wsdl_name, schema)


def declares(obj: Any, name: str) -> bool:
    """``hasattr(obj, name)`` without raising two exceptions for each absent
    field of a :class:`Lazy` (a declared but unset field counts, as in pyVmomi)."""
    if isinstance(obj, Lazy):
        return name in obj._fields
    return hasattr(obj, name)


def _value(elem: ET.Element, kind: str, type_name: str, schema: Schema) -> Any:
    declared = elem.get(XSI_TYPE)
    if declared:  # the concrete type, e.g. a VirtualDisk where VirtualDevice is declared
        declared = declared.split(":", 1)[-1]
        if declared.startswith("ArrayOf"):
            item = declared[len("ArrayOf"):]  # "String", "VirtualDevice", …
            item_kind = _PRIMITIVES.get(item[0].lower() + item[1:],
                                        _PRIMITIVES.get(item, "data"))
            return [_value(child, item_kind, item, schema) for child in elem]
        kind = _PRIMITIVES.get(declared, "data")
        type_name = declared
    text = elem.text or ""
    if kind == "data":
        # An enum (e.g. VirtualMachinePowerState) is typed but holds only text.
        if text and len(elem) == 0:
            return text
        return _lazy(elem, type_name, schema)
    if kind == "int":
        return int(text)
    if kind == "bool":
        return text in ("true", "1")
    if kind == "float":
        return float(text)
    return text  # str, and references as their moid


#: bytes of a reply fed to the parser at a time; the objects completed are handed
#: out between feeds, so one slice's elements are alive, not the reply's tree
FEED_BYTES = 1024 * 1024


def parse_retrieve_result(body: bytes, schema: Schema) -> tuple[list[RawObject], str | None]:
    """The objects of one (Continue)RetrievePropertiesEx answer, and its paging token.

    :raises DiscoveryError: not well-formed, a DTD, or over :data:`MAX_REPLY_BYTES`.
    """
    reader = ReplyReader(body, schema)
    objects = list(reader)
    return objects, reader.token


class ReplyReader:
    """The objects of one (Continue)RetrievePropertiesEx answer, parsed as they are taken.

    A page is whatever the endpoint sends: vCenter honours ``maxObjects``, the
    simulator sends every object in one reply (10,000 VMs: 84 MB of XML, a
    ~500 MiB tree). So the reply is fed to ElementTree's C parser a slice
    (:data:`FEED_BYTES`) at a time and each ``<objects>`` element finished is
    taken out of the tree and handed out; a caller that builds and drops
    each object holds the raw reply and one slice of elements, not the tree.

    Iterate once; :attr:`token` is the paging token once iterated.

    :raises DiscoveryError: at construction, over :data:`MAX_REPLY_BYTES` or a
        DTD; while iterated, not well-formed (objects before the error may
        have been handed out; the caller fails the whole reply).
    """

    def __init__(self, body: bytes, schema: Schema) -> None:
        safexml.check_size(body, "vSphere reply", DiscoveryError, MAX_REPLY_BYTES)
        # Runs expat up to the root element's start tag only (microseconds): a DTD,
        # which ElementTree's parser has no switch to refuse, is refused here, before
        # anything is parsed, as safexml.fromstring does for a whole document.
        safexml._check_prolog(body, "vSphere reply", DiscoveryError)
        self._body: bytes | None = body
        self._schema = schema
        self.token: str | None = None

    def __iter__(self) -> Iterator[RawObject]:
        body, self._body = self._body, None
        if body is None:
            return
        # ElementTree's C tree builder reports the start of each element only while
        # asked to (private _setevents, the call XMLPullParser makes): on until the
        # <returnval> is seen, then off, so the ~200 elements per VM cost no Python.
        events: deque[tuple[str, ET.Element]] = deque()
        parser = ET.XMLParser(target=ET.TreeBuilder())
        parser._setevents(events, ("start",))  # type: ignore[attr-defined]
        returnval: ET.Element | None = None
        for offset in range(0, len(body) + 1, FEED_BYTES):
            last = offset + FEED_BYTES > len(body)
            self._feed(parser, body[offset:offset + FEED_BYTES], last)
            if returnval is None:
                returnval = _returnval(events)
                if returnval is not None:
                    parser._setevents(events, ())  # type: ignore[attr-defined]
                    events.clear()
            if returnval is not None:
                # Only the last child of <returnval> can still be open.
                yield from self._take(returnval, len(returnval) if last else len(returnval) - 1)
        if returnval is not None and self.token is None:
            self.token = returnval.findtext(f"{VIM}token")
        # Whatever of the reply is left (little: its elements were taken) is frozen
        # for the GC, as the pages were when parsed whole: the discovery runner
        # unfreezes after its hosts.
        gc.freeze()

    @staticmethod
    def _feed(parser: ET.XMLParser, data: bytes, last: bool) -> None:
        """Feed one slice with the cyclic GC off (a reply is hundreds of thousands of
        elements, none in a cycle: each collection would rescan them all)."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            parser.feed(data)
            if last:
                parser.close()
        except (ET.ParseError, ValueError, LookupError) as exc:
            raise DiscoveryError(f"vSphere reply is not well-formed: {exc}") from exc
        finally:
            if enabled:
                gc.enable()

    def _take(self, returnval: ET.Element, count: int) -> Iterator[RawObject]:
        """The first ``count`` children of ``returnval`` as objects, taken out of the tree."""
        taken = returnval[:count]
        del returnval[:count]
        taken.reverse()
        while taken:
            child = taken.pop()
            if child.tag == f"{VIM}objects":
                obj = _object(child, self._schema)
                if obj is not None:
                    yield obj
            elif child.tag == f"{VIM}token" and self.token is None:
                self.token = child.text or ""


def _returnval(events: deque[tuple[str, ET.Element]]) -> ET.Element | None:
    """The first <returnval> among the elements started so far (events consumed)."""
    while events:
        _event, elem = events.popleft()
        if elem.tag == f"{VIM}returnval":
            return elem
    return None


def _object(content: ET.Element, schema: Schema) -> RawObject | None:
    obj = content.find(f"{VIM}obj")
    if obj is None:
        return None
    props: dict[str, Any] = {}
    missing = {m.findtext(f"{VIM}path") or "": _fault_name(m)
               for m in content.iterfind(f"{VIM}missingSet")}
    for prop in content.iterfind(f"{VIM}propSet"):
        name, val = prop.findtext(f"{VIM}name"), prop.find(f"{VIM}val")
        if name is not None and val is not None:
            try:
                props[name] = _value(val, "str", "string", schema)
            except (ValueError, RecursionError):  # e.g. <val xsi:type="xsd:int">abc</val>
                missing[name] = INVALID_VALUE
    return RawObject(type=obj.get("type") or "", moid=obj.text or "", props=props,
                     missing=missing)


def _fault_name(missing: ET.Element) -> str:
    fault = missing.find(f"{VIM}fault/{VIM}fault")
    declared = fault.get(XSI_TYPE) if fault is not None else None
    return declared.split(":", 1)[-1] if declared else "fault"
