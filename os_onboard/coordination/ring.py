"""The registered hosts partitioned among the live members (consistent hashing)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable

from tooz import hashring

#: points per member on the ring: with 2-3 members, shares within a few %
REPLICAS = 128


def assign(members: Iterable[str], hosts: Iterable[str]) -> dict[str, str]:
    """``{host: member}`` for every host; {} when there is no member."""
    names = sorted(set(members))
    if not names:
        return {}
    with warnings.catch_warnings():
        # tooz 6.x hashes through oslo.utils' md5 wrapper, deprecated there: one
        # DeprecationWarning per host otherwise
        warnings.simplefilter("ignore", DeprecationWarning)
        ring = hashring.HashRing(names, partitions=REPLICAS)
        return {h: next(iter(ring.get_nodes(h.encode()))) for h in hosts}


def held_by(member: str, members: Iterable[str], hosts: Iterable[str]) -> list[str]:
    """The hosts ``member`` holds."""
    return sorted(h for h, m in assign(members, hosts).items() if m == member)
