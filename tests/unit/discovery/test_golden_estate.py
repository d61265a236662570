"""Discovery output for a 1,000-VM test-driver estate, byte for byte.

The goldens under ``tests/data/discovery/`` were written by the code *before*
the performance work of issue 18 (``python -m tests.unit.discovery.test_golden_estate
DIR`` rewrites them; only do that for an intended output change). The test
runs the CLI in-process as a user would (``discover URI... --no-save -f json``,
``--by storage``, ``--output-file``) over 100 libvirt test-driver hosts x 10
VMs and compares the bytes, after replacing what differs between runs or
machines: the estate's directory, the local hostname (the test driver reports
it), timestamps and per-host durations.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import re
import socket
import sys
from pathlib import Path

import pytest

from os_onboard.cli.main import main
from os_onboard.drivers.libvirt.testnode import write_estate

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "discovery"
HOSTS, VMS = 100, 10

_VOLATILE = [
    (re.compile(r'"(created_at|discovered_at)":"[^"]*"'), r'"\1":"@TIME@"'),
    (re.compile(r'"duration_ms":\d+'), '"duration_ms":0'),
]


def _normalise(text: str, estate: Path) -> str:
    text = text.replace(str(estate), "@ESTATE@")
    host = socket.gethostname()
    for key in ('"hostname":', '"Host": '):
        text = text.replace(f'{key}"{host}"', f'{key}"@HOSTNAME@"')
    for pattern, repl in _VOLATILE:
        text = pattern.sub(repl, text)
    return text


def render(estate: Path, tmp: Path) -> dict[str, str]:
    """The outputs compared: name -> normalised text."""
    uris = [f"test://{p}" for p in write_estate(estate, HOSTS, VMS)]
    out: dict[str, str] = {}
    doc = tmp / "doc.json"
    for name, extra in (("vms.json", ["--output-file", str(doc)]),
                        ("storage.json", ["--by", "storage"])):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
            assert main(["discover", *uris, "--no-save", "-f", "json", *extra]) == 0
        out[name] = _normalise(buf.getvalue(), estate)
    out["document.json"] = _volumes_sorted(_normalise(doc.read_text(), estate))
    return out


def _volumes_sorted(text: str) -> str:
    """The document with each storage pool's volumes in name order.

    libvirt lists a pool's volumes in its hash table's order, which changes
    from one connection to the next; everything else keeps its bytes (keys in
    their order, compact separators, no ASCII escaping, as ``dump_inventory``).
    """
    doc = json.loads(text)
    for host in doc["hosts"]:
        for pool in host.get("storage_pools") or []:
            pool["volumes"].sort(key=lambda v: (v["name"], v.get("path") or ""))
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("name", ["vms.json", "storage.json", "document.json"])
def test_discovery_json_matches_golden(tmp_path: Path, name: str,
                                       rendered: dict[str, str]) -> None:
    expected = gzip.decompress((GOLDEN / f"estate-1000.{name}.gz").read_bytes()).decode()
    got = rendered[name]
    if got != expected:  # show where, not two megabytes
        at = next(i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b) \
            if any(a != b for a, b in zip(got, expected, strict=False)) \
            else min(len(got), len(expected))
        pytest.fail(f"{name} differs at {at}: got {got[at - 80:at + 80]!r}, "
                    f"expected {expected[at - 80:at + 80]!r}")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("golden")
    return render(tmp / "estate", tmp)


if __name__ == "__main__":  # regenerate: python -m tests.unit.discovery.test_golden_estate
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        outputs = render(Path(d) / "estate", Path(d))
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, text in outputs.items():
        (GOLDEN / f"estate-1000.{name}.gz").write_bytes(
            gzip.compress(text.encode(), compresslevel=9, mtime=0))
        print(f"wrote {GOLDEN}/estate-1000.{name}.gz ({len(text):,} bytes)", file=sys.stderr)
