"""placement: its config comes from $OS_PLACEMENT_CONFIG_DIR/placement.conf."""

from onboard_lab_wsgi import set_argv

set_argv("placement-api")

from placement.wsgi.api import application  # noqa: E402,F401
