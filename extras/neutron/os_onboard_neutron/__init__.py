"""Neutron extras of os-onboard: the ``onboard_bridge`` ML2 mechanism driver."""
