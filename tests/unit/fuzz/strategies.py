"""Hypothesis strategies for hostile input: mutated real documents and random structure.

``mutated(seeds)`` takes a valid document and damages it the ways a broken or
hostile source would: random bytes spliced in, slices cut or doubled, markup
characters, entity and character references, CDATA, comments, DTD fragments,
attribute values and element texts replaced by junk (huge, negative, unicode,
empty). ``xml_tree(...)`` builds well-formed documents from a vocabulary of
the real element and attribute names with junk values, so that deep parser
paths (a disk whose backing chain is a number, a NIC without a MAC) are reached.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from hypothesis import strategies as st

# Characters that matter to XML, YAML and JSON parsers, plus some unicode.
_MARKUP = "<>&;\"'=/![]-?#:{}%,*|@`\\\n\t \x00\x7f"
junk_text = st.text(alphabet=st.sampled_from(_MARKUP) | st.characters(codec="utf-8"),
                    max_size=40)

SNIPPETS = [
    "&lol;", "&amp;", "&#0;", "&#x110000;", "&#65;", "&#x1F600;", "&", "&#;",
    "<![CDATA[<x>&]]>", "<!-- -->", "<!--", "-->", "<?pi x?>", "<?xml version='1.0'?>",
    "<!DOCTYPE domain [<!ENTITY lol 'lol'>]>", "<!ENTITY x SYSTEM 'file:///etc/passwd'>",
    "<!DOCTYPE d SYSTEM 'http://127.0.0.1:1/x.dtd'>", "%pe;", "]]>", "</domain>",
    "<domain>", "<devices>", "<disk type='file'>", "<source file='/x'/>", "</disk>",
    "xmlns:x='urn:x'", "x:y='1'", "-1", "0", "99999999999999999999999999", "1e309", "NaN",
    "9" * 5000, "\ufeff", "\u202e", "\udcff", "a" * 1000,
]

VALUES = st.one_of(
    junk_text,
    st.sampled_from(["", "-1", "0", "1", "4095", "4096", "-0", "0x10", "1.5", "1e3", "inf",
                     "9" * 30, "9" * 5000, "true", "yes", "KiB", "TiB", "bogus", "pflash",
                     "efi", "network", "file", "block", "rbd", "nvme", "volume", "dir",
                     "hostdev", "bridge", "direct", "../../etc/passwd", "/dev/disk/by-id/"
                     "wwn-0x6000", "scsi-3", "52:54:00:aa:bb:cc", "zz:zz", "192.0.2.1",
                     "::1", "not-an-ip", "6695eb01-f6a4-8304-79aa-97f2502e193f"]),
    st.integers().map(str),
)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[str]) -> str:
    """One of ``seeds`` with 1 to 6 random mutations."""
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["splice", "cut", "double", "snippet", "attribute",
                                     "text", "truncate"]))
        size = len(text)
        at = draw(st.integers(0, size))
        end = draw(st.integers(at, min(size, at + 200)))
        if kind == "splice":
            text = text[:at] + draw(junk_text) + text[end:]
        elif kind == "cut":
            text = text[:at] + text[end:]
        elif kind == "double":
            text = text[:end] + text[at:end] + text[end:]
        elif kind == "snippet":
            text = text[:at] + draw(st.sampled_from(SNIPPETS)) + text[at:]
        elif kind == "truncate":
            text = text[:at]
        else:
            pattern = r"""=(['"])(.*?)\1""" if kind == "attribute" else r">([^<]*)<"
            matches = list(re.finditer(pattern, text, re.S))
            if matches:
                match = draw(st.sampled_from(matches))
                value = draw(VALUES)
                if kind == "attribute":
                    quote = match.group(1)
                    value = value.replace(quote, "")
                    text = text[:match.start()] + f"={quote}{value}{quote}" + text[match.end():]
                else:
                    text = text[:match.start(1)] + value + text[match.end(1):]
    return text


def _xml_safe(value: str) -> str:
    # ElementTree writes what it is given; keep the document well-formed XML 1.0.
    return "".join(c for c in value if c in "\t\n\r" or (" " <= c <= "\ud7ff")
                   or ("\ue000" <= c <= "\ufffd") or c > "\uffff")


@st.composite
def xml_tree(draw: st.DrawFn, roots: list[str], tags: list[str], attributes: list[str],
             required: list[str] = (), max_leaves: int = 12) -> str:
    """A well-formed document: root from ``roots``, random children from the vocabulary;
    ``required`` children (e.g. name, uuid) are present most of the time."""
    attrs = st.dictionaries(st.sampled_from(attributes), VALUES.map(_xml_safe), max_size=4)

    def extend(children: st.SearchStrategy) -> st.SearchStrategy:
        return st.tuples(st.sampled_from(tags), attrs, VALUES.map(_xml_safe),
                         st.lists(children, max_size=3))

    leaf = st.tuples(st.sampled_from(tags), attrs, VALUES.map(_xml_safe), st.just([]))
    subtree = st.recursive(leaf, extend, max_leaves=max_leaves)

    def build(spec: tuple) -> ET.Element:
        tag, attributes_, text, children = spec
        element = ET.Element(tag, attributes_)
        element.text = text
        element.extend(build(c) for c in children)
        return element

    root = ET.Element(draw(st.sampled_from(roots)), draw(attrs))
    for name in required:
        if draw(st.integers(0, 9)) > 0:
            child = ET.SubElement(root, name)
            child.text = _xml_safe(draw(VALUES)) or name
    root.extend(build(c) for c in draw(st.lists(subtree, max_size=4)))
    return ET.tostring(root, encoding="unicode")
