"""os-onboard's Nova-side helper.

Nova has no API to register a compute host or an instance that already
exists, so the few records that only Nova's object layer can write are
written here, by a command that runs with Nova's own Python, configuration
and databases (``python -m os_onboard_nova.<command>``). Everything else
os-onboard does goes through public APIs. Each command prints one JSON
object on stdout and exits 0, or prints an error on stderr and exits 1.
"""
