"""Inventory: the VMs of a snapshot with disks, identifiers and NICs; caveats
highlighted; filtered and paged by the API (marker paging, never all rows)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from os_onboard_dashboard import api
from os_onboard_dashboard.views import ApiPage

PAGE_SIZES = (25, 50, 100, 500)
SHOWN = 20  # conflicts and problems listed above the table


def _gib(n: int | None) -> str:
    return f"{n / 2**30:.1f} GiB" if n else "-"


def vm_row(vm: dict[str, Any], query: str = "") -> dict[str, Any]:
    """What the table shows of one VM record (the API's full record, with its
    flags); the values a search matched are marked (``hit``)."""
    query = query.strip().lower()

    def hit(value: str | None) -> bool:
        return bool(query and value and query in value.lower())

    disks = []
    for d in vm.get("disks", []):
        ids = d.get("identifiers") or {}
        idents = [f"{k}={v}" for k, v in (("serial", ids.get("serial")), ("wwn", ids.get("wwn")),
                                          ("page83", ids.get("scsi_page83")),
                                          ("uuid", d.get("disk_uuid"))) if v]
        idents += ids.get("by_id") or []
        disks.append({"target": d.get("target"), "device": d.get("device"),
                      "source": d.get("source") or d.get("source_kind"),
                      "source_hit": hit(d.get("source")),
                      "size": _gib(d.get("capacity_bytes")),
                      "identifiers": [{"text": i, "hit": hit(i.partition("=")[2] or i)}
                                      for i in idents]})
    nics = [{"mac": n.get("mac"), "mac_hit": hit(n.get("mac")), "model": n.get("model"),
             "network": n.get("portgroup") or n.get("network") or n.get("bridge") or "-",
             "vlan": n.get("vlan") or [],
             "addresses": [{"text": f"{a['address']} ({a['source']})",
                            "hit": hit(a["address"])} for a in n.get("addresses", [])]}
            for n in vm.get("nics", [])]
    return {"uuid": vm["uuid"], "name": vm["name"], "host": vm.get("host", ""),
            "power": vm.get("power_state"), "vcpus": vm.get("vcpus"),
            "memory": vm.get("memory_mib"), "disks": disks, "nics": nics,
            "caveats": vm.get("caveats", []), "location": vm.get("location") or {},
            "conflicts": vm.get("conflicts", []), "problems": vm.get("problems", []),
            "matched": vm.get("matched", [])}


class IndexView(ApiPage):
    template_name = "os_onboard_dashboard/inventory.html"
    page_title = "Onboarding: Inventory"

    def load(self, **kwargs: Any) -> dict[str, Any]:
        q = self.request.GET
        snapshot_id = q.get("snapshot") or "latest"
        summary = api.snapshot(self.request, snapshot_id)
        if summary is None:
            return {"summary": None}
        try:
            limit = int(q.get("limit", 25))
        except ValueError:
            limit = 25
        limit = limit if limit in PAGE_SIZES else 25
        filters = {"q": q.get("q", ""), "name": q.get("name", ""), "host": q.get("host", ""),
                   "power_state": q.get("power_state", ""),
                   "flagged": "1" if q.get("flagged") else ""}
        # flags: each VM with its conflicts and problems, and what a search matched
        page = api.vms(self.request, str(summary["id"]), limit=limit,
                       marker=q.get("marker", ""), flags="1", **filters)
        # The API's next link carries the marker; the page keeps its own filters.
        next_marker = (parse_qs(urlsplit(page["next"]).query).get("marker", [""])[0]
                       if page.get("next") else "")
        keep = {k: v for k, v in {**filters, "snapshot": q.get("snapshot", ""),
                                  "limit": limit}.items() if v}
        return {
            "summary": summary, "vms": [vm_row(v, filters["q"]) for v in page["vms"]],
            # the snapshot's first few of each; the table flags every VM of a page
            "conflicts": (api.conflicts(self.request, str(summary["id"]), SHOWN)
                          if summary.get("conflicts") else []),
            "problems": (api.problems(self.request, str(summary["id"]), SHOWN)
                         if summary.get("problems") else []),
            "shown": SHOWN,
            "filters": filters, "limit": limit, "page_sizes": PAGE_SIZES,
            "snapshots": api.snapshots(self.request),
            "next_query": urlencode({**keep, "marker": next_marker}) if next_marker else "",
            "first_query": urlencode(keep) if q.get("marker") else "",
            "power_states": ("running", "paused", "shutdown", "shutoff", "crashed", "suspended",
                         "blocked", "unknown"),
        }
