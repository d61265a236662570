"""os-onboard's Horizon plugin: the Onboarding panel group under Admin.

Every panel talks to the os-onboard REST API (``os-onboard serve``, setting
``ONBOARD_API_URL``) with the logged-in user's Keystone token - the plugin has
no database of its own, so roles, 401 and 403 are the API's.
"""
