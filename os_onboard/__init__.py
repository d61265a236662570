"""os-onboard: bring running VMs under OpenStack management without disturbing them.

The pipeline is visible in the package layout::

    discovery  ->  inventory  ->  plan  ->  apply  ->  reconcile

``discovery`` talks to hypervisors over read-only connections and produces an
``inventory`` (pure data). Later stages turn an inventory into a readable plan
and execute it against OpenStack.
"""

__version__ = "0.1.0"
