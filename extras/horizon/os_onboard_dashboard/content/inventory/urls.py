from django.urls import re_path

from os_onboard_dashboard.content.inventory import views

urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
]
