"""The OpenStack side: public APIs, and the Nova-side helper where no API exists."""
