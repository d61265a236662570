from django.urls import re_path

from os_onboard_dashboard.content.drift import views

urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
    re_path(r"^check/$", views.check, name="check"),
]
