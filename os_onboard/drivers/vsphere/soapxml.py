"""Read a ``RetrievePropertiesEx`` SOAP answer with ElementTree (no pyVmomi here).

pyVmomi turns every XML element into a Python object through Python-level
expat callbacks: for 10,000 VMs (about 2 million elements) that is most of
discovery's time. This reader lets ElementTree's C parser build the tree and
wraps data objects in :class:`Lazy`, which converts a field only when the
driver reads it; most fields of most devices are never read.

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


def parse_retrieve_result(body: bytes, schema: Schema) -> tuple[list[RawObject], str | None]:
    """The objects of one (Continue)RetrievePropertiesEx answer, and its paging token.

    :raises DiscoveryError: not well-formed, a DTD, or over :data:`MAX_REPLY_BYTES`.
    """
    # The readers below recurse only into nested data objects, which vSphere keeps
    # shallow; a hostile depth fails that VM (build.py), so no depth walk here.
    # A page is hundreds of thousands of elements, none in a reference cycle, and
    # the objects keep them until the inventory is built: every collection of the
    # cyclic GC (those the parse's own allocations trigger, then those of the next
    # pages and of the build) rescanned all of them, half of a 10,000-VM
    # discovery's CPU. So no collection during the parse, and the page frozen
    # after it (reference counting still frees it); the discovery runner, which
    # every discovery goes through, unfreezes after its hosts.
    enabled = gc.isenabled()
    gc.disable()
    try:
        root = safexml.fromstring(body, "vSphere reply", DiscoveryError,
                                  limit=MAX_REPLY_BYTES, max_depth=None)
        returnval = root.find(f".//{VIM}returnval")
        if returnval is None:
            return [], None
        objects = list(_objects(returnval, schema))
        token = returnval.findtext(f"{VIM}token")
    finally:
        if enabled:
            gc.enable()
    gc.freeze()
    return objects, token


def _objects(returnval: ET.Element, schema: Schema) -> Iterator[RawObject]:
    for content in returnval.iterfind(f"{VIM}objects"):
        obj = content.find(f"{VIM}obj")
        if obj is None:
            continue
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
        yield RawObject(type=obj.get("type") or "", moid=obj.text or "", props=props,
                        missing=missing)


def _fault_name(missing: ET.Element) -> str:
    fault = missing.find(f"{VIM}fault/{VIM}fault")
    declared = fault.get(XSI_TYPE) if fault is not None else None
    return declared.split(":", 1)[-1] if declared else "fault"
