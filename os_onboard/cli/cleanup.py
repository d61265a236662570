"""``os-onboard cleanup``: remove os-onboard's orphans (records whose server is gone)."""

from __future__ import annotations

import sys
from typing import Any

from cliff.lister import Lister

from os_onboard.apply.lock import apply_lock
from os_onboard.apply.orphans import DEFAULT_OLDER_THAN, find_orphans, remove_orphans
from os_onboard.cli.adoption import cloud
from os_onboard.cli.common import state_store, with_epilog
from os_onboard.state.journal import Journal

CLEANUP_EPILOG = f"""\
Finds the records os-onboard created whose VM is no longer a Nova server and
releases them: left behind when an adopted server was deleted through Nova,
or an apply was abandoned before its Nova records were written. Such a port
keeps the guest's MAC and IPs and blocks every later plan of that VM.

  port        description 'os-onboard: adopted NIC of ...', device_id empty
              or no server: deleted
  volume      metadata 'os-onboard:disk' naming a server that is gone, and
              attached to no server that exists: marked detached in Cinder's
              database, then unmanaged (never deleted: the backend keeps it)
  allocation  Placement allocation on a compute node of a consumer that is
              no server and no Nova migration: deleted

Ports and volumes younger than --older-than (default {DEFAULT_OLDER_THAN:.0f} s) are
left alone: another apply may be writing them now. No hypervisor is touched.

examples:
  os-onboard cleanup --dry-run
  os-onboard cleanup
  os-onboard cleanup --older-than 0 -f json
"""


class Cleanup(Lister):
    """Remove os-onboard's orphans: ports, volume records, allocations of gone servers."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("--dry-run", action="store_true",
                            help="list the orphans, remove nothing")
        parser.add_argument("--older-than", type=float, default=DEFAULT_OLDER_THAN,
                            metavar="SECONDS",
                            help="leave ports and volumes younger than this alone "
                                 f"(default {DEFAULT_OLDER_THAN:.0f}; 0: all)")
        return with_epilog(parser, CLEANUP_EPILOG)

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        connection = cloud(self.app)
        store = state_store(self.app)
        orphans = find_orphans(connection, older_than=parsed_args.older_than)
        if orphans and not parsed_args.dry_run:
            with apply_lock(store.url):  # not under an apply of this state store
                remove_orphans(connection, orphans)
                journal = Journal(store)
                for server in sorted({o.server for o in orphans
                                      if o.server and o.status == "removed"}):
                    # its journaled steps name records that are gone: a rerun starts over
                    journal.forget_vm(server)
        failed = sum(o.status == "failed" for o in orphans)
        verb = "found" if parsed_args.dry_run else "removed"
        print(f"cleanup: {len(orphans) - failed} orphan(s) {verb}"
              + (f", {failed} failed" if failed else ""), file=sys.stderr)
        self._failed = failed > 0
        rows = [(o.kind, o.id, o.server, o.detail, o.status, o.error) for o in orphans]
        return ("Kind", "ID", "Server", "Detail", "Status", "Error"), rows

    def run(self, parsed_args: Any) -> int:
        self._failed = False
        code = super().run(parsed_args)
        return code or (1 if self._failed else 0)
