"""nova-api: its config comes from $OS_NOVA_CONFIG_DIR (nova.conf, api-paste.ini)."""

from onboard_lab_wsgi import set_argv

set_argv("nova-api")

from nova.wsgi.osapi_compute import application  # noqa: E402,F401
