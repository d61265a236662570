"""WSGI entry points of the lab's OpenStack APIs, for gunicorn.

keystone, nova-api and cinder-api parse ``sys.argv`` with oslo.config when
their WSGI module is imported, so gunicorn's own arguments (``--workers 1``,
...) fail them with "unrecognized arguments". Each wrapper replaces
``sys.argv`` with the service name plus ``$LAB_WSGI_ARGS`` (e.g.
``--config-file /path/cinder.conf``) before it imports the real module.
"""

import os
import shlex
import sys


def set_argv(name: str) -> None:
    sys.argv = [name, *shlex.split(os.environ.get("LAB_WSGI_ARGS", ""))]
