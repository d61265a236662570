"""``python -m os_onboard_cinder.record_vmdk``: the record command of vmdk_in_place."""

from __future__ import annotations

import sys

from os_onboard_cinder.vmdk_in_place import main

if __name__ == "__main__":
    sys.exit(main(["record", *sys.argv[1:]]))
