"""keystone: its config comes from $OS_KEYSTONE_CONFIG_DIR/keystone.conf."""

from onboard_lab_wsgi import set_argv

set_argv("keystone")

from keystone.wsgi.api import application  # noqa: E402,F401
