# os-onboard's Apply panel (Admin > Onboarding).
PANEL = "onboard_apply"
PANEL_DASHBOARD = "admin"
PANEL_GROUP = "onboarding"
ADD_PANEL = "os_onboard_dashboard.content.apply.panel.Apply"
