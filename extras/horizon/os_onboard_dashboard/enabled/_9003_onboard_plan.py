# os-onboard's Plan panel (Admin > Onboarding).
PANEL = "onboard_plan"
PANEL_DASHBOARD = "admin"
PANEL_GROUP = "onboarding"
ADD_PANEL = "os_onboard_dashboard.content.plan.panel.Plan"
