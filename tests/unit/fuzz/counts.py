"""Examples run and failures per input kind, for build/fuzz-counts.md (test_zz_figure)."""

from __future__ import annotations

from collections import Counter

#: input kind -> examples the fuzz tests ran on it
RAN: Counter[str] = Counter()
#: input kind -> fuzz tests of that kind that failed
FAILED: Counter[str] = Counter()


def ran(kind: str) -> None:
    """Count one example of ``kind`` (called first thing in each fuzz test's body)."""
    RAN[kind] += 1
