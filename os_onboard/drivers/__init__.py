"""Hypervisor drivers: one package per hypervisor, with the capabilities it declares.

``base`` holds the contract (:class:`~os_onboard.drivers.base.HypervisorDriver`
and its capabilities Inventory and ChangeFeed), ``adoption`` the adoption
capability, ``registry`` finds drivers through the ``os_onboard.drivers``
entry points. ``libvirt`` and ``vsphere`` are the drivers shipped here.

Standard library only at this level: the libvirt driver's qemu hook imports
``os_onboard.drivers.libvirt.hostwrite`` with the system python3.
"""
