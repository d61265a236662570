"""cinder-api: LAB_WSGI_ARGS="--config-file .../cinder.conf"."""

from onboard_lab_wsgi import set_argv

set_argv("cinder-api")

from cinder.wsgi.api import application  # noqa: E402,F401
