# os-onboard's Hosts panel (Admin > Onboarding).
PANEL = "onboard_hosts"
PANEL_DASHBOARD = "admin"
PANEL_GROUP = "onboarding"
ADD_PANEL = "os_onboard_dashboard.content.hosts.panel.Hosts"
# The plugin's Django app (its templates), named once for all its panels.
ADD_INSTALLED_APPS = ["os_onboard_dashboard"]
