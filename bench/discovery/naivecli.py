"""The naive loop as a user's script: every host of a hosts file read one after the
other (naive.py), then the whole list written as indented JSON to stdout.

    python naivecli.py HOSTS.yaml > out.json

The baseline of ``os-onboard discover --hosts HOSTS.yaml --no-save -f json``
(run.py, case 2, "as a user would"): interpreter start-up, imports and output
included in both.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import naive  # bench/discovery, put on sys.path above


def main() -> int:
    uris = [line.strip().removeprefix("- ").strip() for line in
            Path(sys.argv[1]).read_text().splitlines() if line.strip().startswith("- ")]
    vms = [dict(vm, host=uri) for uri in uris for vm in naive.read_host(uri)]
    json.dump(vms, sys.stdout, indent=2)
    print(f"{len(uris)} host(s), {len(vms)} VM(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
