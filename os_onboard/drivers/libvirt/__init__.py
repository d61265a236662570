"""The libvirt driver: inventory, change feed and adoption for libvirt hosts (driver.py)."""
