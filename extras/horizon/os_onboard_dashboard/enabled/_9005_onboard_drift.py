# os-onboard's Drift panel (Admin > Onboarding).
PANEL = "onboard_drift"
PANEL_DASHBOARD = "admin"
PANEL_GROUP = "onboarding"
ADD_PANEL = "os_onboard_dashboard.content.drift.panel.Drift"
