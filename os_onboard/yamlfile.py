"""Read an operator's YAML file with errors that name the file and its role.

Hostile or broken files are refused with one :class:`ConfigError` line, before
anything else reads them: more than :data:`MAX_YAML_BYTES` (only that much is
ever read, so a FIFO or ``/dev/zero`` cannot fill memory), an alias bomb (YAML's
"billion laughs": anchors whose expansion exceeds :data:`MAX_YAML_NODES` values),
a recursive alias, nesting deeper than the parser can follow, text that is
not UTF-8, or a scalar PyYAML cannot construct (a timestamp like 2024-13-45).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from os_onboard.exceptions import ConfigError

#: Largest YAML file read. Hosts and mapping files are written by people: a hosts file
#: with the most hosts allowed (10,000, discovery.targets) is about 1 MiB, a mapping file
#: tens of KiB; 8 MiB is ample room and bounds the memory a wrong path can cost.
MAX_YAML_BYTES = 8 * 1024 * 1024

#: Most values (scalars, lists, mappings) a file may hold once its aliases are expanded.
#: An 8 MiB file of short scalars has at most a few million; real files have thousands.
#: Aliases are followed by the readers (pydantic, JSON output) as copies, so ten nested
#: anchors of ten aliases each would be 10^10 values: the expansion is what is bounded.
MAX_YAML_NODES = 1_000_000


def read_yaml(path: str | Path, what: str) -> Any:
    """Parse ``path``; ``what`` names it in errors (e.g. "hosts file").

    :raises ConfigError: the file cannot be read, is not valid YAML, or is
        hostile (see the module docstring).
    """
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(f"{what} {path} is over the limit of {MAX_YAML_BYTES:,} bytes: "
                          "refused unread")
    loader = None
    try:
        loader = yaml.SafeLoader(data)  # reads the start: may already find a bad character
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, path, what)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{what} {path} is nested too deeply to read") from exc
    except ValueError as exc:  # a scalar that cannot be constructed, e.g. 2024-13-45
        raise ConfigError(f"{what} {path} has a value that cannot be read: {exc}") from exc
    finally:
        if loader is not None:
            loader.dispose()


def _check_expansion(root: yaml.Node, path: str | Path, what: str) -> None:
    """Refuse a recursive alias, or more than MAX_YAML_NODES values once aliases expand.

    Iterative (a deep file must not exhaust the stack here), and linear in the
    number of distinct nodes: each one's expanded size is computed once.
    """
    sizes: dict[int, int] = {}
    expanding: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        children = _children(node)
        if children_done:
            expanding.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[key] > MAX_YAML_NODES:
                raise ConfigError(
                    f"{what} {path} expands to more than {MAX_YAML_NODES:,} values "
                    "(aliases of aliases: a YAML bomb?): refused")
            continue
        if key in sizes:
            continue
        if key in expanding:
            raise ConfigError(f"{what} {path} has an alias that contains itself: refused")
        expanding.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    return []
