"""Rebuild adopted instances' network info cache from Neutron (Nova's own code).

A ``network-changed`` event does not help an empty cache (Nova rebuilds from
the cache, not from Neutron, when a port id is given), and the periodic heal
is off by default; so this runs Nova's ``get_instance_nw_info`` with
``force_refresh=True``, which lists the ports whose device_id is the
instance, in virtual-interface order.

    echo '[{"uuid": "...", "host": "..."}]' | python -m os_onboard_nova.network_cache ...
"""

from __future__ import annotations

import sys
from typing import Any

from os_onboard_nova import _common


def refresh(item: dict, context: Any, objects: Any) -> dict:
    from nova.network import neutron

    ctxt = context.get_admin_context()
    cell = _common.cell_for_host(ctxt, objects, item["host"])
    with context.target_cell(ctxt, cell) as cctxt:
        instance = objects.Instance.get_by_uuid(cctxt, item["uuid"],
                                                expected_attrs=["info_cache"])
        info = neutron.API().get_instance_nw_info(cctxt, instance, force_refresh=True)
    return {"uuid": item["uuid"],
            "vifs": [{"id": v["id"], "mac": v["address"], "type": v["type"],
                      "ips": [ip["address"] for ip in v.fixed_ips()]} for v in info]}


def main(argv: list[str] | None = None) -> int:
    # Each refresh mostly waits on Neutron (about eight requests per VM).
    return _common.serve("os_onboard_nova.network_cache", __doc__,
                         lambda item, _conf, context, objects: refresh(item, context, objects),
                         argv, workers=4)


if __name__ == "__main__":
    sys.exit(main())
