"""The vSphere driver: inventory and change feed for a vCenter or ESXi endpoint (driver.py)."""
