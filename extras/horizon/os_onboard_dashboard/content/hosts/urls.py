from django.urls import re_path

from os_onboard_dashboard.content.hosts import views

urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
    re_path(r"^register/$", views.register, name="register"),
    re_path(r"^action/$", views.table_action, name="action"),
]
