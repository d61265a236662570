"""vSphere discovery: one vCenter (or ESXi) endpoint read through the vSphere API."""
