from django.urls import re_path

from os_onboard_dashboard.content.apply import views

urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
    re_path(r"^unmanage/$", views.unmanage, name="unmanage"),
    re_path(r"^jobs/(?P<job_id>[^/]+)/$", views.JobView.as_view(), name="job"),
    re_path(r"^jobs/(?P<job_id>[^/]+)/cancel/$", views.cancel, name="cancel"),
    re_path(r"^jobs/(?P<job_id>[^/]+)/resume/$", views.resume, name="resume"),
]
