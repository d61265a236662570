"""``python -m os_onboard_cinder.release_vmdk``: the release command of vmdk_in_place."""

from __future__ import annotations

import sys

from os_onboard_cinder.vmdk_in_place import main

if __name__ == "__main__":
    sys.exit(main(["release", *sys.argv[1:]]))
