"""Plan: inventory + mapping + OpenStack's state -> the records per VM (pure).

* :mod:`.model` - the plan document (Terraform's ``+ ~ = !``);
* :mod:`.cloudview` - what a plan reads of OpenStack, as plain data, and its
  fingerprint (a stale plan is refused);
* :mod:`.builder` - the rules per VM, with :mod:`.nics`, :mod:`.disks` and
  :mod:`.shared` (flavors, images); the hypervisor side comes from the host's
  driver (:mod:`os_onboard.drivers.adoption`);
* :mod:`.nova_states` - the one mapping of power states to Nova's;
* :mod:`.render` - the plan as text for people.
"""
