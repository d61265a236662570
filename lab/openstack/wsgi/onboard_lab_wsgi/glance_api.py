"""glance-api: its config comes from $OS_GLANCE_CONFIG_DIR (glance-api.conf, -paste.ini)."""

from onboard_lab_wsgi import set_argv

set_argv("glance-api")

from glance.wsgi.api import application  # noqa: E402,F401
