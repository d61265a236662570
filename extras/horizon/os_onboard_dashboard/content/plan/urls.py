from django.urls import re_path

from os_onboard_dashboard.content.plan import views

urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
    re_path(r"^create/$", views.create, name="create"),
    re_path(r"^(?P<plan_id>\d+)/$", views.DetailView.as_view(), name="detail"),
    re_path(r"^(?P<plan_id>\d+)/apply/$", views.apply, name="apply"),
]
