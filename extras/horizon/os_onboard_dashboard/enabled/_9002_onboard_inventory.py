# os-onboard's Inventory panel (Admin > Onboarding).
PANEL = "onboard_inventory"
PANEL_DASHBOARD = "admin"
PANEL_GROUP = "onboarding"
ADD_PANEL = "os_onboard_dashboard.content.inventory.panel.Inventory"
