# The Onboarding panel group under Admin (os-onboard, extras/horizon).
PANEL_GROUP = "onboarding"
PANEL_GROUP_NAME = "Onboarding"
PANEL_GROUP_DASHBOARD = "admin"
