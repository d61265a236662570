"""The only place where os-onboard writes to a hypervisor host.

Everything else in os-onboard reads hypervisors (read-only libvirt
connections). Adoption has one side effect on a host that cannot be avoided:
Cinder's *manage existing* renames the backend object under a running guest
(RBD ``legacy/lab-vm2-data`` becomes ``legacy/volume-<id>``). The running QEMU
keeps the image open and does not care, but the domain definition still names
the old image, so a later ``virsh start`` or an out-of-band
``virsh migrate --live`` by the old tools would open a name that no longer
exists ("the rename trap"). The writes that close the trap, all live-safe:

* ``persistent.py``: redefine only the *persistent* definition of the domain
  with the new disk source (the next cold start uses the new name); the live
  domain and its QEMU are not touched.
* ``renamemap.py``: a small JSON map ``{old source: new source}`` per host,
  next to the hook (``<libvirt config dir>/hooks/os-onboard-renames.json``).
* ``install.py``: the ``qemu`` hook script, a wrapper around ``qemu_hook.py``
  that rewrites the incoming domain XML of a live migration (and of a restore)
  on the destination host with the map.

``renames.py`` is the pure XML rewrite they share. This package must stay
importable by the hook with the system ``python3`` and nothing but the
standard library: no third-party imports here or in ``renames``,
``renamemap`` and ``qemu_hook``. See docs/hypervisor-writes.md.
"""
