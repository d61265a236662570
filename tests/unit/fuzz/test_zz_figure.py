"""The README's "Hostile input" figure: examples run per input kind, and failures.

Runs after the other fuzz modules (pytest collects this directory in name order)
and writes ``build/fuzz-counts.md`` (git ignores build/), the table the README
quotes as last measured. Skipped when no fuzz test ran (e.g. ``-k`` elsewhere).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.fuzz.counts import FAILED, RAN

OUT = Path(__file__).parents[3] / "build" / "fuzz-counts.md"


def test_write_the_fuzz_counts():
    if not RAN:
        pytest.skip("no fuzz test ran in this session")
    kinds = sorted(set(RAN) | set(FAILED))
    lines = ["| input kind | examples run | failures |", "|---|---:|---:|"]
    lines += [f"| {kind} | {RAN[kind]:,} | {FAILED[kind]} |" for kind in kinds]
    lines.append(f"| **all** | **{sum(RAN.values()):,}** | **{sum(FAILED.values())}** |")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    assert sum(FAILED.values()) == 0, OUT.read_text()
